"""Lambda entry point: thin wiring of configuration, clients, analysis and effects.

``event = {}`` analyses the last complete UTC hour before the settle lag;
``{"window": {"start", "end"}}`` analyses that window (refused until it has settled);
``"engine"`` overrides the configured engine; ``"orchestrated": true`` (set by the
Dagster orchestrator) returns the report without any effect, which the orchestrator
performs itself. Standalone, the effects follow the report in order, through the delivery
ledger shared with Dagster: alerts that are due from earlier invocations, this window's
alerts one by one, then its metrics. Any failure raises, so Lambda records an error and
retries; what was done is skipped by the retry and what is missing is completed.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from lambda_pkg.analysis import analyze
from lambda_pkg.baseline import History, lookback, read_history
from lambda_pkg.delivery import Deliverer, anomaly_alerts, publish_metrics_once
from lambda_pkg.constants import ANALYZER_ENGINES, BASELINE_STATIC
from lambda_pkg.errors import InvalidAnalyzerConfig, InvalidEvent
from lambda_pkg.ledger import AlertLedger
from lambda_pkg.settings import AnalyzerConfig, config_from_env
from lambda_pkg.talkers import State, TalkerStore, epoch_hour, observed
from lambda_pkg.window import Window, window_for_event


@dataclass(frozen=True)
class Clients:
    """The AWS clients one invocation uses."""

    logs: Any
    cloudwatch: Any
    sns: Any
    ec2: Any
    dynamodb: Any

    @classmethod
    def from_factory(cls, client: Callable[[str], Any]) -> Clients:
        return cls(*(client(service) for service in ("logs", "cloudwatch", "sns", "ec2", "dynamodb")))


@dataclass(frozen=True)
class Invocation:
    """What an event asks for, checked: the keys vpcpeer reads must have the right type (an
    EventBridge event's other keys are ignored)."""

    window: Window
    engine: str | None
    orchestrated: bool
    trigger: str

    @classmethod
    def of(cls, event: Any, now: datetime, settle_lag: Any) -> Invocation:
        if event is None:
            event = {}
        if not isinstance(event, dict):  # [] or "" is a mistake, not "the last hour"
            raise InvalidEvent(f"the event must be a JSON object, got {type(event).__name__}: {str(event)[:80]}")
        engine = event.get("engine")
        if engine is not None and engine not in ANALYZER_ENGINES:
            raise InvalidEvent(f'event "engine" must be one of {", ".join(ANALYZER_ENGINES)}, got {engine!r}')
        orchestrated = event.get("orchestrated", False)
        if not isinstance(orchestrated, bool):  # "false" would be truthy and skip every alert
            raise InvalidEvent(f'event "orchestrated" must be true or false (JSON booleans), got {orchestrated!r}')
        trigger = event.get("source", "direct invocation")
        if not isinstance(trigger, str):
            raise InvalidEvent(f'event "source" must be text, got {trigger!r}')
        return cls(window_for_event(event, now, settle_lag), engine, orchestrated, trigger)


def _clients() -> Clients:
    """Clients created per call (endpoint from AWS_ENDPOINT_URL when set, as boto3 honours it)."""
    import boto3

    from lambda_pkg.clients import client_config

    config = client_config()
    return Clients.from_factory(lambda service: boto3.client(service, config=config))


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Analyse a window of flow logs and return the report (DESIGN "Contracts")."""
    report = handle(event, context, environ=os.environ, clients=_clients)
    # One structured line per invocation in the function's log group.
    print(json.dumps({"window": report["window"], "anomalies": len(report["anomalies"]),
                      "requests": {k: v["total_requests"] for k, v in report["vpcs"].items()},
                      "published": report["published"]}))
    return report


def _ledger_table(config: AnalyzerConfig) -> str:
    if not config.ledger_table:
        raise InvalidAnalyzerConfig("ALERT_LEDGER_TABLE", "is not set",
                                    "Set it to the stack's alert ledger table (the Pulumi program does).")
    return config.ledger_table


def handle(event: Any, context: Any, *, environ: Mapping[str, str], clients: Callable[[], Clients]) -> dict[str, Any]:
    """The handler with its environment and clients given: the orchestrator runs the same
    code in-process against the embedded AWS (whose Lambda cannot run handlers)."""
    config = config_from_env(environ)
    invocation = Invocation.of(event, datetime.now(timezone.utc), config.settle_lag)
    window = invocation.window
    aws = clients()
    # Standalone, the learned bands come from the metrics this function published for earlier
    # hours; orchestrated, Dagster attaches them (it also knows the hours of its own run).
    # Likewise the known talkers: from the ledger table's talker state, shared with Dagster.
    history: History | None = None
    known: State | None = None
    store: TalkerStore | None = None
    version = 0
    if not invocation.orchestrated:
        history = {} if config.thresholds.baseline == BASELINE_STATIC else read_history(
            aws.cloudwatch, [vpc.label for vpc in config.vpcs], *lookback(window.start, config.thresholds))
        if config.thresholds.talker_days:
            store = TalkerStore(aws.dynamodb, _ledger_table(config), config.stack)
            known, version = store.load()
    report = analyze(config, window, aws.logs, aws.ec2, engine=invocation.engine, history=history,
                     known_talkers=known)
    origin = {
        "source": config.source,
        "request_id": getattr(context, "aws_request_id", None),
        "trigger": invocation.trigger,
    }
    report["origin"] = origin
    published: dict[str, Any] = {"metrics": False, "alerts_sent": [], "alerts_already_sent": [],
                                 "redelivered": []}
    if not invocation.orchestrated:
        if store is not None and known is not None:
            # Learned before the alerts go out: an SNS outage does not hold learning back, and a
            # retry still finds this hour's talkers new (their first hour is this one).
            store.save(known, version, [(epoch_hour(report), observed(report))], config.thresholds.talker_days)
        ledger = AlertLedger(aws.dynamodb, _ledger_table(config), claim_seconds=config.claim_seconds)
        owner = f"lambda:{origin['request_id'] or uuid.uuid4()}"
        deliverer = Deliverer(ledger, aws.sns, config.sns_topic_arn, owner)
        redelivered = deliverer.drain(prefix=f"{config.stack}/")
        delivery = deliverer.deliver(anomaly_alerts(config.stack, report, report["anomalies"], origin))
        published.update(alerts_sent=sorted(delivery.sent), alerts_already_sent=sorted(delivery.skipped),
                         redelivered=sorted(redelivered.sent))
        redelivered.merge(delivery).raise_for_failures()
        published["metrics"] = publish_metrics_once(ledger, aws.cloudwatch, config.stack, report, window, owner)
    report["published"] = published
    return report
