"""The embedded target: everything runs against the embedded AWS of the Dagster instance.

The emulator's home defaults to ``<instance root>/embedded-aws``, taken from the instance
the run, sensor or schedule belongs to, so two instances (two checkouts) never share one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from vpcpeer_orchestration.homes import EMBEDDED_HOME_DIRNAME, embedded_aws_home
from vpcpeer_orchestration.local.server import LocalAws
from vpcpeer_orchestration.local.stack import EmbeddedStack
from vpcpeer_orchestration.resources import (
    AnalysisFailed,
    AnalyzerResource,
    FlowLogSourceResource,
    StackResource,
    is_transient,
)


class EmbeddedAwsResource(dg.ConfigurableResource):
    """The embedded AWS (moto server) of this Dagster instance, started on demand."""

    home: str | None = Field(default=None, description="where the emulator keeps its state "
                             "(VPCPEER_HOME; default <Dagster instance>/embedded-aws)")
    endpoint: str | None = Field(default=None, description="an emulator vpcpeer does not manage "
                                 "(VPCPEER_AWS_ENDPOINT); unset: the embedded one")
    _local: LocalAws | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        root = context.instance.root_directory if context.instance else None
        self._local = self._handle(root)

    def _handle(self, instance_root: str | None) -> LocalAws:
        if self.home:
            home = Path(self.home)
        elif instance_root:
            home = Path(instance_root) / EMBEDDED_HOME_DIRNAME
        else:
            home = embedded_aws_home()
        return LocalAws(home.resolve(), (self.endpoint or "").rstrip("/") or None)

    def local(self) -> LocalAws:
        """The handle on the emulator (outside a run: the DAGSTER_HOME instance's)."""
        if self._local is None:
            self._local = self._handle(None)
        return self._local


class EmulatedStackResource(StackResource):
    """The stack rolled out into the embedded AWS by the emulated Pulumi runner."""

    aws: EmbeddedAwsResource
    _embedded: EmbeddedStack | None = PrivateAttr(default=None)

    def embedded(self) -> EmbeddedStack:
        """The stack on the instance's embedded AWS (one handle per resource: clients are reused)."""
        if self._embedded is None:
            self._embedded = EmbeddedStack(self.aws.local(), self.stack)
        return self._embedded

    def client(self, service: str) -> Any:
        return self.embedded().clients(service)

    def rollout(self, package: Path, log: Any) -> Any:
        return self.embedded().rollout(package, progress=log.info if log else None)

    def outputs(self) -> dict[str, Any]:
        return self.embedded().outputs()

    def generation(self) -> str | None:
        local = self.aws.local()
        local.endpoint()  # started, so its generation is known
        return local.generation()

    def purged_generations(self) -> frozenset[str]:
        return self.aws.local().purged()

    def durable(self) -> None:
        self.aws.local().flush()


class InProcessAnalyzerResource(AnalyzerResource):
    """The deployed handler's code, run in-process against the emulator (moto runs no Lambda)."""

    stack: EmulatedStackResource
    engine: str = Field(default="raw", description="analyzer engine on the embedded default: raw (FilterLogEvents) "
                        "or insights (Logs Insights, answered by the embedded evaluator)")

    def analyze(self, start: datetime, end: datetime) -> dict[str, Any]:
        try:
            return self.stack.embedded().analyze(self.event(start, end), engine=self.engine)
        except Exception as exc:  # noqa: BLE001 - typed errors keep their text in the message
            raise AnalysisFailed(f"{type(exc).__name__}: {exc}", transient=is_transient(type(exc).__name__)) from exc


class EmulatedFlowLogsResource(FlowLogSourceResource):
    """Flow logs written by the flow-log emulator into the embedded AWS."""

    stack: EmulatedStackResource
    seed: int = Field(default=42, description="emulator seed: the same seed writes the same records")
    scale: float = Field(default=1.0, description="volume multiplier (1.0 is about 10,000 records a day per VPC)")

    def max_age(self) -> timedelta:
        from vpcpeer_orchestration.local.flowlogs import CLOUDWATCH_MAX_EVENT_AGE

        return min(timedelta(days=self.stack.config().retention_days), CLOUDWATCH_MAX_EVENT_AGE)

    def first_hour_at_rollout(self, now: datetime | None = None) -> datetime:
        # The day the emulator reaches back to: the bar starts on a day, and a demo's oldest hour
        # (which may begin a few minutes before the limit) is a partition that says why it fails.
        return self.oldest_available(now).replace(hour=0)

    def write_hours(self, hours: list[datetime], progress: Any = None) -> dict[str, int]:
        """Write the complete hours not written yet (as AWS would have); records per hour written."""
        emulator = self.stack.embedded().flow_log_emulator(seed=self.seed, scale=self.scale, progress=progress)
        written = emulator.ensure_hours(hours)
        self.stack.durable()
        return written


def resources(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The embedded target's resources; ``settings`` maps VPCPEER_* names to values or dg.EnvVars."""
    from vpcpeer_orchestration.homes import EMBEDDED_HOME_ENV
    from vpcpeer_orchestration.io import LocalJsonIOManager
    from vpcpeer_orchestration.local.server import ENDPOINT_ENV
    from vpcpeer_orchestration.resources import ENGINE_ENV, STACK_ENV, flow_log_settings

    aws = EmbeddedAwsResource(home=settings.get(EMBEDDED_HOME_ENV), endpoint=settings.get(ENDPOINT_ENV))
    stack = EmulatedStackResource(aws=aws, **({"stack": settings[STACK_ENV]} if STACK_ENV in settings else {}))
    return {
        "stack": stack,
        "analyzer": InProcessAnalyzerResource(stack=stack, **({"engine": settings[ENGINE_ENV]}
                                                              if settings.get(ENGINE_ENV) else {})),
        "flow_logs": EmulatedFlowLogsResource(stack=stack, **flow_log_settings(settings)),
        "reports_io_manager": LocalJsonIOManager(),
    }
