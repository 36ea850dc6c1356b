"""One analysis of one window: engine -> aggregation -> report -> detections.

No publishing here: the handler (standalone) or the orchestrator decides what to send.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from lambda_pkg import baseline, talkers
from lambda_pkg.aggregate import traffic_for
from lambda_pkg.baseline import History
from lambda_pkg.coverage import assess, delivered_since, flow_logs_by_group
from lambda_pkg.detect import detect_anomalies
from lambda_pkg.engines import Engine
from lambda_pkg.engines.insights import InsightsEngine
from lambda_pkg.engines.raw import RawEngine
from lambda_pkg.errors import InvalidAnalyzerConfig
from lambda_pkg.settings import AnalyzerConfig
from lambda_pkg.window import Window

REPORT_VERSION = 1


def make_engine(name: str, logs_client: Any, config: AnalyzerConfig) -> Engine:
    """The engine called ``name`` over the given CloudWatch Logs client."""
    if name == "raw":
        return RawEngine(logs_client)
    if name == "insights":
        return InsightsEngine(logs_client, deadline_seconds=config.query_deadline_seconds,
                              max_concurrent=config.max_concurrent_queries,
                              evidence_min_count=config.thresholds.unexpected_port_min_count)
    raise InvalidAnalyzerConfig("engine", f"{name!r} is not an engine", "Use insights or raw.")


def analyze(config: AnalyzerConfig, window: Window, logs_client: Any, ec2_client: Any,
            engine: str | None = None, history: History | None = None,
            known_talkers: talkers.State | None = None) -> dict[str, Any]:
    """Analyse ``window``; raises on any failure so a failed read is never a quiet hour.

    Each VPC's report carries its ``coverage``: whether its flow log saw the whole window.
    With ``history`` (the published hourly metrics before the window), each VPC also carries
    its learned bands and ``expected_requests``, and the volume rules use them. With
    ``known_talkers`` (lambda_pkg/talkers.py; learned into in place), each VPC carries its
    ``new_talkers``.
    """
    chosen = make_engine(engine or config.engine, logs_client, config)
    traffic = traffic_for(config, window)
    stats = chosen.run(window, traffic)
    vpcs = {label: agg.report() for label, agg in traffic.items()}
    flow_logs = flow_logs_by_group(ec2_client, [vpc["log_group"] for vpc in vpcs.values()])
    for vpc in vpcs.values():
        empty = not vpc["records_by_status"] and not vpc["malformed_records"]
        alive = delivered_since(logs_client, vpc["log_group"], window.end_ms) if empty else True
        vpc["coverage"] = assess(vpc, vpcs[vpc["peer"]], flow_logs[vpc["log_group"]], window, config.thresholds,
                                 delivered_after=alive)
    return build_report(config, window, chosen.name, stats, vpcs, history, known_talkers)


def build_report(config: AnalyzerConfig, window: Window, engine: str, stats: dict[str, Any],
                 vpcs: dict[str, dict[str, Any]], history: History | None = None,
                 known_talkers: talkers.State | None = None) -> dict[str, Any]:
    """The report (DESIGN "Contracts") around per-VPC reports that carry their coverage."""
    report = {
        "report_version": REPORT_VERSION,
        "window": window.to_json(),
        "engine": engine,
        "engine_stats": stats,
        "generated_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "vpcs": vpcs,
        "thresholds": {k: getattr(config.thresholds, k) for k in config.thresholds.__dataclass_fields__},
    }
    if history is not None:
        baseline.attach(report, history, config.thresholds)
    if known_talkers is not None and config.thresholds.talker_days:
        talkers.attach(report, known_talkers, config.thresholds.talker_days)
    report["anomalies"] = detect_anomalies(vpcs, config.thresholds)
    return report
