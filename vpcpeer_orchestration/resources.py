"""Dagster resources: where AWS is, how the stack is run, how the analyzer is invoked.

One setting, ``VPCPEER_TARGET`` (``embedded`` | ``aws``), picks the embedded default
(local moto server, emulated rollout, handler in-process) or a real account (Automation
API rollout, the deployed Lambda invoked with the window). Nothing here touches AWS or
imports boto3/pulumi until a method is called.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

import dagster as dg
from pydantic import Field

TARGET_ENV = "VPCPEER_TARGET"
TARGETS = ("embedded", "aws")


class AnalysisFailed(RuntimeError):
    """The analyzer raised; nothing was published for the window.

    ``transient`` marks failures worth retrying (throttling, query deadlines); the rest
    (denied access, missing log group, bad config) fail at once.
    """

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def _transient(exc: BaseException) -> bool:
    from lambda_pkg.errors import QueryTimeoutError, ThrottledError

    return isinstance(exc, (ThrottledError, QueryTimeoutError))


class AwsResource(dg.ConfigurableResource):
    """Where AWS is: the embedded local emulator or a real account."""

    target: str = Field(default="embedded", description="embedded: the local moto server (VPCPEER_AWS_ENDPOINT, "
                        "or started on demand); aws: the account of the default credential chain")
    region: str = Field(default="us-east-1", description="AWS region of the stack")

    def endpoint_url(self) -> str | None:
        """The emulator endpoint on the embedded default, None on real AWS."""
        if self.target not in TARGETS:
            raise ValueError(f"{TARGET_ENV}={self.target!r}; use embedded or aws")
        if self.target == "aws":
            return None
        from vpcpeer_orchestration.local import server

        return server.endpoint()

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` on the configured target."""
        endpoint_url = self.endpoint_url()
        if endpoint_url:
            from vpcpeer_orchestration.local import server

            return server.client(service, endpoint_url)
        import boto3
        from botocore.config import Config

        return boto3.client(service, region_name=self.region, config=Config(retries={"mode": "adaptive", "max_attempts": 8}))


class StackResource(dg.ConfigurableResource):
    """The one Pulumi program, run the way the target needs (DESIGN decision 2)."""

    aws: AwsResource
    stack: str = Field(default="dev", description="stack name: infra/Pulumi.<stack>.yaml")

    @property
    def mode(self) -> str:
        return "emulated" if self.aws.target == "embedded" else "automation"

    def settings(self) -> Any:
        from infra.stack_files import load_stack_settings

        return load_stack_settings(self.stack)

    def rollout(self, log: Any = None) -> Any:
        """Create or update the stack; returns the StackResult."""
        progress = log.info if log else None
        if self.mode == "emulated":
            from vpcpeer_orchestration.local.stack import rollout

            return rollout(self.stack, progress=progress)
        from infra.program import resolve_code_path
        from infra.runner import AutomationRunner
        from vpcpeer_orchestration.packaging import build_lambda_zip

        runner = AutomationRunner(self.stack, on_output=progress)
        build_lambda_zip(resolve_code_path(runner.settings.validated()))
        result = runner.run()
        self._remember(result.public_outputs())
        return result

    def _remember(self, outputs: dict[str, Any]) -> None:
        from vpcpeer_orchestration.local.server import vpcpeer_home

        path = vpcpeer_home() / "stacks" / f"{self.stack}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(outputs, indent=1, sort_keys=True))

    def outputs(self) -> dict[str, Any]:
        """Outputs of the last rollout (secrets masked)."""
        if self.mode == "emulated":
            from vpcpeer_orchestration.local.stack import stack_outputs

            return stack_outputs(self.stack, self.aws.endpoint_url())
        from vpcpeer_orchestration.local.server import vpcpeer_home
        from vpcpeer_orchestration.local.stack import StackNotRolledOut

        path = vpcpeer_home() / "stacks" / f"{self.stack}.json"
        if not path.is_file():
            raise StackNotRolledOut(f"stack {self.stack!r} has no recorded outputs; materialize the rollout first")
        return json.loads(path.read_text())


class FlowLogSourceResource(dg.ConfigurableResource):
    """Flow-log records for the analysed hours: written by AWS, or by the emulator locally."""

    aws: AwsResource
    stack: StackResource
    seed: int = Field(default=42, description="emulator seed (embedded default only)")

    def oldest_available(self, now: datetime | None = None) -> datetime:
        """Start of the oldest hour whose records still exist (log retention; 14 days locally)."""
        from datetime import timedelta, timezone

        now = now or datetime.now(timezone.utc)
        days = self.stack.settings().validated().retention_days
        if self.aws.target == "embedded":
            days = min(days, 14)
        return (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)

    def ensure_hours(self, hours: list[datetime]) -> dict[str, int]:
        """On the embedded default, write any of these complete hours not yet written."""
        if self.aws.target != "embedded":
            return {}
        from vpcpeer_orchestration.local import server
        from vpcpeer_orchestration.local.flowlogs import FlowLogEmulator
        from vpcpeer_orchestration.local.stack import service_ports

        endpoint_url = self.aws.endpoint_url()
        emulator = FlowLogEmulator(lambda s: server.client(s, endpoint_url), seed=self.seed,
                                   service_ports=service_ports(self.stack.outputs()))
        return emulator.ensure_hours(hours)


class AnalyzerResource(dg.ConfigurableResource):
    """Runs the analyzer for a window: the deployed Lambda on AWS, the same code in-process locally."""

    aws: AwsResource
    stack: StackResource
    local_engine: str = Field(default="raw", description="engine on the embedded default (moto cannot run Insights)")

    def analyze(self, start: datetime, end: datetime) -> dict[str, Any]:
        """The analysis report for ``[start, end)``; raises AnalysisFailed on any failure."""
        event = {"window": {"start": start.isoformat(), "end": end.isoformat()}, "orchestrated": True,
                 "source": "dagster"}
        if self.aws.target == "embedded":
            from vpcpeer_orchestration.local.stack import analyze_locally

            try:
                return analyze_locally(event, self.stack.stack, engine=self.local_engine,
                                       endpoint_url=self.aws.endpoint_url())
            except Exception as exc:  # noqa: BLE001 - typed errors keep their text in the message
                raise AnalysisFailed(f"{type(exc).__name__}: {exc}", transient=_transient(exc)) from exc
        function = self.stack.outputs()["lambda_function_name"]
        response = self.aws.client("lambda").invoke(FunctionName=function, InvocationType="RequestResponse",
                                                    Payload=json.dumps(event).encode())
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            kind = payload.get("errorType") or "Error"
            raise AnalysisFailed(f"{function} failed: {kind}: {payload.get('errorMessage')}",
                                 transient=kind in ("ThrottledError", "QueryTimeoutError"))
        return payload


def build_resources() -> dict[str, Any]:
    """Resources for the code location, from VPCPEER_TARGET / VPCPEER_STACK / VPCPEER_AWS_REGION."""
    target = os.environ.get(TARGET_ENV) or "embedded"
    aws = AwsResource(target=target, region=os.environ.get("VPCPEER_AWS_REGION") or "us-east-1")
    stack = StackResource(aws=aws, stack=os.environ.get("VPCPEER_STACK") or "dev")
    resources: dict[str, Any] = {
        "aws": aws,
        "stack": stack,
        "flow_logs": FlowLogSourceResource(aws=aws, stack=stack),
        "analyzer": AnalyzerResource(aws=aws, stack=stack),
    }
    bucket = os.environ.get("VPCPEER_IO_BUCKET")
    if target == "aws" and bucket:
        # On real AWS, reports live in S3 so any run worker (ECS, Kubernetes) can read them.
        from vpcpeer_orchestration.io import PartitionedJsonIOManager

        resources["reports_io_manager"] = PartitionedJsonIOManager(location=f"s3://{bucket}/vpcpeer")
    return resources
