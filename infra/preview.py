"""Pulumi mocks that create nothing and record every resource with its inputs.

This is the offline plan behind ``vpcpeer infra preview``: the real program runs under
Pulumi's own runtime mocks, and each registration is captured with the inputs the
provider would receive (camelCase keys, numbers as floats).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pulumi

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


def _stable_hex(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


# Type token -> (id prefix, ARN builder) for realistic identifiers in the plan.
_ID_PREFIX = {
    "aws:ec2/vpc:Vpc": "vpc-",
    "aws:ec2/subnet:Subnet": "subnet-",
    "aws:ec2/internetGateway:InternetGateway": "igw-",
    "aws:ec2/eip:Eip": "eipalloc-",
    "aws:ec2/natGateway:NatGateway": "nat-",
    "aws:ec2/routeTable:RouteTable": "rtb-",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc-",
    "aws:ec2/vpcPeeringConnection:VpcPeeringConnection": "pcx-",
    "aws:ec2/securityGroup:SecurityGroup": "sg-",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg-",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr-",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr-",
    "aws:ec2/flowLog:FlowLog": "fl-",
}


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks answering with deterministic fake IDs/ARNs and recording every registration."""

    region: str
    account_id: str = PREVIEW_ACCOUNT_ID
    resources: list[PlannedResource] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.resources.append(PlannedResource(args.typ, args.name, dict(args.inputs), bool(args.custom)))
        if not args.custom:
            return None, dict(args.inputs)
        token, name = args.typ, args.name
        state = dict(args.inputs)
        physical = state.get("name") or state.get("dashboardName") or f"{name}-{_stable_hex(token, name, length=7)}"
        state.setdefault("name", physical)
        service = token.split(":")[1].split("/")[0]
        partition_region_account = f"arn:aws:{{svc}}:{self.region}:{self.account_id}"
        if token.startswith("pulumi:providers:"):
            return f"{name}-provider", state
        resource_id = _ID_PREFIX.get(token, "") + _stable_hex(token, name)
        arn = f"{partition_region_account.format(svc=service)}:{physical}"
        if token == "aws:cloudwatch/logGroup:LogGroup":
            resource_id, arn = physical, f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{physical}"
        elif token == "aws:kms/key:Key":
            key_id = f"{_stable_hex(token, name, length=8)}-0000-4000-8000-{_stable_hex(name, length=12)}"
            resource_id, arn = key_id, f"arn:aws:kms:{self.region}:{self.account_id}:key/{key_id}"
            state["keyId"] = key_id
        elif token == "aws:sns/topic:Topic":
            arn = f"arn:aws:sns:{self.region}:{self.account_id}:{physical}"
            resource_id = arn
        elif token == "aws:sqs/queue:Queue":
            arn = f"arn:aws:sqs:{self.region}:{self.account_id}:{physical}"
            resource_id = f"https://sqs.{self.region}.amazonaws.com/{self.account_id}/{physical}"
        elif token == "aws:iam/role:Role":
            resource_id, arn = physical, f"arn:aws:iam::{self.account_id}:role/{physical}"
        elif token == "aws:lambda/function:Function":
            resource_id, arn = physical, f"arn:aws:lambda:{self.region}:{self.account_id}:function:{physical}"
        elif token == "aws:cloudwatch/eventRule:EventRule":
            resource_id, arn = physical, f"arn:aws:events:{self.region}:{self.account_id}:rule/{physical}"
        elif token == "aws:cloudwatch/dashboard:Dashboard":
            resource_id = physical
        state.setdefault("arn", arn)
        return resource_id, state

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
