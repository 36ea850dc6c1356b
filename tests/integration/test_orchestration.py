"""The Dagster graph of the embedded target against a real embedded AWS: rollout with posture
checks, the hourly chain (the flow-log emulator's step included), idempotent alerts and
metrics, single-run ranges, sensors, failures, and state that must not be silently replaced."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from lambda_pkg.constants import DEFAULT_SETTLE_LAG_SECONDS, METRIC_NAMESPACE
from lambda_pkg.detect import ANOMALY_SEVERITY
from lambda_pkg.window import last_complete_hour
from vpcpeer_orchestration.definitions import build_definitions
from vpcpeer_orchestration.local.alerts import received_alerts
from vpcpeer_orchestration.local.server import LocalAws
from vpcpeer_orchestration.local.stack import EmbeddedStack
from vpcpeer_orchestration.sensors import alarm_state_sensor, analysis_failure_sensor, stack_drift_sensor

# The last hour whose flow logs have settled: the schedule's partition now.
LAST = last_complete_hour(datetime.now(timezone.utc), timedelta(seconds=DEFAULT_SETTLE_LAG_SECONDS)).start
SCAN_HOUR = LAST - timedelta(hours=1)
KEY = SCAN_HOUR.strftime("%Y-%m-%d-%H:00")
CHAIN_ASSETS = {"traffic_analysis", "traffic_anomalies", "anomaly_alerts", "traffic_metrics"}


def key_of(hour: datetime) -> str:
    return hour.strftime("%Y-%m-%d-%H:00")


@pytest.fixture(scope="module")
def env(local_aws):
    instance = dg.DagsterInstance.ephemeral()
    defs = build_definitions("embedded", {"VPCPEER_HOME": str(local_aws.home)})
    rollout = defs.resolve_job_def("rollout_job").execute_in_process(instance=instance)
    stack = EmbeddedStack(local_aws, "dev")
    stack.flow_log_emulator().inject("port-scan", SCAN_HOUR)
    return {"defs": defs, "instance": instance, "rollout": rollout, "stack": stack, "aws": local_aws}


def chain(env, partition_key: str) -> dg.ExecuteInProcessResult:
    return env["defs"].resolve_job_def("traffic_analysis_job").execute_in_process(
        partition_key=partition_key, instance=env["instance"], raise_on_error=False)


def sensor_resources(env) -> dict:
    return {"stack": env["defs"].resources["stack"]}


def test_rollout_materialises_the_stack_and_its_posture_checks_pass(env) -> None:
    result = env["rollout"]
    assert result.success
    # The first rollout records where the hourly partitions start: the day the embedded flow logs
    # reach back to (14 days, what CloudWatch accepts writes for).
    from vpcpeer_orchestration.partitions import PARTITIONS_START_FILE

    recorded = (Path(env["instance"].root_directory) / PARTITIONS_START_FILE).read_text().strip()
    start = datetime.strptime(recorded, "%Y-%m-%d-%H:%M").replace(tzinfo=timezone.utc)
    assert start.hour == 0 and timedelta(days=14) <= datetime.now(timezone.utc) - start <= timedelta(days=15)
    keys = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert keys == {"lambda_package", "peered_vpcs", "peering_security_groups", "flow_log_pipeline", "alerting",
                    "analyzer_function", "monitoring_dashboard"}
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"peering_active": True, "flow_logs_active": True, "rules_match_declared_ports": True,
                      "default_groups_empty": True}
    metadata = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert metadata["peered_vpcs"]["aws_generation"].value == env["aws"].generation()
    # Each network asset shows its own facts, read from the live stack's outputs.
    outputs = env["stack"].outputs()
    assert outputs["vpc_a_id"].startswith("vpc-") and metadata["peered_vpcs"]["vpc_a_id"].value == outputs["vpc_a_id"]
    assert metadata["peered_vpcs"]["vpc_b_cidr"].value == "10.1.0.0/16"
    assert metadata["peered_vpcs"]["vpcs"].value["VPC-A"]["private_subnet_ids"] == outputs["vpc_a_private_subnet_ids"]
    rules = {(r.data["vpc"], r.data["port"], r.data["peer_cidr"]) for r in metadata["peering_security_groups"]["rules"].value.records}
    assert rules == {("VPC-A", 443, "10.1.0.0/16"), ("VPC-A", 8080, "10.1.0.0/16"), ("VPC-B", 443, "10.0.0.0/16"),
                     ("VPC-B", 3306, "10.0.0.0/16")}
    assert metadata["flow_log_pipeline"]["vpc_b_flow_log_id"].value == outputs["vpc_b_flow_log_id"]
    assert metadata["alerting"]["sns_topic_arn"].value == outputs["sns_topic_arn"]
    assert "vpcpeer-dev-vpc-a-flow-logs-silent" in metadata["alerting"]["alarms"].value
    assert metadata["analyzer_function"]["lambda_function_arn"].value == outputs["lambda_function_arn"]
    assert metadata["analyzer_function"]["lambda_code_sha256"].value == outputs["lambda_code_sha256"]
    assert metadata["monitoring_dashboard"]["dashboard_url"].value == outputs["dashboard_url"]
    assert "vpc_a_id" not in metadata["alerting"] and "sns_topic_arn" not in metadata["peered_vpcs"]


def test_the_rollout_deploys_the_zip_lambda_package_built(env) -> None:
    import base64

    package = env["rollout"].asset_value("lambda_package")
    outputs = env["stack"].outputs()
    function = env["stack"].clients("lambda").get_function_configuration(FunctionName=outputs["lambda_function_name"])
    assert base64.b64decode(function["CodeSha256"]).hex() == package["sha256"]
    assert outputs["lambda_code_sha256"] == function["CodeSha256"]


def test_the_flow_log_emulator_runs_as_its_own_step_and_writes_each_hour_once(env) -> None:
    hour = LAST - timedelta(hours=12)
    first = chain(env, key_of(hour))
    assert first.success
    [event] = [e for e in first.get_asset_materialization_events() if e.asset_key == dg.AssetKey("flow_log_records")]
    assert event.materialization.metadata["records_written"].value > 500
    again = chain(env, key_of(hour))
    [event] = [e for e in again.get_asset_materialization_events() if e.asset_key == dg.AssetKey("flow_log_records")]
    assert event.materialization.metadata["records_written"].value == 0
    assert again.asset_value("traffic_analysis")["vpcs"] == first.asset_value("traffic_analysis")["vpcs"]


def test_a_port_scan_hour_fails_its_check_and_alerts_once(env) -> None:
    first = chain(env, KEY)
    assert first.success
    report = first.asset_value("traffic_analysis")
    assert report["window"]["start"].startswith(SCAN_HOUR.strftime("%Y-%m-%dT%H"))
    assert "anomalies" not in report  # detection is traffic_anomalies' step
    anomalies = first.asset_value("traffic_anomalies")
    [scan] = [a for a in anomalies if a["type"] == "port_scan"]
    assert scan["evidence"]["source"].startswith("198.51.100.")
    checks = {c.check_name: c for c in first.get_asset_check_evaluations()}
    assert checks["no_port_scan"].passed is False and checks["no_port_scan"].severity == dg.AssetCheckSeverity.ERROR
    # Near the afternoon peak the probes also lift VPC-A over the spike threshold (the hour of
    # day is the clock's): the check must agree with the detector, and each anomaly alerts once.
    spiked = any(a["type"] == "traffic_spike" for a in anomalies)
    assert checks["no_traffic_spike"].passed is not spiked
    assert {a["type"] for a in anomalies} <= {"port_scan", "traffic_spike"}
    alerts = first.asset_value("anomaly_alerts")
    assert alerts["sent"] == len(anomalies) and len(alerts["message_ids"]) == len(anomalies)
    assert sorted(alerts["alert_ids"]) == sorted(f"dev/{report['window']['start']}/{a['key']}" for a in anomalies)
    inbox = [a for a in received_alerts(env["stack"]) if KEY in a["message"]]
    assert len(inbox) == len(anomalies)
    assert all(f"run_id={first.run_id}" in a["message"] and "stack=dev" in a["message"] for a in inbox)
    assert first.asset_value("traffic_metrics")["published"] is True

    again = chain(env, KEY)
    assert again.success
    assert again.asset_value("anomaly_alerts")["sent"] == 0
    assert again.asset_value("anomaly_alerts")["already_sent"] == len(anomalies)
    assert again.asset_value("traffic_metrics")["published"] is False
    assert len([a for a in received_alerts(env["stack"]) if KEY in a["message"]]) == len(anomalies)


def test_a_range_of_hours_runs_once_with_metadata_per_partition(env) -> None:
    first, last = key_of(LAST - timedelta(hours=4)), key_of(LAST)
    result = env["defs"].resolve_job_def("traffic_analysis_job").execute_in_process(
        instance=env["instance"], tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
    )
    assert result.success
    reports = result.asset_value("traffic_analysis")
    assert len(reports) == 5
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("traffic_analysis")]
    assert sorted(e.partition for e in events) == sorted(reports)
    for event in events:
        requests = event.materialization.metadata["vpc_a_total_requests"].value
        assert requests == reports[event.partition]["vpcs"]["VPC-A"]["total_requests"]
    assert result.asset_value("anomaly_alerts")[KEY]["sent"] == 0  # alerted by the single-hour run before
    # Each VPC's expected requests are plotted next to its requests, hour by hour.
    assert all(e.materialization.metadata["vpc_a_expected_requests"].value
               == reports[e.partition]["vpcs"]["VPC-A"]["expected_requests"] for e in events)
    # One result per rule and hour: the Partitions view shows which hours failed which rule.
    anomalies = result.asset_value("traffic_anomalies")
    evaluations = result.get_asset_check_evaluations()
    assert sorted((c.check_name, c.partition) for c in evaluations) == sorted(
        (f"no_{kind}", key) for kind in ANOMALY_SEVERITY for key in reports)
    for check in evaluations:
        kind = check.check_name.removeprefix("no_")
        assert check.passed is not any(a["type"] == kind for a in anomalies[check.partition])
    assert not next(c for c in evaluations if c.check_name == "no_port_scan" and c.partition == KEY).passed
    # What the UI's Partitions view of a check reads: a status per hour, not "missing".
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionResolvedStatus as Status

    from vpcpeer_orchestration.partitions import HOURLY

    scan = dg.AssetCheckKey(dg.AssetKey("traffic_anomalies"), "no_port_scan")
    state = env["instance"].event_log_storage.get_asset_check_state([(scan, HOURLY)])[scan]
    assert KEY in state.subsets[Status.FAILED].value.get_partition_keys()
    assert set(reports) - {KEY} <= set(state.subsets[Status.SUCCEEDED].value.get_partition_keys())


def test_stack_drift_sensor_requests_a_rollout_on_drift(env) -> None:
    with dg.build_sensor_context(resources=sensor_resources(env), instance=env["instance"]) as context:
        assert isinstance(stack_drift_sensor(context), dg.SkipReason)
    ec2 = env["stack"].clients("ec2")
    group = env["stack"].outputs()["vpc_b_security_group_id"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    try:
        with dg.build_sensor_context(resources=sensor_resources(env), instance=env["instance"]) as context:
            request = stack_drift_sensor(context)
        assert isinstance(request, dg.RunRequest) and "rules_match_declared_ports" in request.tags["vpcpeer/drift"]
    finally:
        rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]
        ec2.revoke_security_group_ingress(GroupId=group, SecurityGroupRuleIds=[
            r["SecurityGroupRuleId"] for r in rules if r.get("CidrIpv4") == "0.0.0.0/0"])


def test_alarm_state_sensor_records_changes_only(env) -> None:
    prefix = env["stack"].config.prefix
    env["stack"].clients("cloudwatch").set_alarm_state(AlarmName=f"{prefix}-vpc-a-high-rejected-connections",
                                                       StateValue="ALARM", StateReason="test")
    with dg.build_sensor_context(resources=sensor_resources(env), instance=env["instance"]) as context:
        result = alarm_state_sensor(context)
        assert isinstance(result, dg.SensorResult)
        [observation] = result.asset_events
        assert observation.metadata["alarms_firing"].value == [f"{prefix}-vpc-a-high-rejected-connections"]
        assert isinstance(alarm_state_sensor(context), dg.SkipReason)  # same state: nothing new


def test_a_failed_analysis_fails_the_partition_and_publishes_nothing(env) -> None:
    stack = env["stack"]
    outputs = stack.outputs()
    logs = stack.clients("logs")
    hour = LAST - timedelta(hours=8)
    key = key_of(hour)
    stack.flow_log_emulator().ensure_hours([hour])
    logs.delete_log_group(logGroupName=outputs["vpc_b_log_group_name"])
    try:
        result = chain(env, key)
    finally:
        logs.create_log_group(logGroupName=outputs["vpc_b_log_group_name"])
    assert not result.success
    failure = [e for e in result.all_events if e.is_step_failure]
    assert failure and "ResourceNotFoundException" in str(failure[0].event_specific_data.error.message)
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized & CHAIN_ASSETS == set()
    metrics = stack.clients("cloudwatch").get_metric_statistics(
        Namespace=METRIC_NAMESPACE, MetricName="TotalRequests", Dimensions=[{"Name": "VPC", "Value": "VPC-A"}],
        StartTime=hour, EndTime=hour + timedelta(minutes=1), Period=60, Statistics=["SampleCount"])
    assert metrics["Datapoints"] == []

    # The failure sensor turns the failed run into an alert, once.
    for _ in range(2):
        with dg.build_sensor_context(resources=sensor_resources(env), instance=env["instance"],
                                     sensor_name="analysis_failure_sensor") as context:
            analysis_failure_sensor(context)
    [alert] = [a for a in received_alerts(stack) if result.run_id in a["message"]]
    assert "failed" in alert["subject"] and key in alert["message"] and "ResourceNotFoundException" in alert["message"]
    assert alert["attributes"]["alert_id"] == f"dev/run-failure/{result.run_id}"


def test_hours_older_than_the_logs_kept_fail_instead_of_reporting_zeros(env) -> None:
    result = chain(env, key_of(LAST - timedelta(days=20)))
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "older than the flow logs kept" in failure.event_specific_data.error.message


def test_a_lost_embedded_aws_is_never_silently_replaced(tmp_path) -> None:
    """State lost by accident (the whole home deleted): no second stack, no overwritten report."""
    home = tmp_path / "embedded-aws"
    aws = LocalAws(home)
    instance = dg.DagsterInstance.ephemeral()
    defs = build_definitions("embedded", {"VPCPEER_HOME": str(home)})
    try:
        assert defs.resolve_job_def("rollout_job").execute_in_process(instance=instance).success
        old = aws.generation()
        hour = key_of(LAST - timedelta(hours=3))
        analysed = defs.resolve_job_def("traffic_analysis_job").execute_in_process(partition_key=hour, instance=instance)
        stored = analysed.asset_value("traffic_analysis")
        aws.stop()
        shutil.rmtree(home)

        refused = defs.resolve_job_def("rollout_job").execute_in_process(instance=instance, raise_on_error=False)
        assert not refused.success
        message = next(e for e in refused.all_events if e.is_step_failure).event_specific_data.error.message
        assert old in message and f"--purge --forget {old}" in message
        assert EmbeddedStack(aws, "dev").clients("ec2").describe_vpcs(
            Filters=[{"Name": "tag:Project", "Values": ["vpcpeer"]}])["Vpcs"] == []  # no second VPC pair

        # A stack rolled out outside Dagster (the CLI) does not let the analysis overwrite the report.
        EmbeddedStack(aws, "dev").rollout()
        again = defs.resolve_job_def("traffic_analysis_job").execute_in_process(
            partition_key=hour, instance=instance, raise_on_error=False)
        assert not again.success
        failure = next(e for e in again.all_events if e.is_step_failure).event_specific_data.error.message
        assert "overwrite" in failure and old in failure
        loaded = defs.load_asset_value("traffic_analysis", partition_key=hour, instance=instance)
        assert json.dumps(loaded, sort_keys=True) == json.dumps(stored, sort_keys=True)

        # Accepting the loss on purpose lets both run again.
        aws.purge(forget=(old,))
        assert defs.resolve_job_def("rollout_job").execute_in_process(instance=instance).success
    finally:
        aws.stop()
