"""The Dagster graph materialised against the moto server: rollout with posture checks, the
hourly chain, idempotent alerts and metrics, single-run ranges, sensors and failures."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from vpcpeer_orchestration.assets.stack import network_stack
from vpcpeer_orchestration.assets.traffic import anomaly_alerts, traffic_analysis, traffic_anomalies, traffic_metrics
from vpcpeer_orchestration.definitions import defs
from vpcpeer_orchestration.io import PartitionedJsonIOManager
from vpcpeer_orchestration.local import server
from vpcpeer_orchestration.local.alerts import received_alerts
from vpcpeer_orchestration.local.flowlogs import FlowLogEmulator, floor_hour
from vpcpeer_orchestration.local.stack import service_ports, stack_outputs
from vpcpeer_orchestration.resources import build_resources
from vpcpeer_orchestration.sensors import alarm_state_sensor, analysis_failure_sensor, stack_drift_sensor

LAST = floor_hour(datetime.now(timezone.utc)) - timedelta(hours=1)
SCAN_HOUR = LAST - timedelta(hours=1)
KEY = SCAN_HOUR.strftime("%Y-%m-%d-%H:00")
CHAIN = [traffic_analysis, traffic_anomalies, anomaly_alerts, traffic_metrics]


@pytest.fixture(scope="module")
def env(local_aws, tmp_path_factory):
    resources = {**build_resources(), "reports_io_manager": PartitionedJsonIOManager(
        location=str(tmp_path_factory.mktemp("reports")))}
    instance = dg.DagsterInstance.ephemeral()
    package = defs.resolve_assets_def("lambda_package")
    rollout = dg.materialize([package, network_stack], resources=resources, instance=instance)
    emulator = FlowLogEmulator(lambda s: server.client(s), service_ports=service_ports(stack_outputs("dev")))
    emulator.inject("port-scan", SCAN_HOUR)
    return {"resources": resources, "instance": instance, "rollout": rollout}


def chain(env, partition_key: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(CHAIN, partition_key=partition_key, resources=env["resources"], instance=env["instance"],
                          raise_on_error=False)


def test_rollout_materialises_the_stack_and_its_posture_checks_pass(env) -> None:
    result = env["rollout"]
    assert result.success
    keys = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert keys == {"lambda_package", "peered_vpcs", "peering_security_groups", "flow_log_pipeline", "alerting",
                    "analyzer_function", "monitoring_dashboard"}
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"peering_active": True, "flow_logs_active": True, "rules_match_declared_ports": True,
                      "default_groups_empty": True}


def test_a_port_scan_hour_fails_its_check_and_alerts_once(env) -> None:
    first = chain(env, KEY)
    assert first.success
    report = first.asset_value("traffic_analysis")
    assert report["window"]["start"].startswith(SCAN_HOUR.strftime("%Y-%m-%dT%H"))
    checks = {c.check_name: c for c in first.get_asset_check_evaluations()}
    assert checks["no_port_scan"].passed is False and checks["no_port_scan"].severity == dg.AssetCheckSeverity.ERROR
    assert checks["no_traffic_spike"].passed is True
    alerts = first.asset_value("anomaly_alerts")
    assert alerts["sent"] == 1 and alerts["message_id"]
    inbox = [a for a in received_alerts() if KEY in a["message"]]
    assert len(inbox) == 1 and f"run_id={first.run_id}" in inbox[0]["message"] and "stack=dev" in inbox[0]["message"]
    assert first.asset_value("traffic_metrics")["published"] is True

    again = chain(env, KEY)
    assert again.success
    assert again.asset_value("anomaly_alerts")["sent"] == 0
    assert again.asset_value("traffic_metrics")["published"] is False
    assert len([a for a in received_alerts() if KEY in a["message"]]) == 1


def test_a_range_of_hours_runs_once_with_metadata_per_partition(env) -> None:
    first, last = (LAST - timedelta(hours=4)).strftime("%Y-%m-%d-%H:00"), LAST.strftime("%Y-%m-%d-%H:00")
    job = defs.resolve_job_def("traffic_analysis_job")
    result = job.execute_in_process(
        instance=env["instance"], resources=env["resources"],
        tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
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


def test_stack_drift_sensor_requests_a_rollout_on_drift(env) -> None:
    resources = {k: env["resources"][k] for k in ("aws", "stack")}
    with dg.build_sensor_context(resources=resources, instance=env["instance"]) as context:
        assert isinstance(stack_drift_sensor(context), dg.SkipReason)
    ec2 = server.client("ec2")
    group = stack_outputs("dev")["vpc_b_security_group_id"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    try:
        with dg.build_sensor_context(resources=resources, instance=env["instance"]) as context:
            request = stack_drift_sensor(context)
        assert isinstance(request, dg.RunRequest) and "rules_match_declared_ports" in request.tags["vpcpeer/drift"]
    finally:
        rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]
        ec2.revoke_security_group_ingress(GroupId=group, SecurityGroupRuleIds=[
            r["SecurityGroupRuleId"] for r in rules if r.get("CidrIpv4") == "0.0.0.0/0"])


def test_alarm_state_sensor_records_changes_only(env) -> None:
    resources = {k: env["resources"][k] for k in ("aws", "stack")}
    cloudwatch = server.client("cloudwatch")
    cloudwatch.set_alarm_state(AlarmName="vpcpeer-dev-vpc-a-high-rejected-connections", StateValue="ALARM",
                               StateReason="test")
    with dg.build_sensor_context(resources=resources, instance=env["instance"]) as context:
        result = alarm_state_sensor(context)
        assert isinstance(result, dg.SensorResult)
        [observation] = result.asset_events
        assert observation.metadata["alarms_firing"].value == ["vpcpeer-dev-vpc-a-high-rejected-connections"]
        assert isinstance(alarm_state_sensor(context), dg.SkipReason)  # same state: nothing new


def test_a_failed_analysis_fails_the_partition_and_publishes_nothing(env) -> None:
    outputs = stack_outputs("dev")
    logs = server.client("logs")
    hour = LAST - timedelta(hours=8)
    key = hour.strftime("%Y-%m-%d-%H:00")
    FlowLogEmulator(lambda s: server.client(s), service_ports=service_ports(outputs)).ensure_hours([hour])
    logs.delete_log_group(logGroupName=outputs["vpc_b_log_group_name"])
    try:
        result = chain(env, key)
    finally:
        logs.create_log_group(logGroupName=outputs["vpc_b_log_group_name"])
    assert not result.success
    failure = [e for e in result.all_events if e.is_step_failure]
    assert failure and "ResourceNotFoundException" in str(failure[0].event_specific_data.error.message)
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == set()
    metrics = server.client("cloudwatch").get_metric_statistics(
        Namespace="VPCPeer/Traffic", MetricName="TotalRequests", Dimensions=[{"Name": "VPC", "Value": "VPC-A"}],
        StartTime=hour, EndTime=hour + timedelta(minutes=1), Period=60, Statistics=["SampleCount"])
    assert metrics["Datapoints"] == []

    # The failure sensor turns the failed run into an alert.
    run = env["instance"].get_run_by_id(result.run_id)
    failure_event = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
    resources = {k: env["resources"][k] for k in ("aws", "stack")}
    with dg.build_run_status_sensor_context(
            sensor_name="analysis_failure_sensor", dagster_event=failure_event, dagster_instance=env["instance"],
            dagster_run=run, resources=resources) as status_context:
        analysis_failure_sensor(status_context.for_run_failure())
    [alert] = [a for a in received_alerts() if result.run_id in a["message"]]
    assert alert["subject"].endswith("failed") and key in alert["message"]


def test_hours_older_than_the_logs_kept_fail_instead_of_reporting_zeros(env) -> None:
    old = (LAST - timedelta(days=20)).strftime("%Y-%m-%d-%H:00")
    result = chain(env, old)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "older than the flow logs kept" in failure.event_specific_data.error.message
