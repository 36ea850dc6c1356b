"""CloudWatch dashboard body for the peering, as a plain dict.

Graphs the metric-filter counts, the analyzer's own custom metrics (the reference never
did) and the analyzer function's health with its FunctionName dimension.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lambda_pkg.constants import (
    FILTER_METRIC_REJECTED,
    FILTER_METRIC_TRAFFIC,
    FLOW_LOG_METRIC_NAMESPACE_PREFIX,
    INSIGHTS_FIELDS,
    METRIC_NAMESPACE,
    VPC_LABELS,
)

PERIOD_SECONDS = 300


def filter_metric_namespace(vpc: str) -> str:
    """Namespace of the log-metric-filter metrics for one VPC."""
    return f"{FLOW_LOG_METRIC_NAMESPACE_PREFIX}/{vpc}"


def _metric_widget(title: str, metrics: list[list[Any]], region: str, *, stat: str, x: int, y: int) -> dict[str, Any]:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": 12,
        "height": 6,
        "properties": {
            "title": title,
            "metrics": metrics,
            "period": PERIOD_SECONDS,
            "stat": stat,
            "region": region,
            "view": "timeSeries",
        },
    }


def rejected_connections_query(log_group_name: str) -> str:
    """Logs Insights query listing recent REJECT records with the discovered field names."""
    f = INSIGHTS_FIELDS
    return (
        f"SOURCE '{log_group_name}' | fields @timestamp, {f['srcaddr']}, {f['dstaddr']}, "
        f"{f['srcport']}, {f['dstport']}, {f['action']} "
        f"| filter {f['action']} = \"REJECT\" and {f['log-status']} = \"OK\" "
        "| sort @timestamp desc | limit 20"
    )


def dashboard_body(*, region: str, function_name: str, log_group_names: Mapping[str, str]) -> dict[str, Any]:
    """Build the dashboard JSON; ``log_group_names`` maps "VPC-A"/"VPC-B" to flow-log groups."""
    widgets = [
        _metric_widget(
            "Flow records (metric filter)",
            [[filter_metric_namespace(v), FILTER_METRIC_TRAFFIC, {"label": v}] for v in VPC_LABELS],
            region, stat="Sum", x=0, y=0,
        ),
        _metric_widget(
            "Rejected connections (metric filter)",
            [[filter_metric_namespace(v), FILTER_METRIC_REJECTED, {"label": v}] for v in VPC_LABELS],
            region, stat="Sum", x=12, y=0,
        ),
        _metric_widget(
            "Analyzer: requests, rejects, external traffic per hour",
            [
                [METRIC_NAMESPACE, metric, "VPC", v, {"label": f"{v} {metric}"}]
                for v in VPC_LABELS
                for metric in ("TotalRequests", "RejectedConnections", "ExternalTraffic")
            ],
            region, stat="Maximum", x=0, y=6,
        ),
        _metric_widget(
            "Analyzer function",
            [
                ["AWS/Lambda", "Invocations", "FunctionName", function_name, {"stat": "Sum"}],
                ["AWS/Lambda", "Errors", "FunctionName", function_name, {"stat": "Sum"}],
                ["AWS/Lambda", "Throttles", "FunctionName", function_name, {"stat": "Sum"}],
                ["AWS/Lambda", "Duration", "FunctionName", function_name, {"stat": "Maximum"}],
            ],
            region, stat="Sum", x=12, y=6,
        ),
    ]
    for i, vpc in enumerate(VPC_LABELS):
        widgets.append(
            {
                "type": "log",
                "x": 12 * i,
                "y": 12,
                "width": 12,
                "height": 6,
                "properties": {
                    "title": f"Recent rejected connections ({vpc})",
                    "query": rejected_connections_query(log_group_names[vpc]),
                    "region": region,
                    "view": "table",
                },
            }
        )
    return {"widgets": widgets}
