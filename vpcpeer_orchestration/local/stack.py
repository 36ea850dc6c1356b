"""One stack on one embedded AWS: rollout, outputs, the alert inbox and the in-process analyzer.

``EmbeddedStack`` is what the CLI, the demo and the Dagster resources of the embedded
target share. Nothing here imports pulumi until a rollout runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from infra.config import StackConfig
from infra.stack_files import StackNotRolledOut, StackSettings, load_stack_settings
from lambda_pkg.constants import ENV_ANALYZER_ENGINE, VPC_SLUGS
from vpcpeer_orchestration.local import layout
from vpcpeer_orchestration.local.server import ClientFactory, LocalAws

INBOX_SUFFIX = "-alerts-inbox"


class S3StateStore:
    """The emulated rollout's state document, kept in the emulator it describes."""

    def __init__(self, objects: layout.StateObjects, stack: str) -> None:
        self.objects = objects
        self.key = layout.stack_resources_key(stack)

    def load(self) -> dict[str, Any] | None:
        return self.objects.get(self.key)

    def save(self, state: dict[str, Any]) -> None:
        self.objects.put(self.key, state)


def inbox_queue_name(outputs: Mapping[str, Any]) -> str:
    """The SQS queue that receives the alert topic's messages on the embedded default."""
    return outputs["sns_topic_arn"].rsplit(":", 1)[1] + INBOX_SUFFIX


def service_ports(outputs: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Ports the workloads listen on, per VPC: the declared allowed ports."""
    return {label: tuple(outputs[f"{slug}_allowed_ports"]) for label, slug in VPC_SLUGS.items()}


class EmbeddedStack:
    """A stack (``infra/Pulumi.<stack>.yaml``) rolled out into one embedded AWS."""

    def __init__(self, aws: LocalAws, stack: str = "dev", overrides: Mapping[str, Any] | None = None) -> None:
        self.aws = aws
        self.name = stack
        self.overrides = dict(overrides or {})

    @cached_property
    def settings(self) -> StackSettings:
        return load_stack_settings(self.name, self.overrides)

    @cached_property
    def config(self) -> StackConfig:
        """The validated stack configuration (raises InvalidStackConfig)."""
        return self.settings.validated()

    @cached_property
    def clients(self) -> ClientFactory:
        """boto3 clients of the emulator in the stack's region (starts the emulator if needed)."""
        return self.aws.clients(self.config.region)

    @cached_property
    def state(self) -> layout.StateObjects:
        return layout.StateObjects(self.aws.clients(layout.STATE_REGION)("s3"))

    # -- rollout and outputs ------------------------------------------------------------

    def rollout(self, package: Path | None = None, *, progress: Callable[[str], None] | None = None) -> Any:
        """Create or update the stack in the emulator, deploying the zip at ``package``
        (default: the stack's ``lambda_zip_path``).

        Wires the alert inbox, records the outputs and makes it all durable before
        returning, so a crash right after a successful rollout loses none of it.
        """
        from infra.runner import EmulatedRunner

        overrides = {**self.overrides, **({"lambda_zip_path": str(package)} if package else {})}
        runner = EmulatedRunner(self.name, overrides, client=self.clients,
                                state_store=S3StateStore(self.state, self.name), progress=progress)
        # Two rollouts at once would both find no state and create two VPC pairs: one waits.
        waiting = (lambda: progress(f"another rollout of stack {self.name!r} is running on this embedded AWS; "
                                    "waiting for it ...")) if progress else None
        with self.aws.lock(f"rollout-{self.name}", waiting=waiting):
            result = runner.run()
            self.ensure_alert_inbox(result.outputs)
            self.state.put(layout.stack_outputs_key(self.name), result.public_outputs())
            self.aws.flush()
        return result

    def outputs(self) -> dict[str, Any]:
        """The outputs of the last rollout on this emulator (secrets masked)."""
        outputs = self.state.get(layout.stack_outputs_key(self.name))
        if outputs is None:
            raise StackNotRolledOut(
                f"stack {self.name!r} is not rolled out on the embedded AWS at {self.aws.home}; "
                "run `vpcpeer local rollout` or materialize rollout_job")
        return outputs

    def service_ports(self) -> dict[str, tuple[int, ...]]:
        return service_ports(self.outputs())

    def flow_log_emulator(self, *, seed: int = 42, scale: float = 1.0,
                          progress: Callable[[str], None] | None = None) -> Any:
        """The flow-log emulator of this stack; its writes exclude every other writer of this emulator."""
        from vpcpeer_orchestration.local.flowlogs import FlowLogEmulator

        outputs = self.outputs()
        return FlowLogEmulator(self.clients, seed=seed, scale=scale, service_ports=service_ports(outputs),
                               progress=progress, lock=lambda: self.aws.lock("flowlogs"),
                               vpc_ids=[outputs[f"{slug}_id"] for slug in VPC_SLUGS.values()])


    # -- alerts -------------------------------------------------------------------------

    def ensure_alert_inbox(self, outputs: Mapping[str, Any]) -> str:
        """Subscribe an SQS queue to the alert topic (idempotent); returns the queue URL."""
        sqs, sns = self.clients("sqs"), self.clients("sns")
        url = sqs.create_queue(QueueName=inbox_queue_name(outputs))["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        existing = sns.list_subscriptions_by_topic(TopicArn=outputs["sns_topic_arn"])["Subscriptions"]
        if not any(s["Protocol"] == "sqs" and s["Endpoint"] == arn for s in existing):
            sns.subscribe(TopicArn=outputs["sns_topic_arn"], Protocol="sqs", Endpoint=arn)
        return url

    # -- the analyzer, in-process -------------------------------------------------------

    def deployed_environment(self) -> dict[str, str]:
        """The analyzer's environment exactly as deployed on the function in the emulator."""
        name = self.outputs()["lambda_function_name"]
        function = self.clients("lambda").get_function_configuration(FunctionName=name)
        return dict(function.get("Environment", {}).get("Variables", {}))

    def analyze(self, event: Mapping[str, Any], *, engine: str = "raw", context: Any = None,
                environment: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Run the deployed handler's code in-process against the emulator.

        moto's Lambda cannot execute handlers without Docker, so on the embedded default
        the same ``lambda_pkg`` code runs here with the deployed function's environment
        (``environment`` overrides entries) and clients pointed at the emulator (DESIGN
        decision 4).
        """
        from lambda_pkg.handler import Clients, handle

        environ = {**self.deployed_environment(), ENV_ANALYZER_ENGINE: engine, **(environment or {})}
        return handle(dict(event), context, environ=environ, clients=lambda: Clients.from_factory(self.clients))
