"""Hourly traffic analysis: report -> anomalies (with checks) -> alerts and metrics.

Every asset here handles a range of hourly partitions in one run (single-run backfills):
values are ``{partition_key: value}`` for ranges and the bare value for one partition.
"""

import json
import warnings
from datetime import datetime, timedelta
from typing import Any

import dagster as dg

from lambda_pkg.detect import ANOMALY_SEVERITY, HIGH
from vpcpeer_orchestration.partitions import hourly_partitions
from vpcpeer_orchestration.resources import AnalysisFailed, AnalyzerResource, AwsResource, FlowLogSourceResource, StackResource

# Single-run backfills are a beta parameter in this Dagster release; tests pin the behaviour.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

OWNERS = ["team:network-security"]
GROUP = "traffic"
HOURLY = hourly_partitions()
# A stalled pipeline is visible: warn when the analysis is 2 hours old, fail at 3.
FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=3), warn_window=timedelta(hours=2))
RETRY = dg.RetryPolicy(max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
SINGLE_RUN = dg.BackfillPolicy.single_run()

flow_log_records = dg.AssetSpec(
    "flow_log_records", group_name=GROUP, kinds={"aws", "cloudwatch"}, owners=OWNERS, partitions_def=HOURLY,
    deps=["flow_log_pipeline"],
    description="VPC Flow Logs records of both VPCs for the hour, written into the log groups by AWS "
                "(by the flow-log emulator on the embedded default). Not materialised by Dagster.",
)


def windows(context: dg.AssetExecutionContext) -> list[tuple[str, datetime, datetime]]:
    """(partition key, start, end) of every hour this run covers."""
    result = []
    for key in context.partition_keys:
        window = HOURLY.time_window_for_partition_key(key)
        result.append((key, window.start, window.end))
    return result


def by_partition(context: dg.AssetExecutionContext, value: Any) -> dict[str, Any]:
    """An upstream value as ``{partition_key: value}`` whatever the run's size."""
    keys = context.partition_keys
    return value if len(keys) > 1 else {keys[0]: value}


def result_value(values: dict[str, Any]) -> Any:
    return values if len(values) > 1 else next(iter(values.values()))


def report_metadata(report: dict[str, Any]) -> dict[str, Any]:
    """Numeric metadata per VPC (plotted across partitions in the UI) and a top-talkers table."""
    metadata: dict[str, Any] = {"engine": report["engine"], "anomalies": len(report["anomalies"])}
    rows = []
    for label, vpc in report["vpcs"].items():
        slug = label.lower().replace("-", "_")
        for field in ("total_requests", "total_bytes", "rejected_connections", "external_traffic_count", "unique_sources"):
            metadata[f"{slug}_{field}"] = dg.MetadataValue.int(int(vpc[field]))
        rows += [dg.TableRecord({"vpc": label, "source_ip": ip, "requests": count}) for ip, count in vpc["top_source_ips"][:5]]
    metadata["top_talkers"] = dg.MetadataValue.table(
        rows, schema=dg.TableSchema(columns=[dg.TableColumn("vpc", "string"), dg.TableColumn("source_ip", "string"),
                                             dg.TableColumn("requests", "int")]))
    return metadata


@dg.asset(
    partitions_def=HOURLY, deps=[flow_log_records], backfill_policy=SINGLE_RUN, retry_policy=RETRY,
    group_name=GROUP, kinds={"python", "aws"}, owners=OWNERS, io_manager_key="reports_io_manager",
    freshness_policy=FRESHNESS,
    description="The analyzer's report for the hour [start, end) UTC: volume, bytes, unique sources and "
                "destinations, rejects, external traffic, top talkers, ports, and the detected anomalies. "
                "A failed query fails the partition; an hour without records is a report with zeros.",
)
def traffic_analysis(context: dg.AssetExecutionContext, analyzer: AnalyzerResource,
                     flow_logs: FlowLogSourceResource) -> Any:
    """Run the analyzer once per hour of the run."""
    hours = windows(context)
    oldest = flow_logs.oldest_available()
    expired = [key for key, start, _ in hours if start < oldest]
    if expired:
        # The records are gone: reporting zeros would be a silent zero, not an empty hour.
        raise dg.Failure(description=f"{len(expired)} hour(s) ({expired[0]} ...) are older than the flow logs kept "
                                     f"(since {oldest:%Y-%m-%d %H:00} UTC); they cannot be analysed",
                         allow_retries=False)
    written = flow_logs.ensure_hours([start for _, start, _ in hours])
    if written:
        context.log.info(f"flow-log emulator wrote {sum(written.values())} records for {len(written)} hour(s)")
    reports = {}
    for i, (key, start, end) in enumerate(hours, 1):
        try:
            report = analyzer.analyze(start, end)
        except AnalysisFailed as exc:
            if exc.transient:
                raise  # the retry policy backs off and tries again
            raise dg.Failure(description=f"analysis of {key} failed: {exc}", allow_retries=False,
                             metadata={"partition": key}) from exc
        reports[key] = report
        context.add_asset_metadata(report_metadata(report), partition_key=key)
        requests = {k: v["total_requests"] for k, v in report["vpcs"].items()}
        context.log.info(f"[{i}/{len(hours)}] {key}: requests {requests}, {len(report['anomalies'])} anomalies")
    return result_value(reports)


ANOMALY_CHECKS = [
    dg.AssetCheckSpec(f"no_{kind}", asset="traffic_anomalies",
                      description=f"No {kind.replace('_', ' ')} anomaly in the hour(s) of the run "
                                  f"({'ERROR' if severity == HIGH else 'WARN'} when found).")
    for kind, severity in ANOMALY_SEVERITY.items()
]


@dg.asset(
    partitions_def=HOURLY, backfill_policy=SINGLE_RUN, group_name=GROUP, kinds={"python"}, owners=OWNERS,
    io_manager_key="reports_io_manager", check_specs=ANOMALY_CHECKS,
    description="Anomalies detected in the hour, each with its rule, VPC, severity, description and evidence. "
                "One check per rule shows them next to the data: ERROR for high severity, WARN for medium.",
)
def traffic_anomalies(context: dg.AssetExecutionContext, traffic_analysis: Any):
    reports = by_partition(context, traffic_analysis)
    values = {key: report["anomalies"] for key, report in reports.items()}
    for key, anomalies in values.items():
        context.add_asset_metadata({"count": len(anomalies), "high": sum(a["severity"] == HIGH for a in anomalies),
                                    "types": dg.MetadataValue.json(sorted({a["type"] for a in anomalies}))},
                                   partition_key=key)
    yield dg.Output(result_value(values))
    for kind, severity in ANOMALY_SEVERITY.items():
        found = [(key, a) for key, anomalies in values.items() for a in anomalies if a["type"] == kind]
        yield dg.AssetCheckResult(
            check_name=f"no_{kind}", passed=not found,
            severity=dg.AssetCheckSeverity.ERROR if severity == HIGH else dg.AssetCheckSeverity.WARN,
            metadata={"found": len(found), "hours": dg.MetadataValue.json(sorted({k for k, _ in found})),
                      "evidence": dg.MetadataValue.json([{"hour": k, "vpc": a["vpc"], "description": a["description"],
                                                          "evidence": a["evidence"]} for k, a in found[:10]])},
        )


def already_alerted(context: dg.AssetExecutionContext, partition: str) -> set[str]:
    """Keys alerted for this hour by earlier materialisations (the ledger is Dagster's event log)."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("anomaly_alerts"), asset_partitions=[partition]), limit=1)
    for record in records.records:
        materialization = record.asset_materialization
        if materialization and "alerted_keys" in materialization.metadata:
            return set(materialization.metadata["alerted_keys"].value)
    return set()


def alert_key(partition: str, anomaly: dict[str, Any]) -> str:
    """Hour, rule, VPC and subject (port, source, ...) of an anomaly: what makes it the same alert."""
    return f"{partition}|{anomaly['key']}"


@dg.asset(
    partitions_def=HOURLY, backfill_policy=SINGLE_RUN, retry_policy=RETRY, group_name=GROUP, kinds={"aws", "sns"},
    owners=OWNERS, io_manager_key="reports_io_manager",
    description="SNS alerts for the hour's new anomalies. Idempotent: re-running or back-filling an hour "
                "sends nothing already sent for that hour, rule, VPC and subject. Each message names the "
                "partition, run and stack that produced it.",
)
def anomaly_alerts(context: dg.AssetExecutionContext, traffic_analysis: Any, traffic_anomalies: Any,
                   aws: AwsResource, stack: StackResource) -> Any:
    from lambda_pkg.publish import send_alert

    reports = by_partition(context, traffic_analysis)
    anomalies_by_hour = by_partition(context, traffic_anomalies)
    topic = stack.outputs()["sns_topic_arn"]
    sns = None
    results = {}
    for key in context.partition_keys:
        sent_before = already_alerted(context, key)
        new = [a for a in anomalies_by_hour[key] if alert_key(key, a) not in sent_before]
        message_id = None
        if new:
            sns = sns or aws.client("sns")
            report = {**reports[key], "anomalies": new}
            origin = {"partition": key, "run_id": context.run.run_id, "stack": stack.stack, "source": "dagster"}
            message_id = send_alert(sns, topic, report, origin)
        alerted = sorted(sent_before | {alert_key(key, a) for a in new})
        results[key] = {"sent": len(new), "message_id": message_id, "alerted_keys": alerted}
        context.add_asset_metadata({"sent": len(new), "skipped_already_sent": len(anomalies_by_hour[key]) - len(new),
                                    "message_id": message_id or "", "alerted_keys": dg.MetadataValue.json(alerted)},
                                   partition_key=key)
    return result_value(results)


@dg.asset(
    partitions_def=HOURLY, backfill_policy=SINGLE_RUN, retry_policy=RETRY, group_name=GROUP,
    kinds={"aws", "cloudwatch"}, owners=OWNERS, io_manager_key="reports_io_manager",
    description="The analyzer's five custom CloudWatch metrics per VPC for the hour, stamped at the hour's "
                "start and published once: a re-run finds the datapoint and publishes nothing.",
)
def traffic_metrics(context: dg.AssetExecutionContext, traffic_analysis: Any, aws: AwsResource) -> Any:
    from lambda_pkg.publish import MetricsPublisher, metric_data
    from lambda_pkg.window import Window

    reports = by_partition(context, traffic_analysis)
    publisher = MetricsPublisher(aws.client("cloudwatch"))
    results = {}
    for key, start, end in windows(context):
        window = Window(start, end)
        published = publisher.publish(reports[key], window)
        data = [{k: v for k, v in d.items() if k != "Timestamp"} for d in metric_data(reports[key], window)]
        results[key] = {"published": published, "metrics": data}
        context.add_asset_metadata({"published_now": published, "datapoints": len(data)}, partition_key=key)
    return json.loads(json.dumps(result_value(results)))
