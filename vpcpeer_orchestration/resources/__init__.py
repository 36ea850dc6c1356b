"""What the assets need from a target, as interfaces with one implementation per target.

``embedded`` (``resources/embedded.py``): the embedded AWS of the Dagster instance, the
emulated rollout, the analyzer in-process, the flow-log emulator. ``aws``
(``resources/aws.py``): a real account through dagster-aws's boto3 configuration, the
Pulumi Automation API, the deployed Lambda. ``definitions.py`` picks one set, once; no
method asks which target it runs on. Nothing here touches AWS or imports boto3/pulumi
until a method is called.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from infra.config import StackConfig
from infra.stack_files import StackSettings, load_stack_settings
from lambda_pkg.constants import DEFAULT_SETTLE_LAG_SECONDS

TARGETS = ("embedded", "aws")
TARGET_ENV = "VPCPEER_TARGET"
STACK_ENV = "VPCPEER_STACK"
# The analyzer engine on the embedded default (raw, or insights through the embedded evaluator).
ENGINE_ENV = "VPCPEER_ANALYZER_ENGINE"
DEFAULT_STACK = "dev"


class InvalidTarget(ValueError):
    """VPCPEER_TARGET names no target."""

    def __init__(self, target: str) -> None:
        super().__init__(f"{TARGET_ENV}={target!r} is not a target; use one of {', '.join(TARGETS)}")


class AnalysisFailed(RuntimeError):
    """The analyzer raised; nothing was published for the window.

    ``transient`` marks failures worth retrying (throttling past botocore's retries,
    query deadlines); the rest (denied access, missing log group, bad config) fail at once.
    """

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def is_transient(error_type: str) -> bool:
    """Analyzer errors worth a whole-step retry, by class name (also as the Lambda reports it)."""
    return error_type in ("ThrottledError", "QueryTimeoutError")


class StackResource(dg.ConfigurableResource, ABC):
    """The one Pulumi program's stack on a target: its config, clients, rollout and outputs."""

    stack: str = Field(default=DEFAULT_STACK, description="stack name: infra/Pulumi.<stack>.yaml")

    def settings(self) -> StackSettings:
        return load_stack_settings(self.stack)

    def config(self) -> StackConfig:
        """The validated stack configuration (raises InvalidStackConfig naming the key)."""
        return self.settings().validated()

    @abstractmethod
    def client(self, service: str) -> Any:
        """A boto3 client in the stack's account and region."""

    @abstractmethod
    def rollout(self, package: Path, log: Any) -> Any:
        """Create or update the stack with the analyzer zip at ``package``; returns a StackResult."""

    @abstractmethod
    def outputs(self) -> dict[str, Any]:
        """Outputs of the last rollout (secrets masked); StackNotRolledOut if there is none."""

    def generation(self) -> str | None:
        """Identity of the AWS state the stack lives in, when the target can lose it (embedded)."""
        return None

    def purged_generations(self) -> frozenset[str]:
        """Generations discarded on purpose (``vpcpeer local down --purge``)."""
        return frozenset()

    def durable(self) -> None:
        """Make the effects so far durable (the embedded AWS snapshots; AWS already is)."""

    def alert_ledger(self) -> Any:
        """The stack's delivery ledger: the DynamoDB table the standalone Lambda shares."""
        from lambda_pkg.ledger import AlertLedger

        return AlertLedger(self.client("dynamodb"), self.outputs()["alert_ledger_table_name"])

    def talker_store(self) -> Any:
        """The stack's known talkers, kept in the ledger's table (the standalone Lambda's too)."""
        from lambda_pkg.talkers import TalkerStore

        return TalkerStore(self.client("dynamodb"), self.outputs()["alert_ledger_table_name"], self.stack)


class AnalyzerResource(dg.ConfigurableResource, ABC):
    """Runs the analyzer over one window and returns its report."""

    @abstractmethod
    def analyze(self, start: datetime, end: datetime) -> dict[str, Any]:
        """The report for ``[start, end)``; raises AnalysisFailed on any failure."""

    @staticmethod
    def event(start: datetime, end: datetime) -> dict[str, Any]:
        """The handler event of an orchestrated window: report only, Dagster publishes."""
        return {"window": {"start": start.isoformat(), "end": end.isoformat()}, "orchestrated": True,
                "source": "dagster"}


SETTLE_LAG_ENV = "VPCPEER_SETTLE_LAG_SECONDS"


class FlowLogSourceResource(dg.ConfigurableResource, ABC):
    """Where the analysed hours' flow-log records come from, when they have all arrived, and
    how far back they exist."""

    settle_lag_seconds: int = Field(default=DEFAULT_SETTLE_LAG_SECONDS, description="records reach the log groups "
                                    "up to this long after their hour ends: later hours are refused "
                                    "(VPCPEER_SETTLE_LAG_SECONDS)")

    @abstractmethod
    def max_age(self) -> timedelta:
        """How long records are kept."""

    def settled_until(self, now: datetime | None = None) -> datetime:
        """Hours ending after this may still receive records: analysing them would report too little."""
        return (now or datetime.now(timezone.utc)) - timedelta(seconds=self.settle_lag_seconds)

    def first_hour_at_rollout(self, now: datetime | None = None) -> datetime:
        """The oldest hour with records when the stack is first rolled out: on AWS the rollout's
        own hour (the flow logs begin with the stack); the embedded emulator writes earlier ones."""
        return (now or datetime.now(timezone.utc)).replace(minute=0, second=0, microsecond=0)

    def oldest_available(self, now: datetime | None = None) -> datetime:
        """Start of the oldest complete hour whose records still exist."""
        now = now or datetime.now(timezone.utc)
        return (now - self.max_age()).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def flow_log_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The flow-log source's fields among VPCPEER_* settings (an integer read from the environment)."""
    value = settings.get(SETTLE_LAG_ENV)
    if value is None:
        return {}
    return {"settle_lag_seconds": dg.EnvVar.int(SETTLE_LAG_ENV) if isinstance(value, dg.EnvVar) else int(value)}
