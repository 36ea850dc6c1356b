"""Rollout on the embedded default, and the stack outputs every local process reads back."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from infra.emulated import STATE_BUCKET
from infra.program import resolve_code_path
from infra.runner import EmulatedRunner, StackResult
from vpcpeer_orchestration.local import server
from vpcpeer_orchestration.packaging import build_lambda_zip

INBOX_SUFFIX = "-alerts-inbox"


class StackNotRolledOut(RuntimeError):
    """The local stack has no recorded outputs yet."""


def _outputs_key(stack: str) -> str:
    return f"stacks/{stack}/outputs.json"


def inbox_queue_name(outputs: Mapping[str, Any]) -> str:
    """The SQS queue that receives the alert topic's messages on the embedded default."""
    return outputs["sns_topic_arn"].rsplit(":", 1)[1] + INBOX_SUFFIX


def ensure_alert_inbox(outputs: Mapping[str, Any], endpoint_url: str) -> str:
    """Subscribe an SQS queue to the alert topic (idempotent); returns the queue URL."""
    sqs, sns = server.client("sqs", endpoint_url), server.client("sns", endpoint_url)
    url = sqs.create_queue(QueueName=inbox_queue_name(outputs))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    existing = sns.list_subscriptions_by_topic(TopicArn=outputs["sns_topic_arn"])["Subscriptions"]
    if not any(s["Protocol"] == "sqs" and s["Endpoint"] == arn for s in existing):
        sns.subscribe(TopicArn=outputs["sns_topic_arn"], Protocol="sqs", Endpoint=arn)
    return url


def rollout(stack: str = "dev", overrides: Mapping[str, Any] | None = None, *,
            progress: Callable[[str], None] | None = None) -> StackResult:
    """Build the package, create the stack in the emulator, wire the alert inbox, record outputs."""
    endpoint_url = server.endpoint()
    runner = EmulatedRunner(stack, overrides, client=lambda service: server.client(service, endpoint_url),
                            progress=progress)
    cfg = runner.settings.validated()
    if cfg.region != server.region():
        raise server.LocalAwsError(
            f"stack {stack!r} is in {cfg.region} but the local AWS clients use {server.region()}; "
            f"set {server.REGION_ENV}={cfg.region} so every local process uses the stack's region"
        )
    build_lambda_zip(resolve_code_path(cfg))
    result = runner.run()
    ensure_alert_inbox(result.outputs, endpoint_url)
    s3 = server.client("s3", endpoint_url)
    s3.put_object(Bucket=STATE_BUCKET, Key=_outputs_key(stack),
                  Body=json.dumps(result.public_outputs(), indent=1, sort_keys=True).encode())
    return result


def stack_outputs(stack: str = "dev", endpoint_url: str | None = None) -> dict[str, Any]:
    """The outputs of the last local rollout (secrets masked)."""
    from botocore.exceptions import ClientError

    s3 = server.client("s3", endpoint_url or server.endpoint())
    try:
        body = s3.get_object(Bucket=STATE_BUCKET, Key=_outputs_key(stack))["Body"].read()
    except ClientError:
        raise StackNotRolledOut(f"stack {stack!r} is not rolled out on the local AWS; run `vpcpeer local rollout`") from None
    return json.loads(body)


def service_ports(outputs: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Ports the workloads listen on, per VPC: the declared allowed ports."""
    return {"VPC-A": tuple(outputs["vpc_a_allowed_ports"]), "VPC-B": tuple(outputs["vpc_b_allowed_ports"])}


def deployed_environment(outputs: Mapping[str, Any], endpoint_url: str) -> dict[str, str]:
    """The analyzer's environment exactly as deployed on the function in the emulator."""
    function = server.client("lambda", endpoint_url).get_function_configuration(FunctionName=outputs["lambda_function_name"])
    return dict(function.get("Environment", {}).get("Variables", {}))


def analyze_locally(event: Mapping[str, Any], stack: str = "dev", *, engine: str = "raw",
                    endpoint_url: str | None = None, context: Any = None) -> dict[str, Any]:
    """Run the deployed handler's code in-process against the emulator.

    moto's Lambda cannot execute handlers without Docker, so on the embedded default the
    same ``lambda_pkg`` code runs here with the deployed function's environment and
    clients pointed at the emulator (DESIGN decision 4).
    """
    from lambda_pkg.handler import handle

    endpoint_url = endpoint_url or server.endpoint()
    outputs = stack_outputs(stack, endpoint_url)
    environ = {**deployed_environment(outputs, endpoint_url), "ANALYZER_ENGINE": engine}

    def clients() -> tuple[Any, Any, Any]:
        return (server.client("logs", endpoint_url), server.client("cloudwatch", endpoint_url),
                server.client("sns", endpoint_url))

    return handle(dict(event), context, environ=environ, clients=clients)
