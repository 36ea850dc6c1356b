"""Lambda entry point: thin wiring of configuration, clients, analysis and publishing.

``event = {}`` analyses the last complete UTC hour before the settle lag;
``{"window": {"start", "end"}}`` analyses that window; ``"engine"`` overrides the
configured engine; ``"orchestrated": true`` (set by the Dagster orchestrator) returns the
report without publishing metrics or alerts, which the orchestrator publishes itself.
Any failure raises, so Lambda records an error and nothing is published for the window.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from lambda_pkg.analysis import analyze
from lambda_pkg.publish import MetricsPublisher, send_alert
from lambda_pkg.settings import config_from_env
from lambda_pkg.window import window_for_event


def _clients() -> tuple[Any, Any, Any]:
    """Clients created per call (endpoint from AWS_ENDPOINT_URL when set, as boto3 honours it)."""
    import boto3

    from lambda_pkg.clients import client_config

    config = client_config()
    return boto3.client("logs", config=config), boto3.client("cloudwatch", config=config), boto3.client("sns", config=config)


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Analyse a window of flow logs and return the report (DESIGN "Contracts")."""
    report = handle(event, context, environ=os.environ, clients=_clients)
    # One structured line per invocation in the function's log group.
    print(json.dumps({"window": report["window"], "anomalies": len(report["anomalies"]),
                      "requests": {k: v["total_requests"] for k, v in report["vpcs"].items()},
                      "published": report["published"]}))
    return report


def handle(event: Any, context: Any, *, environ: Mapping[str, str],
           clients: Callable[[], tuple[Any, Any, Any]]) -> dict[str, Any]:
    """The handler with its environment and clients given: the orchestrator runs the same
    code in-process against the local emulator (whose Lambda cannot run handlers)."""
    config = config_from_env(environ)
    event = event or {}
    window = window_for_event(event, datetime.now(timezone.utc), config.settle_lag)
    logs, cloudwatch, sns = clients()
    report = analyze(config, window, logs, engine=event.get("engine"))
    origin = {
        "source": config.source,
        "request_id": getattr(context, "aws_request_id", None),
        "trigger": event.get("source", "direct invocation"),
    }
    report["origin"] = origin
    published: dict[str, Any] = {"metrics": False, "alert_message_id": None}
    if not event.get("orchestrated"):
        published["metrics"] = MetricsPublisher(cloudwatch).publish(report, window)
        if report["anomalies"]:
            published["alert_message_id"] = send_alert(sns, config.sns_topic_arn, report, origin)
    report["published"] = published
    return report
