"""The aws target: a real account, the Pulumi Automation API, the deployed Lambda.

Imported only when ``VPCPEER_TARGET=aws`` (dagster-aws costs over a second to import), and
never imports the emulator. Stack outputs come from the Pulumi state backend, so a run
worker in a container needs neither the Pulumi CLI nor a file from another machine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource
from dagster_aws.utils import ResourceWithBoto3Configuration
from pydantic import Field, PrivateAttr

from vpcpeer_orchestration.io import PartitionedJsonIOManager
from vpcpeer_orchestration.resources import (
    AnalysisFailed,
    AnalyzerResource,
    FlowLogSourceResource,
    StackResource,
    is_transient,
)


class AwsAccountResource(ResourceWithBoto3Configuration):
    """boto3 clients of the account (default credential chain or the fields below)."""

    def client(self, service: str, region: str | None = None) -> Any:
        import boto3

        from lambda_pkg.clients import client_config

        session = boto3.session.Session(profile_name=self.profile_name)
        return session.client(
            service, region_name=region or self.region_name, endpoint_url=self.endpoint_url, use_ssl=self.use_ssl,
            verify=self.verify, aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key, aws_session_token=self.aws_session_token,
            config=client_config(self.max_attempts),
        )


class PulumiStackResource(StackResource):
    """The stack rolled out with the Pulumi Automation API; outputs read from its state backend."""

    aws: AwsAccountResource
    backend_url: str | None = Field(default=None, description="Pulumi state backend (VPCPEER_PULUMI_BACKEND_URL); "
                                    "default file://<Dagster instance>/pulumi-state. Use s3://... when runs "
                                    "execute on other machines")
    _instance_root: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._instance_root = context.instance.root_directory if context.instance else None

    def backend(self) -> str:
        from vpcpeer_orchestration.homes import pulumi_backend_url

        return self.backend_url or pulumi_backend_url(self._instance_root)

    def client(self, service: str) -> Any:
        return self.aws.client(service, self.config().region)

    def rollout(self, package: Path, log: Any) -> Any:
        from infra.runner import AutomationRunner

        runner = AutomationRunner(self.stack, {"lambda_zip_path": str(package)}, backend_url=self.backend(),
                                  on_output=log.info if log else None)
        return runner.run()

    def outputs(self) -> dict[str, Any]:
        from infra.config import PROJECT
        from infra.state_backend import read_stack_outputs

        return read_stack_outputs(self.backend(), PROJECT, self.stack, s3_client=lambda: self.client("s3"))


class LambdaAnalyzerResource(AnalyzerResource):
    """Invokes the deployed analyzer Lambda with the window (RequestResponse)."""

    stack: PulumiStackResource

    def analyze(self, start: datetime, end: datetime) -> dict[str, Any]:
        function = self.stack.outputs()["lambda_function_name"]
        response = self.stack.client("lambda").invoke(FunctionName=function, InvocationType="RequestResponse",
                                                      Payload=json.dumps(self.event(start, end)).encode())
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            kind = (payload or {}).get("errorType") or "Error"
            raise AnalysisFailed(f"{function} failed: {kind}: {(payload or {}).get('errorMessage')}",
                                 transient=is_transient(kind))
        return payload


class AwsFlowLogsResource(FlowLogSourceResource):
    """Flow logs written by the VPC Flow Logs service; kept for the stack's retention."""

    stack: PulumiStackResource

    def max_age(self) -> timedelta:
        return timedelta(days=self.stack.config().retention_days)


class S3JsonIOManager(PartitionedJsonIOManager):
    """The JSON documents in S3, so any run worker (ECS, Kubernetes) reads what another wrote."""

    s3: S3Resource
    bucket: str = Field(description="S3 bucket of the reports (VPCPEER_IO_BUCKET)")
    prefix: str = Field(default="vpcpeer", description="key prefix inside the bucket")

    def _object_key(self, key: str) -> str:
        return f"{self.prefix.strip('/')}/{key}".lstrip("/")

    def write_text(self, key: str, body: str) -> None:
        self.s3.get_client().put_object(Bucket=self.bucket, Key=self._object_key(key), Body=body.encode())

    def read_text(self, key: str) -> str:
        client = self.s3.get_client()
        try:
            return client.get_object(Bucket=self.bucket, Key=self._object_key(key))["Body"].read().decode()
        except client.exceptions.NoSuchKey as exc:
            raise FileNotFoundError(self.where(key)) from exc

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._object_key(key)}"


IO_BUCKET_ENV = "VPCPEER_IO_BUCKET"


def resources(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The aws target's resources; ``settings`` maps VPCPEER_* names to values or dg.EnvVars."""
    from vpcpeer_orchestration.homes import PULUMI_BACKEND_ENV
    from vpcpeer_orchestration.io import LocalJsonIOManager
    from vpcpeer_orchestration.resources import STACK_ENV, flow_log_settings

    aws = AwsAccountResource()
    stack = PulumiStackResource(
        aws=aws,
        **({"stack": settings[STACK_ENV]} if STACK_ENV in settings else {}),
        **({"backend_url": settings[PULUMI_BACKEND_ENV]} if PULUMI_BACKEND_ENV in settings else {}),
    )
    io_manager: PartitionedJsonIOManager = (
        S3JsonIOManager(s3=S3Resource(), bucket=settings[IO_BUCKET_ENV]) if IO_BUCKET_ENV in settings
        else LocalJsonIOManager()
    )
    return {
        "stack": stack,
        "analyzer": LambdaAnalyzerResource(stack=stack),
        "flow_logs": AwsFlowLogsResource(stack=stack, **flow_log_settings(settings)),
        "reports_io_manager": io_manager,
    }
