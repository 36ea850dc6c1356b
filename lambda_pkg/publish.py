"""Custom metrics and alert text (pure), and their thin CloudWatch/SNS adapters."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambda_pkg.constants import CUSTOM_METRICS, METRIC_NAMESPACE
from lambda_pkg.detect import SEVERITY_ORDER
from lambda_pkg.errors import PublishError
from lambda_pkg.window import Window

SUBJECT_LIMIT = 100  # SNS subject length limit
# A window's metrics are put in one call; finding this one stamped at the window start
# means the window was published.
MARKER_METRIC = next(iter(CUSTOM_METRICS))


def covered(report: Mapping[str, Any]) -> list[str]:
    """The VPCs whose flow logs covered the window: only their numbers are facts worth a datapoint."""
    return [label for label, vpc in report["vpcs"].items() if vpc.get("coverage", {}).get("complete", True)]


def metric_data(report: Mapping[str, Any], window: Window) -> list[dict[str, Any]]:
    """The five metrics per covered VPC, stamped at the window start so a window has one datapoint.

    A VPC whose flow log did not cover the window gets no datapoint rather than a zero.
    """
    return [
        {
            "MetricName": metric,
            "Dimensions": [{"Name": "VPC", "Value": label}],
            "Timestamp": window.start,
            "Value": float(report["vpcs"][label][field]),
            "Unit": unit,
        }
        for label in covered(report)
        for metric, (field, unit) in CUSTOM_METRICS.items()
    ]


class MetricsPublisher:
    """Publishes a window's metrics once: a re-run finds the datapoint and publishes nothing."""

    def __init__(self, cloudwatch: Any, namespace: str = METRIC_NAMESPACE) -> None:
        self.cloudwatch = cloudwatch
        self.namespace = namespace

    def already_published(self, window: Window, vpc: str) -> bool:
        try:
            response = self.cloudwatch.get_metric_statistics(
                Namespace=self.namespace, MetricName=MARKER_METRIC,
                Dimensions=[{"Name": "VPC", "Value": vpc}],
                StartTime=window.start, EndTime=window.start + timedelta(minutes=1),
                Period=60, Statistics=["SampleCount"],
            )
        except (ClientError, BotoCoreError) as exc:
            raise PublishError(f"could not check earlier metrics for {vpc}: {exc}") from exc
        return bool(response.get("Datapoints"))

    def publish(self, report: Mapping[str, Any], window: Window) -> bool:
        """True if published now, False if this window's metrics were already there (or none are due)."""
        labels = covered(report)
        if not labels or all(self.already_published(window, label) for label in labels):
            return False
        try:
            self.cloudwatch.put_metric_data(Namespace=self.namespace, MetricData=metric_data(report, window))
        except (ClientError, BotoCoreError) as exc:
            raise PublishError(f"PutMetricData to {self.namespace} failed: {exc}") from exc
        return True


def alert_subject(report: Mapping[str, Any], anomaly: Mapping[str, Any]) -> str:
    """Short SNS subject of one anomaly: severity, rule, VPC, hour."""
    subject = (f"vpcpeer: {anomaly['severity'].upper()} {anomaly['type']} on {anomaly['vpc']} "
               f"{report['window']['start'][:13]}h UTC")
    return subject[:SUBJECT_LIMIT]


def alert_message(report: Mapping[str, Any], anomalies: list[Mapping[str, Any]], origin: Mapping[str, Any],
                  alert_id: str | None = None) -> str:
    """Alert body: anomalies grouped by severity, traffic summary, top sources, window, origin."""
    window = report["window"]
    lines = [
        "vpcpeer traffic analysis: anomalies detected",
        f"Window: {window['start']} to {window['end']} (UTC, end exclusive)",
        "",
    ]
    for severity in SEVERITY_ORDER:
        group = [a for a in anomalies if a["severity"] == severity]
        if group:
            lines.append(f"{severity.upper()} SEVERITY ({len(group)})")
            lines.extend(f"  - [{a['vpc']}] {a['type']}: {a['description']}" for a in group)
            lines.append("")
    lines.append("TRAFFIC SUMMARY")
    for label, vpc in report["vpcs"].items():
        lines.append(
            f"  {label}: {vpc['total_requests']} requests, {vpc['total_bytes']} bytes, "
            f"{vpc['rejected_connections']} rejected, {vpc['external_traffic_count']} external, "
            f"{vpc['unique_sources']} sources"
        )
        if not vpc.get("coverage", {}).get("complete", True):
            lines.append(f"    NOT COVERED: {'; '.join(vpc['coverage']['reasons'])}")
        if vpc["top_source_ips"]:
            talkers = ", ".join(f"{ip} ({count})" for ip, count in vpc["top_source_ips"][:5])
            lines.append(f"    top sources: {talkers}")
    lines.append("")
    if alert_id:
        lines.append(f"Alert id: {alert_id}")
    lines.append("Sent by: " + ", ".join(f"{k}={v}" for k, v in origin.items() if v is not None))
    return "\n".join(lines)


# SNS errors a retry cannot fix: the topic or its key is gone, or refuses the caller.
PERMANENT_PUBLISH_CODES = frozenset({
    "NotFound", "NotFoundException", "AuthorizationError", "AuthorizationErrorException", "InvalidParameter",
    "InvalidParameterException", "KMSDisabled", "KMSDisabledException", "KMSNotFound", "KMSNotFoundException",
    "KMSAccessDenied", "KMSAccessDeniedException", "AccessDenied", "AccessDeniedException",
})


def publish_message(sns: Any, topic_arn: str, subject: str, body: str, attributes: Mapping[str, str]) -> str:
    """Publish one message with string attributes; returns the SNS message id."""
    try:
        response = sns.publish(
            TopicArn=topic_arn, Subject=subject[:SUBJECT_LIMIT], Message=body,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in PERMANENT_PUBLISH_CODES:
            raise PublishError(f"SNS Publish to {topic_arn} refused ({code}): the topic is gone or refuses this role "
                               "or its key; roll the stack out again", permanent=True) from exc
        raise PublishError(f"SNS Publish to {topic_arn} failed: {exc}") from exc
    except BotoCoreError as exc:
        raise PublishError(f"SNS Publish to {topic_arn} failed: {exc}") from exc
    return response["MessageId"]
