"""Delivery guarantees under faults injected from outside: every anomaly alerted, none twice.

The embedded AWS runs as usual; the pipeline's clients go through a proxy (tests/faults.py)
that makes SNS Publish fail for a while, or kills a process between its publish and its
mark. Nothing in vpcpeer is patched.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from lambda_pkg.constants import DEFAULT_SETTLE_LAG_SECONDS, METRIC_NAMESPACE
from lambda_pkg.constants import AWS_MAX_ATTEMPTS
from lambda_pkg.ledger import SENT, AlertLedger
from lambda_pkg.window import last_complete_hour
from tests.faults import FaultProxy
from vpcpeer_orchestration.definitions import build_definitions
from vpcpeer_orchestration.local.alerts import received_alerts
from vpcpeer_orchestration.local.server import LocalAws
from vpcpeer_orchestration.local.stack import EmbeddedStack
from vpcpeer_orchestration.sensors import analysis_failure_sensor

REPO = Path(__file__).resolve().parents[2]
LAST = last_complete_hour(datetime.now(timezone.utc), timedelta(seconds=DEFAULT_SETTLE_LAG_SECONDS)).start


def key_of(hour: datetime) -> str:
    return hour.strftime("%Y-%m-%d-%H:00")


@pytest.fixture(scope="module")
def world(local_aws):
    """The embedded AWS, a fault proxy in front of it, and the Dagster definitions using the proxy."""
    with FaultProxy(local_aws.running().endpoint) as proxy:
        settings = {"VPCPEER_HOME": str(local_aws.home), "VPCPEER_AWS_ENDPOINT": proxy.url}
        defs = build_definitions("embedded", settings)
        instance = dg.DagsterInstance.ephemeral()
        assert defs.resolve_job_def("rollout_job").execute_in_process(instance=instance).success
        stack = EmbeddedStack(LocalAws(local_aws.home, proxy.url), "dev")
        yield {"proxy": proxy, "defs": defs, "instance": instance, "stack": stack, "aws": local_aws}


def run_range(world, first: datetime, last: datetime) -> dg.ExecuteInProcessResult:
    return world["defs"].resolve_job_def("traffic_analysis_job").execute_in_process(
        instance=world["instance"], raise_on_error=False,
        tags={ASSET_PARTITION_RANGE_START_TAG: key_of(first), ASSET_PARTITION_RANGE_END_TAG: key_of(last)})


def ledger_of(stack: EmbeddedStack) -> AlertLedger:
    return AlertLedger(stack.clients("dynamodb"), stack.outputs()["alert_ledger_table_name"])


def inbox_ids(stack: EmbeddedStack) -> Counter:
    return Counter(a["attributes"].get("alert_id") for a in received_alerts(stack))


def test_a_publish_outage_mid_run_delivers_every_anomaly_exactly_once(world) -> None:
    stack, proxy = world["stack"], world["proxy"]
    hours = [LAST - timedelta(hours=k) for k in range(2, 8)]
    emulator = stack.flow_log_emulator()
    for name, hour in (("port-scan", hours[0]), ("external-source", hours[2]), ("unexpected-port", hours[4])):
        emulator.inject(name, hour)
    before = inbox_ids(stack)
    # One alert goes out, then SNS answers 503 for longer than botocore's retries of two alerts
    # and part of a third: the step fails, Dagster runs it again, and it completes.
    outage = 2 * AWS_MAX_ATTEMPTS + 2
    proxy.fail("Publish", times=outage, skip=1)
    try:
        result = run_range(world, hours[-1], hours[0])
    finally:
        proxy.clear()
    assert result.success
    attempts = [e for e in result.all_events if e.event_type_value == "STEP_RESTARTED" and e.step_key == "anomaly_alerts"]
    assert len(attempts) == 1  # the outage made the step fail once, and its retry finished the work
    anomalies = result.asset_value("traffic_anomalies")
    expected = {alert_id for value in result.asset_value("anomaly_alerts").values() for alert_id in value["alert_ids"]}
    assert len(expected) == sum(len(found) for found in anomalies.values()) >= 4
    delivered = inbox_ids(stack) - before
    assert set(delivered) == expected and set(delivered.values()) == {1}  # every anomaly, none twice

    again = run_range(world, hours[-1], hours[0])
    assert again.success and sum(v["sent"] for v in again.asset_value("anomaly_alerts").values()) == 0
    assert inbox_ids(stack) - before == delivered


def test_an_unreachable_topic_loses_neither_the_alert_nor_the_failure_alert(world) -> None:
    """Publish down for good: the hour's run fails; the failure alert waits in the ledger; once the
    topic is back, the sensor (or the next scheduled run) delivers both, once."""
    stack, proxy, instance = world["stack"], world["proxy"], world["instance"]
    hour = LAST - timedelta(hours=9)
    stack.flow_log_emulator().inject("port-scan", hour)
    before = inbox_ids(stack)
    proxy.fail("Publish", times=10_000)
    try:
        failed = run_range(world, hour, hour)
        assert not failed.success
        with dg.build_sensor_context(instance=instance, resources={"stack": world["defs"].resources["stack"]},
                                     sensor_name="analysis_failure_sensor") as context:
            analysis_failure_sensor(context)
        assert inbox_ids(stack) == before  # nothing could go out
    finally:
        proxy.clear()

    ledger = ledger_of(stack)
    due = {record.id for record in ledger.due("dev/")}
    assert f"dev/run-failure/{failed.run_id}" in due and any("port_scan" in d for d in due)

    # The next run (another hour) delivers what is due first.
    later = run_range(world, hour + timedelta(hours=1), hour + timedelta(hours=1))
    assert later.success
    delivered = inbox_ids(stack) - before
    assert due <= set(delivered) and set(delivered.values()) == {1}
    assert list(ledger.due("dev/")) == []
    assert all(ledger.get(alert_id).state == SENT for alert_id in due)
    with dg.build_sensor_context(instance=instance, resources={"stack": world["defs"].resources["stack"]},
                                 sensor_name="analysis_failure_sensor") as context:
        analysis_failure_sensor(context)
    assert inbox_ids(stack) - before == delivered  # nothing twice


def test_a_topic_that_is_gone_fails_the_step_at_once_with_its_cause(world) -> None:
    """NotFound is permanent: no retry waits 100 s for the same answer, the failure names the
    cause and the fix, and the alert stays due until the topic is back."""
    stack, proxy = world["stack"], world["proxy"]
    hour = LAST - timedelta(hours=17)
    stack.flow_log_emulator().inject("port-scan", hour)
    before = inbox_ids(stack)
    proxy.fail("Publish", times=10_000, status=404, code="NotFound")
    try:
        failed = run_range(world, hour, hour)
    finally:
        proxy.clear()
    assert not failed.success
    retries = [e for e in failed.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retries == []
    [failure] = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key.startswith("anomaly_alerts")
    message = failure.event_specific_data.error.message
    assert "PublishError" in message and "NotFound" in message and "roll the stack out again" in message
    assert inbox_ids(stack) == before
    due = {record.id for record in ledger_of(stack).due("dev/")}
    assert any("port_scan" in d for d in due)
    assert run_range(world, hour, hour).success  # the topic answers again: delivered, once
    assert all(count == 1 for count in (inbox_ids(stack) - before).values()) and inbox_ids(stack) != before


SCRIPT = """
import json, sys
from vpcpeer_orchestration.local.server import LocalAws
from vpcpeer_orchestration.local.stack import EmbeddedStack
stack = EmbeddedStack(LocalAws.from_env(), "dev")
report = stack.analyze({"window": json.loads(sys.argv[1]), "source": "test"}, environment={"ALERT_CLAIM_SECONDS": "2"})
print(json.dumps(report["published"]))
"""


def standalone(world, window: dict, env: dict[str, str]) -> subprocess.Popen:
    """The handler's standalone path (what the Lambda runs), in a process of its own."""
    return subprocess.Popen([sys.executable, "-c", SCRIPT, json.dumps(window)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_crash_between_publish_and_mark_is_redelivered_not_lost(world) -> None:
    """The process dies after SNS accepted the alert and before the ledger marked it sent: the
    claim expires and the next invocation delivers the same message again (the documented
    network-level duplicate, same alert id); then nothing more."""
    stack, proxy = world["stack"], world["proxy"]
    hour = LAST - timedelta(hours=11)
    emulator = stack.flow_log_emulator()
    emulator.ensure_hours([hour])  # the hour's normal traffic, as the Dagster step would have written it
    emulator.inject("port-scan", hour)
    window = {"start": hour.isoformat(), "end": (hour + timedelta(hours=1)).isoformat()}
    env = {**os.environ, "VPCPEER_HOME": str(world["aws"].home), "VPCPEER_AWS_ENDPOINT": proxy.url}
    before = inbox_ids(stack)
    victim: list[subprocess.Popen] = []
    proxy.on("UpdateItem", lambda body: os.kill(victim[0].pid, signal.SIGKILL),
             when=lambda body: b":sent" in body, drop=True)
    try:
        victim.append(standalone(world, window, env))
        victim[0].communicate(timeout=120)
        assert victim[0].returncode == -signal.SIGKILL
    finally:
        proxy.clear()
    [first] = list((inbox_ids(stack) - before).items())
    alert_id = first[0]
    assert ledger_of(stack).get(alert_id).state == "pending"

    time.sleep(2.5)  # the dead holder's claim expires (ALERT_CLAIM_SECONDS=2)
    second = standalone(world, window, env)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err[-2000:]
    published = json.loads(out.strip().splitlines()[-1])
    assert published["redelivered"] == [alert_id] and alert_id not in published["alerts_sent"]
    assert alert_id in published["alerts_already_sent"]
    assert (inbox_ids(stack) - before)[alert_id] == 2  # at least once: the same id twice, for dedup downstream
    # The hour's other anomalies, never claimed by the dead holder (in a busy hour the scan's records
    # also make a traffic_spike), go out now, once each.
    assert all((inbox_ids(stack) - before)[other] == 1 for other in published["alerts_sent"])
    assert ledger_of(stack).get(alert_id).state == SENT

    third = standalone(world, window, env)
    out, _ = third.communicate(timeout=120)
    assert json.loads(out.strip().splitlines()[-1])["redelivered"] == []
    assert (inbox_ids(stack) - before)[alert_id] == 2


RUN_HOUR = """
import json, sys
import dagster as dg
from vpcpeer_orchestration.definitions import build_definitions
defs = build_definitions("embedded", {"VPCPEER_HOME": sys.argv[1]})
result = defs.resolve_job_def("traffic_analysis_job").execute_in_process(
    partition_key=sys.argv[2], instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
print(json.dumps({"success": result.success, "sent": result.asset_value("anomaly_alerts")["sent"] if result.success else None}))
"""


def test_two_runs_of_one_hour_at_once_alert_write_and_publish_once(world) -> None:
    stack = world["stack"]
    hour = LAST - timedelta(hours=13)
    stack.flow_log_emulator().inject("reject-storm", hour)
    before = inbox_ids(stack)
    runs = [subprocess.Popen([sys.executable, "-c", RUN_HOUR, str(world["aws"].home), key_of(hour)], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for run in runs:
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert all(r["success"] for r in results)
    delivered = inbox_ids(stack) - before
    assert sum(r["sent"] for r in results) == len(delivered) >= 2 and set(delivered.values()) == {1}
    stats = stack.clients("cloudwatch").get_metric_statistics(
        Namespace=METRIC_NAMESPACE, MetricName="TotalRequests", Dimensions=[{"Name": "VPC", "Value": "VPC-A"}],
        StartTime=hour, EndTime=hour + timedelta(hours=1), Period=3600, Statistics=["SampleCount"])
    assert [p["SampleCount"] for p in stats["Datapoints"]] == [1.0]
    logs = stack.clients("logs")
    stored = sum(len(page["events"]) for group in (stack.outputs()["vpc_a_log_group_name"], stack.outputs()["vpc_b_log_group_name"])
                 for page in logs.get_paginator("filter_log_events").paginate(
                     logGroupName=group, startTime=int(hour.timestamp() * 1000),
                     endTime=int(hour.timestamp() * 1000) + 3_599_999))
    expected = stack.flow_log_emulator().model()
    from vpcpeer_orchestration.local.scenarios import get

    assert stored == len([e for e in expected.normal_hour(hour) if e.log_group]) + \
        len([e for e in get("reject-storm").events(expected, hour) if e.log_group])


def test_an_hour_that_has_not_settled_is_refused_and_publishes_nothing(world, local_aws) -> None:
    # A settle lag of two hours makes the last complete hour one whose records may still arrive.
    defs = build_definitions("embedded", {"VPCPEER_HOME": str(local_aws.home), "VPCPEER_SETTLE_LAG_SECONDS": "7200"})
    latest = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    result = defs.resolve_job_def("traffic_analysis_job").execute_in_process(
        partition_key=key_of(latest), instance=world["instance"], raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure and e.step_key == "traffic_analysis")
    assert "have not settled" in failure.event_specific_data.error.message
    assert not [e for e in result.get_asset_materialization_events()
                if e.asset_key.to_user_string() in ("traffic_metrics", "anomaly_alerts")]


def test_a_deleted_flow_log_makes_its_hours_alert_flow_logs_silent(world) -> None:
    stack = world["stack"]
    ec2 = stack.clients("ec2")
    vpc_a = stack.outputs()["vpc_a_id"]
    [flow_log] = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc_a]}])["FlowLogs"]
    ec2.delete_flow_logs(FlowLogIds=[flow_log["FlowLogId"]])
    try:
        hour = LAST - timedelta(hours=15)
        result = run_range(world, hour, hour)
        assert result.success
        [silent] = [a for a in result.asset_value("traffic_anomalies") if a["type"] == "flow_logs_silent"]
        assert silent["vpc"] == "VPC-A" and "no flow log delivers" in silent["description"]
        checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
        assert checks["no_flow_logs_silent"].passed is False
        assert checks["no_flow_logs_silent"].severity == dg.AssetCheckSeverity.ERROR
        assert result.asset_value("traffic_metrics")["vpcs"] == ["VPC-B"]  # no zero datapoint for VPC-A
    finally:
        world["defs"].resolve_job_def("rollout_job").execute_in_process(instance=world["instance"])  # restores it
