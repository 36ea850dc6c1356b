"""The embedded AWS keeps its state across restarts: flushed state survives a SIGKILL, a stop
saves what was not flushed, the debounced snapshot saves it too, a lost snapshot refuses to
start, purge starts over, and two homes never share a server."""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import threading
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vpcpeer_orchestration.local import moto_process, server
from vpcpeer_orchestration.local.server import EmbeddedStateLost, LocalAws, ServerRecord

REGION = "us-east-1"
ACCOUNT = "123456789012"
# Long enough for the debounced snapshot (quiet period, then pickling and writing).
DEBOUNCE_WAIT_SECONDS = moto_process.QUIET_SECONDS + 2.5
LOG_EVENTS, LOG_STREAMS, LOG_MESSAGE_BYTES = 40_000, 48, 120
# moto packages whose state the embedded default relies on (awslambda is Lambda).
PERSISTED_SERVICES = {"ec2", "logs", "sns", "sqs", "s3", "awslambda", "iam", "kms", "cloudwatch", "events", "sts",
                      "dynamodb"}

Clients = Callable[[str], Any]


@pytest.fixture(autouse=True)
def managed_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the embedded server: never an external endpoint, a free port."""
    monkeypatch.delenv(server.ENDPOINT_ENV, raising=False)
    monkeypatch.delenv(server.PORT_ENV, raising=False)


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Callable[[str], LocalAws]]:
    """Homes under tmp_path; every server started in them is stopped, also when a test fails."""
    handles: list[LocalAws] = []

    def make(name: str = "embedded-aws") -> LocalAws:
        handle = LocalAws(tmp_path / name)
        handles.append(handle)
        return handle

    yield make
    for handle in handles:
        record = handle._read_record()
        handle.stop()
        if record:
            assert not server._alive(record.pid), f"the server of {handle.home} outlived the test"


def kill(record: ServerRecord) -> None:
    """SIGKILL the server's process group, as a crash or the OOM killer would."""
    os.killpg(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server._alive(record.pid):
        assert time.monotonic() < deadline, "the server survived SIGKILL"
        time.sleep(0.05)


def clients(record: ServerRecord) -> Clients:
    return lambda service: server.make_client(service, record.endpoint, REGION)


def snapshot_now(record: ServerRecord) -> dict[str, Any]:
    """What ``flush`` asks for, with the server's own measurements."""
    request = urllib.request.Request(f"{record.endpoint}{server.SNAPSHOT_PATH}", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=server.FLUSH_TIMEOUT_SECONDS) as response:
        return json.loads(response.read())


def lambda_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


@dataclass(frozen=True)
class Seeded:
    """Ids of what ``seed`` created, to read it all back after a restart."""

    vpc_id: str
    subnet_id: str
    group_id: str
    flow_log_id: str
    log_group: str
    topic_arn: str
    queue_url: str
    bucket: str
    key_id: str
    ciphertext: bytes
    function_name: str
    role_name: str
    alarm_name: str
    rule_name: str
    table_name: str


def seed(aws: Clients, prefix: str = "persist") -> Seeded:
    """One resource or more in each service the embedded default uses, wired like the stack."""
    ec2, logs, iam = aws("ec2"), aws("logs"), aws("iam")
    vpc_id = ec2.create_vpc(CidrBlock="10.42.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "VPC", "Value": f"{prefix}-a"}]}])["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.42.1.0/24")["Subnet"]["SubnetId"]
    group_id = ec2.create_security_group(GroupName=f"{prefix}-peering", Description="peering", VpcId=vpc_id)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.43.0.0/16"}]}])
    role_arn = iam.create_role(RoleName=f"{prefix}-role", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": []}))["Role"]["Arn"]
    log_group = f"/{prefix}/flow-logs"
    logs.create_log_group(logGroupName=log_group)
    logs.create_log_stream(logGroupName=log_group, logStreamName="eni-1-all")
    now_ms = int(time.time() * 1000)
    logs.put_log_events(logGroupName=log_group, logStreamName="eni-1-all", logEvents=[
        {"timestamp": now_ms - 1000 + i, "message": f"2 {ACCOUNT} eni-1 10.42.1.{i} 10.43.1.1 443 ACCEPT OK"}
        for i in range(5)])
    [flow_log_id] = ec2.create_flow_logs(ResourceIds=[vpc_id], ResourceType="VPC", TrafficType="ALL",
                                         LogGroupName=log_group, DeliverLogsPermissionArn=role_arn)["FlowLogIds"]
    sqs, sns = aws("sqs"), aws("sns")
    queue_url = sqs.create_queue(QueueName=f"{prefix}-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic_arn = sns.create_topic(Name=f"{prefix}-alerts")["TopicArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    sns.publish(TopicArn=topic_arn, Subject="before", Message="published before the restart")
    s3 = aws("s3")
    bucket = f"{prefix}-state"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="stacks/dev.json", Body=b'{"resources": 42}')
    kms = aws("kms")
    key_id = kms.create_key(Description=f"{prefix} key")["KeyMetadata"]["KeyId"]
    ciphertext = kms.encrypt(KeyId=key_id, Plaintext=b"secret")["CiphertextBlob"]
    function_name = f"{prefix}-analyzer"
    aws("lambda").create_function(FunctionName=function_name, Runtime="python3.12", Role=role_arn,
                                  Handler="handler.handler", Code={"ZipFile": lambda_zip()},
                                  Environment={"Variables": {"LOG_GROUP": log_group}})
    cloudwatch = aws("cloudwatch")
    cloudwatch.put_metric_data(Namespace="VPCPeer", MetricData=[{"MetricName": "TrafficVolume", "Value": 7.0}])
    alarm_name = f"{prefix}-traffic"
    cloudwatch.put_metric_alarm(AlarmName=alarm_name, Namespace="VPCPeer", MetricName="TrafficVolume",
                                Statistic="Sum", Period=300, EvaluationPeriods=1, Threshold=100.0,
                                ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic_arn])
    rule_name = f"{prefix}-hourly"
    aws("events").put_rule(Name=rule_name, ScheduleExpression="rate(1 hour)")
    table_name = f"{prefix}-runs"
    dynamodb = aws("dynamodb")
    dynamodb.create_table(TableName=table_name, BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "run_id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "run_id", "AttributeType": "S"}])
    dynamodb.put_item(TableName=table_name, Item={"run_id": {"S": "r-1"}, "alerts": {"N": "3"}})
    return Seeded(vpc_id, subnet_id, group_id, flow_log_id, log_group, topic_arn, queue_url, bucket, key_id,
                  ciphertext, function_name, f"{prefix}-role", alarm_name, rule_name, table_name)


def observe(aws: Clients, seeded: Seeded) -> dict[str, Any]:
    """Everything ``seed`` created, read back through the API (reading changes nothing)."""
    ec2, logs = aws("ec2"), aws("logs")
    [vpc] = ec2.describe_vpcs(VpcIds=[seeded.vpc_id])["Vpcs"]
    [subnet] = ec2.describe_subnets(SubnetIds=[seeded.subnet_id])["Subnets"]
    [group] = ec2.describe_security_groups(GroupIds=[seeded.group_id])["SecurityGroups"]
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [seeded.group_id]}])
    [flow_log] = ec2.describe_flow_logs(FlowLogIds=[seeded.flow_log_id])["FlowLogs"]
    events = logs.filter_log_events(logGroupName=seeded.log_group)["events"]
    subscriptions = aws("sns").list_subscriptions_by_topic(TopicArn=seeded.topic_arn)["Subscriptions"]
    queue = aws("sqs").get_queue_attributes(QueueUrl=seeded.queue_url, AttributeNames=["QueueArn"])["Attributes"]
    s3_body = aws("s3").get_object(Bucket=seeded.bucket, Key="stacks/dev.json")["Body"].read()
    kms = aws("kms")
    key = kms.describe_key(KeyId=seeded.key_id)["KeyMetadata"]
    function = aws("lambda").get_function_configuration(FunctionName=seeded.function_name)
    role = aws("iam").get_role(RoleName=seeded.role_name)["Role"]
    [alarm] = aws("cloudwatch").describe_alarms(AlarmNames=[seeded.alarm_name])["MetricAlarms"]
    rule = aws("events").describe_rule(Name=seeded.rule_name)
    item = aws("dynamodb").get_item(TableName=seeded.table_name, Key={"run_id": {"S": "r-1"}})["Item"]
    return {
        "vpc": (vpc["VpcId"], vpc["CidrBlock"], vpc["Tags"]),
        "subnet": (subnet["SubnetId"], subnet["VpcId"], subnet["CidrBlock"]),
        "group": (group["GroupId"], group["GroupName"], group["VpcId"]),
        "rules": sorted((r["SecurityGroupRuleId"], r["IsEgress"], r["FromPort"], r["CidrIpv4"])
                        for r in rules["SecurityGroupRules"]),
        "flow_log": (flow_log["FlowLogId"], flow_log["ResourceId"], flow_log["LogGroupName"]),
        "log_events": [(e["logStreamName"], e["timestamp"], e["message"]) for e in events],
        "subscriptions": sorted((s["SubscriptionArn"], s["Protocol"], s["Endpoint"]) for s in subscriptions),
        "queue_arn": queue["QueueArn"],
        "s3_body": s3_body,
        "kms_key": (key["KeyId"], key["Arn"], key["Description"]),
        "kms_plaintext": kms.decrypt(CiphertextBlob=seeded.ciphertext)["Plaintext"],
        "function": (function["FunctionArn"], function["Role"], function["CodeSha256"],
                     function["Environment"]["Variables"]),
        "role": (role["Arn"], role["RoleId"]),
        "alarm": (alarm["AlarmArn"], alarm["Threshold"], alarm["AlarmActions"]),
        "rule": (rule["Arn"], rule["ScheduleExpression"]),
        "dynamodb_item": item,
        "account": aws("sts").get_caller_identity()["Account"],
    }


def receive_bodies(aws: Clients, queue_url: str) -> list[dict[str, Any]]:
    """The SNS envelopes waiting in a queue (long-polling briefly), deleted once read."""
    sqs = aws("sqs")
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2)["Messages"]
    for message in messages:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in messages]


def test_flushed_state_survives_sigkill_with_the_same_generation_ids_and_contents(embedded) -> None:
    aws = embedded()
    first = aws.start()
    seeded = seed(clients(first))
    before = observe(clients(first), seeded)
    aws.flush()
    with open(aws.state_dir / moto_process.SNAPSHOT_FILENAME, "rb") as snapshot:
        header = pickle.load(snapshot)
    assert header["generation"] == first.generation and PERSISTED_SERVICES <= set(header["services"])
    assert "left out of the snapshot" not in aws.log_path.read_text()
    kill(first)

    second = aws.start()
    assert second.pid != first.pid
    assert second.generation == first.generation == (aws.state_dir / "generation").read_text().strip()
    restored = clients(second)
    assert observe(restored, seeded) == before
    assert before["kms_plaintext"] == b"secret" and before["s3_body"] == b'{"resources": 42}'
    assert len(before["log_events"]) == 5 and before["dynamodb_item"]["alerts"] == {"N": "3"}
    [waiting] = receive_bodies(restored, seeded.queue_url)
    assert (waiting["Subject"], waiting["Message"]) == ("before", "published before the restart")
    restored("sns").publish(TopicArn=seeded.topic_arn, Subject="after", Message="published after the restart")
    [delivered] = receive_bodies(restored, seeded.queue_url)
    assert (delivered["Subject"], delivered["Message"], delivered["TopicArn"]) == \
        ("after", "published after the restart", seeded.topic_arn)


def test_changes_not_flushed_survive_a_stop(embedded) -> None:
    aws = embedded()
    first = aws.start()
    seeded = seed(clients(first))
    before = observe(clients(first), seeded)
    assert aws.stop() is True
    assert aws.running() is None and not aws.record_path.exists()

    second = aws.start()
    assert second.generation == first.generation
    assert observe(clients(second), seeded) == before
    assert "final snapshot" in aws.log_path.read_text()


def test_changes_not_flushed_survive_sigkill_once_the_server_was_quiet(embedded) -> None:
    aws = embedded()
    first = aws.start()
    aws_clients = clients(first)
    aws_clients("s3").create_bucket(Bucket="quiet-bucket")
    aws_clients("s3").put_object(Bucket="quiet-bucket", Key="hello.txt", Body=b"written, never flushed")
    queue_url = aws_clients("sqs").create_queue(QueueName="quiet-queue")["QueueUrl"]
    aws_clients("sqs").send_message(QueueUrl=queue_url, MessageBody="still here")
    time.sleep(DEBOUNCE_WAIT_SECONDS)
    kill(first)

    second = aws.start()
    restored = clients(second)
    body = restored("s3").get_object(Bucket="quiet-bucket", Key="hello.txt")["Body"].read()
    [message] = restored("sqs").receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    assert (second.generation, body, message["Body"]) == (first.generation, b"written, never flushed", "still here")


def test_reads_write_no_snapshot_and_writes_do_once_quiet(embedded) -> None:
    aws = embedded()
    record = aws.start()
    aws_clients = clients(record)
    queue_url = aws_clients("sqs").create_queue(QueueName="reads")["QueueUrl"]
    aws_clients("ec2").describe_vpcs()  # the first call of a service creates its backends: a change
    aws.flush()
    snapshot = aws.state_dir / moto_process.SNAPSHOT_FILENAME
    flushed = snapshot.stat().st_mtime_ns
    for _ in range(3):
        aws_clients("sqs").list_queues()
        aws_clients("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])
        aws_clients("ec2").describe_vpcs()
        aws_clients("ec2").describe_security_groups()
    time.sleep(DEBOUNCE_WAIT_SECONDS)
    after_reads = snapshot.stat().st_mtime_ns
    aws_clients("sqs").send_message(QueueUrl=queue_url, MessageBody="a write")
    time.sleep(DEBOUNCE_WAIT_SECONDS)
    assert after_reads == flushed and snapshot.stat().st_mtime_ns > flushed
    log = aws.log_path.read_text()
    assert "POST /" not in log and "GET /" not in log  # no access log


def test_a_long_poll_does_not_hold_up_a_flush(embedded) -> None:
    aws = embedded()
    record = aws.start()
    queue_url = clients(record)("sqs").create_queue(QueueName="long-poll")["QueueUrl"]
    received: list[str] = []

    def long_poll() -> None:
        answer = clients(record)("sqs").receive_message(QueueUrl=queue_url, WaitTimeSeconds=15)
        received.extend(m["Body"] for m in answer.get("Messages", []))

    poller = threading.Thread(target=long_poll)
    poller.start()
    try:
        time.sleep(1.0)
        started = time.monotonic()
        aws.flush()
        flush_seconds = time.monotonic() - started
        clients(record)("sqs").send_message(QueueUrl=queue_url, MessageBody="after the flush")
    finally:
        poller.join(timeout=30)
    assert flush_seconds < 2.0 and received == ["after the flush"]


def test_a_generation_without_its_snapshot_refuses_to_start_and_says_to_purge(embedded) -> None:
    aws = embedded()
    first = aws.start()
    clients(first)("sqs").create_queue(QueueName="soon-lost")
    aws.stop()
    (aws.state_dir / moto_process.SNAPSHOT_FILENAME).unlink()

    with pytest.raises(EmbeddedStateLost) as lost:
        aws.start()
    message = str(lost.value)
    assert "purge" in message and first.generation in message and "lost its state" in message
    assert aws.running() is None
    assert (aws.state_dir / "generation").read_text().strip() == first.generation


def test_purge_discards_the_state_records_the_generation_and_starts_empty(embedded) -> None:
    aws = embedded()
    first = aws.start()
    clients(first)("sqs").create_queue(QueueName="to-be-purged")
    aws.flush()

    assert aws.purge() == [first.generation]
    assert aws.purged() == frozenset({first.generation})
    assert aws.running() is None and not aws.state_dir.exists()

    second = aws.start()
    assert second.generation != first.generation
    assert (aws.state_dir / "generation").read_text().strip() == second.generation
    assert clients(second)("sqs").list_queues().get("QueueUrls", []) == []


def test_two_homes_run_two_independent_servers(embedded) -> None:
    one, other = embedded("instance-one"), embedded("instance-two")
    first, second = one.start(), other.start()
    assert first.port != second.port and first.pid != second.pid and first.generation != second.generation
    clients(first)("s3").create_bucket(Bucket="only-in-one")
    clients(second)("s3").create_bucket(Bucket="only-in-two")
    one.flush()
    other.flush()
    buckets = {name: {b["Name"] for b in clients(record)("s3").list_buckets()["Buckets"]}
               for name, record in (("one", first), ("two", second))}
    assert buckets == {"one": {"only-in-one"}, "two": {"only-in-two"}}
    assert one.running() == first and other.running() == second


def put_flow_log_events(logs: Any, log_group: str) -> None:
    """LOG_EVENTS records of LOG_MESSAGE_BYTES over LOG_STREAMS streams, one batch per stream."""
    logs.create_log_group(logGroupName=log_group)
    start_ms = int(time.time() * 1000) - 3_600_000
    per_stream = LOG_EVENTS // LOG_STREAMS
    for stream in range(LOG_STREAMS):
        name = f"eni-{stream:017x}-all"
        logs.create_log_stream(logGroupName=log_group, logStreamName=name)
        count = per_stream + (1 if stream < LOG_EVENTS % LOG_STREAMS else 0)
        events = []
        for i in range(count):
            message = (f"2 {ACCOUNT} eni-{stream:017x} 10.0.{stream}.{i % 250} 10.1.2.3 {40000 + i % 20000} 443 6 "
                       f"{i % 40 + 1} {(i % 40 + 1) * 512} 1700000000 1700000060 ACCEPT OK")
            events.append({"timestamp": start_ms + i, "message": message.ljust(LOG_MESSAGE_BYTES, "x")})
        logs.put_log_events(logGroupName=log_group, logStreamName=name, logEvents=events)


def test_snapshot_and_restore_of_40k_flow_log_events_are_measured(embedded) -> None:
    aws = embedded()
    first = aws.start()
    put_flow_log_events(clients(first)("logs"), "/vpcpeer/measure")
    started = time.monotonic()
    measured = snapshot_now(first)
    flush_wall = time.monotonic() - started
    aws.stop()
    started = time.monotonic()
    second = aws.start()
    restore_wall = time.monotonic() - started
    restored_line = [line for line in aws.log_path.read_text().splitlines() if "restored generation" in line][-1]

    paginator = clients(second)("logs").get_paginator("filter_log_events")
    pages = paginator.paginate(logGroupName="/vpcpeer/measure", PaginationConfig={"PageSize": 10_000})
    events = [event for page in pages for event in page["events"]]
    print(f"\nsnapshot of {LOG_EVENTS} log events x {LOG_MESSAGE_BYTES} bytes in {LOG_STREAMS} streams: "
          f"{measured['bytes'] / 1e6:.1f} MB in {measured['seconds']:.2f} s (server), flush {flush_wall:.2f} s (client)")
    print(f"start with restore: {restore_wall:.2f} s (client); server: {restored_line.split(' INFO ')[-1]}")
    assert measured["generation"] == first.generation == second.generation
    assert measured["bytes"] > LOG_EVENTS * LOG_MESSAGE_BYTES
    assert len(events) == LOG_EVENTS
    assert {len(e["message"]) for e in events} == {LOG_MESSAGE_BYTES}
    assert len({e["logStreamName"] for e in events}) == LOG_STREAMS
