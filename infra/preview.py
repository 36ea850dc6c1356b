"""Pulumi mocks that create nothing and record every resource with its inputs.

This is the offline plan behind ``vpcpeer infra preview``: the real program runs under
Pulumi's own runtime mocks, and each registration is captured with the inputs the
provider would receive (camelCase keys, numbers as floats).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi

from infra.emulation.registry import PreviewNames, preview_identity, stable_hex

PREVIEW_ACCOUNT_ID = "123456789012"


class UnsupportedInvoke(RuntimeError):
    """The program called a data source the offline mocks do not answer."""


@dataclass(frozen=True)
class PlannedResource:
    """One resource the program declares: Pulumi type token, logical name, inputs."""

    type: str
    name: str
    inputs: dict[str, Any]
    custom: bool = True

    def to_json(self) -> dict[str, Any]:
        """The DESIGN "Contracts" shape."""
        return {"type": self.type, "name": self.name, "inputs": self.inputs}


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks answering with deterministic fake IDs/ARNs and recording every registration.

    The shape of each type's ID and ARN (``vpc-`` prefixes, log-group and queue forms,
    ...) comes from the emulation registry, the one table of resource types.
    """

    region: str
    account_id: str = PREVIEW_ACCOUNT_ID
    resources: list[PlannedResource] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.resources.append(PlannedResource(args.typ, args.name, dict(args.inputs), bool(args.custom)))
        if not args.custom:
            return None, dict(args.inputs)
        token, name = args.typ, args.name
        state = dict(args.inputs)
        # A name prefix ("namePrefix", "bucketPrefix") gets the unique suffix AWS would append.
        prefix = state.get("namePrefix") or state.get("bucketPrefix")
        physical = (state.get("name") or state.get("dashboardName")
                    or (f"{prefix}{stable_hex(token, name, length=7)}" if prefix else f"{name}-{stable_hex(token, name, length=7)}"))
        state.setdefault("name", physical)
        if token.startswith("pulumi:providers:"):
            return f"{name}-provider", state
        identity = preview_identity(PreviewNames(token, name, physical, self.region, self.account_id, inputs=state))
        state.update(identity.outputs)
        state.setdefault("arn", identity.arn)
        return identity.id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account_id,
                "arn": f"arn:aws:iam::{self.account_id}:user/preview",
                "userId": "AIDAPREVIEW",
                "id": self.account_id,
            }, []
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws", "id": "aws"}, []
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{self.region}{s}" for s in "abc"]
            return {"names": names, "zoneIds": [f"use1-az{i}" for i in range(1, 4)], "id": self.region,
                    "groupNames": [self.region]}, []
        raise UnsupportedInvoke(f"the offline preview cannot answer data source {args.token}")
