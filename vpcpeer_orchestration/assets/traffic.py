"""Hourly traffic analysis: flow-log records -> report -> anomalies (with checks) -> alerts and metrics.

Every asset here handles a range of hourly partitions in one run (single-run backfills):
values are ``{partition_key: value}`` for ranges and the bare value for one partition.
"""

import json
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import dagster as dg

from lambda_pkg import baseline, talkers
from lambda_pkg.constants import BASELINE_STATIC, VPC_SLUGS
from lambda_pkg.detect import ANOMALY_SEVERITY, HIGH, detect_anomalies
from lambda_pkg.settings import Thresholds
from vpcpeer_orchestration.assets.failures import permanent_failures
from vpcpeer_orchestration.assets.groups import OWNERS, TRAFFIC_GROUP
from vpcpeer_orchestration.assets.stack import FLOW_LOG_PIPELINE
from vpcpeer_orchestration.continuity import GENERATION_KEY, refuse_if_lost
from vpcpeer_orchestration.partitions import HOURLY
from vpcpeer_orchestration.resources import (
    AnalysisFailed,
    AnalyzerResource,
    FlowLogSourceResource,
    StackResource,
)

FLOW_LOG_RECORDS = dg.AssetKey("flow_log_records")
TRAFFIC_ANALYSIS = dg.AssetKey("traffic_analysis")
TRAFFIC_ANOMALIES = dg.AssetKey("traffic_anomalies")
ANOMALY_ALERTS = dg.AssetKey("anomaly_alerts")
# A stalled pipeline is visible: warn when the analysis is 2 hours old, fail at 3.
FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=3), warn_window=timedelta(hours=2))
# Whole-step retries for transient failures only (throttling past botocore's own retries,
# query deadlines, an alert topic that stays unreachable); anything else fails at once
# with allow_retries=False.
RETRY = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
# The steps with effects on the stack's AWS share a concurrency pool: on a shared instance,
# `dagster instance concurrency set vpcpeer_analysis 1` keeps two runs of one hour apart.
# (Correctness does not depend on it: the ledger's conditional writes do that.)
ANALYSIS_POOL = "vpcpeer_analysis"


def hourly_asset(**kwargs: Any) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """``@dg.asset`` of the hourly chain: UTC hours, single-run backfills, the traffic group.

    ``backfill_policy`` is a beta parameter in this Dagster release; its warning is silenced
    for these definitions only (tests pin the behaviour), never process-wide.
    """
    def decorate(fn: Callable[..., Any]) -> dg.AssetsDefinition:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=dg.BetaWarning)
            return dg.asset(partitions_def=HOURLY, backfill_policy=dg.BackfillPolicy.single_run(),
                            group_name=TRAFFIC_GROUP, owners=OWNERS, **kwargs)(fn)
    return decorate


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


# -- flow_log_records: written by the VPC Flow Logs service (embedded: assets/emulator.py) ---

FLOW_LOG_RECORDS_DESCRIPTION = "VPC Flow Logs records of both VPCs for the hour, in the stack's flow-log groups. "

flow_log_records_written_by_aws = dg.AssetSpec(
    FLOW_LOG_RECORDS, group_name=TRAFFIC_GROUP, kinds={"aws", "cloudwatch"}, owners=OWNERS, partitions_def=HOURLY,
    deps=[FLOW_LOG_PIPELINE],
    description=FLOW_LOG_RECORDS_DESCRIPTION + "Written by the VPC Flow Logs service; not materialised by Dagster.",
)


# -- traffic_analysis -------------------------------------------------------------------

def report_metadata(report: dict[str, Any]) -> dict[str, Any]:
    """Numeric metadata per VPC (plotted across partitions in the UI) and a top-talkers table."""
    metadata: dict[str, Any] = {"engine": report["engine"]}
    rows = []
    for label, vpc in report["vpcs"].items():
        slug = VPC_SLUGS[label]
        for field in ("total_requests", "total_bytes", "rejected_connections", "external_traffic_count", "unique_sources"):
            metadata[f"{slug}_{field}"] = dg.MetadataValue.int(int(vpc[field]))
        if vpc.get("expected_requests") is not None:  # plotted next to total_requests
            metadata[f"{slug}_expected_requests"] = dg.MetadataValue.float(float(vpc["expected_requests"]))
        if vpc.get("new_talkers") is not None:  # hosts and ports of this VPC new across the peering
            metadata[f"{slug}_new_talkers"] = dg.MetadataValue.int(len(vpc["new_talkers"]["new"]))
        rows += [dg.TableRecord({"vpc": label, "source_ip": ip, "requests": count}) for ip, count in vpc["top_source_ips"][:5]]
    metadata["top_talkers"] = dg.MetadataValue.table(
        rows, schema=dg.TableSchema(columns=[dg.TableColumn("vpc", "string"), dg.TableColumn("source_ip", "string"),
                                             dg.TableColumn("requests", "int")]))
    return metadata


@hourly_asset(
    deps=[FLOW_LOG_RECORDS], retry_policy=RETRY, kinds={"python", "aws"}, io_manager_key="reports_io_manager",
    freshness_policy=FRESHNESS,
    description="The analyzer's traffic report for the hour [start, end) UTC: volume, bytes, unique sources and "
                "destinations, rejects, external traffic, top talkers, ports, the thresholds in force, and each "
                "VPC's expected requests and band, learned from the same hour of earlier days, and its talkers "
                "across the peering, with those not seen in the previous days (new talkers). "
                "A failed query fails the partition; an hour without records is a report with zeros.",
)
@permanent_failures
def traffic_analysis(context: dg.AssetExecutionContext, analyzer: AnalyzerResource, flow_logs: FlowLogSourceResource,
                     stack: StackResource) -> Any:
    """Run the analyzer once per hour of the run."""
    hours = windows(context)
    unsettled = [key for key, _, end in hours if end > flow_logs.settled_until()]
    if unsettled:
        # Its records may still arrive: a report now would be too small, and published.
        lag = timedelta(seconds=flow_logs.settle_lag_seconds)
        raise dg.Failure(description=f"{len(unsettled)} hour(s) ({unsettled[0]} ...) have not settled: flow logs arrive "
                                     f"up to {lag} after the hour; analyse them after "
                                     f"{max(end for _, _, end in hours) + lag:%Y-%m-%d %H:%M} UTC",
                         allow_retries=False)
    oldest = flow_logs.oldest_available()
    expired = [key for key, start, _ in hours if start < oldest]
    if expired:
        # The records are gone: reporting zeros would be a silent zero, not an empty hour.
        raise dg.Failure(description=f"{len(expired)} hour(s) ({expired[0]} ...) are older than the flow logs kept "
                                     f"(since {oldest:%Y-%m-%d %H:00} UTC); they cannot be analysed",
                         allow_retries=False)
    generation = refuse_if_lost(context, stack, TRAFFIC_ANALYSIS, context.partition_keys, what="The stored reports",
                                refused="overwrite them with reports of other data")
    reports = {}
    history: baseline.History | None = None
    known: talkers.State | None = None  # the stack's known talkers, read with the history
    version, learned = 0, []
    for i, (key, start, end) in enumerate(hours, 1):
        try:
            report = analyzer.analyze(start, end)
        except AnalysisFailed as exc:
            if exc.transient:
                raise  # the retry policy backs off and runs the step again
            raise dg.Failure(description=f"analysis of {key} failed: {exc}", allow_retries=False,
                             metadata={"partition": key}) from exc
        # Detection is traffic_anomalies' step: the stored report is the traffic and its bands.
        report.pop("anomalies", None)
        thresholds = Thresholds(**report["thresholds"])
        if history is None:
            # Read once, before the run's first hour; each hour of the run then learns from the
            # ones before it, whose metrics are published only after their alerts.
            history = {} if thresholds.baseline == BASELINE_STATIC else baseline.read_history(
                stack.client("cloudwatch"), sorted(report["vpcs"]), *baseline.lookback(start, thresholds))
            if thresholds.talker_days:
                known, version = stack.talker_store().load()
        baseline.attach(report, history, thresholds)
        baseline.learn(history, report)
        if known is not None:
            learned.append(talkers.attach(report, known, thresholds.talker_days))
        reports[key] = report
        context.add_asset_metadata({**report_metadata(report), **({GENERATION_KEY: generation} if generation else {})},
                                   partition_key=key)
        requests = {k: v["total_requests"] for k, v in report["vpcs"].items()}
        context.log.info(f"[{i}/{len(hours)}] {key}: requests {requests}")
    if known is not None:
        # After every hour is analysed: a failed run learns nothing, and its retry judges the same.
        stack.talker_store().save(known, version, learned, thresholds.talker_days)
    return result_value(reports)


# -- traffic_anomalies ------------------------------------------------------------------

def _anomaly_checks() -> list[dg.AssetCheckSpec]:
    """One check per rule, partitioned like the asset: the Partitions view shows which hours
    failed which rule, and a passing hour is green. (Partitioned checks are a preview feature
    in this Dagster release; its warning is silenced for these specs only.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(f"no_{kind}", asset=TRAFFIC_ANOMALIES, partitions_def=HOURLY,
                              description=f"No {kind.replace('_', ' ')} anomaly in the hour "
                                          f"({'ERROR' if severity == HIGH else 'WARN'} when found).")
            for kind, severity in ANOMALY_SEVERITY.items()
        ]


ANOMALY_CHECKS = _anomaly_checks()


def _materializations(context: dg.AssetExecutionContext, asset: dg.AssetKey, keys: list[str]) -> dict[str, Any]:
    """The latest materialization of each partition in ``keys``, as a check evaluation names it."""
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluationTargetMaterializationData,
    )

    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset, asset_partitions=keys), limit=2 * len(keys)).records
    latest: dict[str, Any] = {}
    for record in records:  # newest first
        latest.setdefault(record.partition_key, AssetCheckEvaluationTargetMaterializationData(
            run_id=record.run_id, storage_id=record.storage_id, timestamp=record.timestamp))
    return latest


@hourly_asset(
    kinds={"python"}, io_manager_key="reports_io_manager", check_specs=ANOMALY_CHECKS,
    description="Anomalies detected in the hour's traffic report with the thresholds it was analysed with, each "
                "with its rule, VPC, severity, description and evidence. One check per rule shows them next to "
                "the data: ERROR for high severity, WARN for medium.",
)
def traffic_anomalies(context: dg.AssetExecutionContext, traffic_analysis: Any):
    """Apply every detection rule to each hour's report."""
    reports = by_partition(context, traffic_analysis)
    values = {key: detect_anomalies(report["vpcs"], Thresholds(**report["thresholds"])) for key, report in reports.items()}
    for key, anomalies in values.items():
        context.add_asset_metadata({"count": len(anomalies), "high": sum(a["severity"] == HIGH for a in anomalies),
                                    "types": dg.MetadataValue.json(sorted({a["type"] for a in anomalies}))},
                                   partition_key=key)
    yield dg.Output(result_value(values))
    # One evaluation per rule and hour (an AssetCheckResult would carry no partition in a
    # multi-hour run), each naming the hour's materialization it judged (without it the UI counts
    # the hour's check as missing), then the check's own output, which the step must produce.
    judged = _materializations(context, TRAFFIC_ANOMALIES, list(values))
    for kind, severity in ANOMALY_SEVERITY.items():
        for key, anomalies in values.items():
            found = [a for a in anomalies if a["type"] == kind]
            yield dg.AssetCheckEvaluation(
                asset_key=TRAFFIC_ANOMALIES, check_name=f"no_{kind}", passed=not found, partition=key,
                target_materialization_data=judged.get(key),
                severity=dg.AssetCheckSeverity.ERROR if severity == HIGH else dg.AssetCheckSeverity.WARN,
                metadata={"found": len(found),
                          "evidence": dg.MetadataValue.json([{"vpc": a["vpc"], "severity": a["severity"],
                                                              "description": a["description"],
                                                              "evidence": a["evidence"]} for a in found[:10]])},
            )
        yield dg.Output(None, output_name=f"{TRAFFIC_ANOMALIES.to_python_identifier()}_no_{kind}")


# -- anomaly_alerts ---------------------------------------------------------------------

def delivery_owner(context: dg.AssetExecutionContext) -> str:
    """Who holds a ledger claim: this run (a retried step of the same run takes its claims over)."""
    return f"dagster:{context.run.run_id}"


@hourly_asset(
    key=ANOMALY_ALERTS, retry_policy=RETRY, kinds={"aws", "sns", "dynamodb"}, io_manager_key="reports_io_manager",
    pool=ANALYSIS_POOL,
    description="SNS alerts for the hour's anomalies, one message per anomaly carrying its alert id (stack, hour, "
                "rule, VPC, subject). Each goes through the stack's delivery ledger, shared with the standalone "
                "Lambda: claimed before publishing, marked sent after, so a retry, a re-run, a backfill or a "
                "concurrent run never sends it twice and a failed publish is delivered later. Alerts still due "
                "from earlier failures are delivered first.",
)
@permanent_failures
def anomaly_alerts(context: dg.AssetExecutionContext, traffic_analysis: Any, traffic_anomalies: Any,
                   stack: StackResource) -> Any:
    from lambda_pkg.delivery import Deliverer
    from lambda_pkg.delivery import anomaly_alerts as render

    reports = by_partition(context, traffic_analysis)
    anomalies_by_hour = by_partition(context, traffic_anomalies)
    deliverer = Deliverer(stack.alert_ledger(), stack.client("sns"), stack.outputs()["sns_topic_arn"],
                          delivery_owner(context))
    total = deliverer.drain(prefix=f"{stack.stack}/")
    if total.sent:
        context.log.info(f"delivered {len(total.sent)} alert(s) due from earlier failures")
    results = {}
    for key in context.partition_keys:
        origin = {"partition": key, "run_id": context.run.run_id, "stack": stack.stack, "source": "dagster"}
        delivery = deliverer.deliver(render(stack.stack, reports[key], anomalies_by_hour[key], origin))
        total = total.merge(delivery)
        results[key] = {"sent": len(delivery.sent), "message_ids": sorted(delivery.sent.values()),
                        "alert_ids": sorted([*delivery.sent, *delivery.skipped, *delivery.failed]),
                        "already_sent": len(delivery.skipped), "failed": sorted(delivery.failed)}
        context.add_asset_metadata({"sent": len(delivery.sent), "already_sent": len(delivery.skipped),
                                    "failed": len(delivery.failed),
                                    "alert_ids": dg.MetadataValue.json(results[key]["alert_ids"])},
                                   partition_key=key)
    stack.durable()
    total.raise_for_failures()  # after every other alert went out: the retry completes what is missing
    return result_value(results)


# -- traffic_metrics --------------------------------------------------------------------

@hourly_asset(
    deps=[ANOMALY_ALERTS], retry_policy=RETRY, kinds={"aws", "cloudwatch"}, io_manager_key="reports_io_manager",
    pool=ANALYSIS_POOL,
    description="The analyzer's five custom CloudWatch metrics per VPC for the hour, stamped at the hour's start "
                "and published once (a ledger claim per hour, then the datapoint check); published after the "
                "alerts. A VPC whose flow log did not cover the hour gets no datapoint rather than a zero.",
)
@permanent_failures
def traffic_metrics(context: dg.AssetExecutionContext, traffic_analysis: Any, stack: StackResource) -> Any:
    from lambda_pkg.delivery import publish_metrics_once
    from lambda_pkg.publish import covered, metric_data
    from lambda_pkg.window import Window

    reports = by_partition(context, traffic_analysis)
    ledger, cloudwatch = stack.alert_ledger(), stack.client("cloudwatch")
    results = {}
    for key, start, end in windows(context):
        window = Window(start, end)
        published = publish_metrics_once(ledger, cloudwatch, stack.stack, reports[key], window, delivery_owner(context))
        data = [{k: v for k, v in d.items() if k != "Timestamp"} for d in metric_data(reports[key], window)]
        results[key] = {"published": published, "metrics": data, "vpcs": covered(reports[key])}
        context.add_asset_metadata({"published_now": published, "datapoints": len(data)}, partition_key=key)
    stack.durable()
    return json.loads(json.dumps(result_value(results)))
