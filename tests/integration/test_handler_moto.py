"""The handler end to end on moto: exact counts against an independent DuckDB computation,
and failures that publish nothing."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone

import boto3
import duckdb
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from lambda_pkg import handler as handler_module
from lambda_pkg.constants import METRIC_NAMESPACE, VPC_SLUGS
from lambda_pkg.errors import QueryFailedError, ThrottledError
from lambda_pkg.handler import lambda_handler
from lambda_pkg.window import Window, last_complete_hour
from tests.analyzer_env import ENV
from tests.aws_fixtures import backdate_flow_logs, create_flow_log, create_ledger_table
from tests.flowgen import nodata_line, random_lines, v2_line

REGION = "us-east-1"


class Context:
    aws_request_id = "req-123"
    function_name = "vpcpeer-test-traffic-analyzer"


@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        topic = sns.create_topic(Name="test-alerts")["TopicArn"]
        queue = sqs.create_queue(QueueName="alerts")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        ec2 = boto3.client("ec2", region_name=REGION)
        iam, logs = boto3.client("iam", region_name=REGION), boto3.client("logs", region_name=REGION)
        flow_logs = {label: create_flow_log(ec2, iam, logs, ENV[f"{slug.upper()}_CIDR"], ENV[f"{slug.upper()}_LOG_GROUP"])
                     for label, slug in VPC_SLUGS.items()}
        backdate_flow_logs(REGION, 2 * 24 * 3600)  # they existed before every window the tests analyse
        env = {**ENV, "SNS_TOPIC_ARN": topic, "STACK_NAME": "test",
               "ALERT_LEDGER_TABLE": create_ledger_table(dynamodb, "test-alert-ledger")}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield {"topic": topic, "queue": queue, "sqs": sqs, "logs": boto3.client("logs", region_name=REGION),
               "cloudwatch": boto3.client("cloudwatch", region_name=REGION), "ec2": ec2, "flow_logs": flow_logs,
               "dynamodb": dynamodb}


def write(logs, group: str, events: list[tuple[int, str]]) -> None:
    if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="eni-0a1b2c3d-all")
    events = sorted(events)
    for i in range(0, len(events), 5000):
        logs.put_log_events(logGroupName=group, logStreamName="eni-0a1b2c3d-all",
                            logEvents=[{"timestamp": ts, "message": m} for ts, m in events[i:i + 5000]])


def alert_messages(aws) -> list[dict]:
    out = aws["sqs"].receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(m["Body"]) for m in out.get("Messages", [])]


def expected_with_duckdb(rows: list[tuple[str, int, str]], start_ms: int, end_ms: int) -> dict[str, dict]:
    """The contract's numbers computed by SQL over the same lines, not by the code under test."""
    db = duckdb.connect()
    db.execute("CREATE TABLE lines(vpc TEXT, ts BIGINT, line TEXT)")
    db.executemany("INSERT INTO lines VALUES (?, ?, ?)", rows)
    db.execute("""CREATE MACRO ip2int(a) AS split_part(a, '.', 1)::BIGINT * 16777216 + split_part(a, '.', 2)::BIGINT * 65536
                  + split_part(a, '.', 3)::BIGINT * 256 + split_part(a, '.', 4)::BIGINT""")
    db.execute(f"""CREATE VIEW ok AS
        SELECT vpc, f[4] AS src, f[5] AS dst, f[7] AS dport, f[10]::BIGINT AS bytes, f[13] AS action
        FROM (SELECT vpc, ts, string_split(trim(line), ' ') AS f FROM lines)
        WHERE len(f) = 14 AND f[14] = 'OK' AND ts >= {start_ms} AND ts < {end_ms}""")
    result = {}
    for vpc, total, nbytes, sources, dests, rejected, external in db.execute("""
        SELECT vpc, count(*), sum(bytes), count(DISTINCT src), count(DISTINCT dst),
               count(*) FILTER (WHERE action = 'REJECT'),
               count(*) FILTER (WHERE ip2int(src) // 65536 NOT IN (ip2int('10.0.0.0') // 65536, ip2int('10.1.0.0') // 65536))
        FROM ok GROUP BY vpc""").fetchall():
        top = db.execute("SELECT src, count(*) c FROM ok WHERE vpc = ? GROUP BY src ORDER BY c DESC, src ASC LIMIT 10", [vpc]).fetchall()
        ports = db.execute("SELECT dport, count(*) FROM ok WHERE vpc = ? GROUP BY dport", [vpc]).fetchall()
        result[vpc] = {
            "total_requests": total, "total_bytes": int(nbytes), "unique_sources": sources, "unique_destinations": dests,
            "rejected_connections": rejected, "external_traffic_count": external,
            "top_source_ips": [[ip, c] for ip, c in top], "port_breakdown": {p: c for p, c in ports},
        }
    return result


def test_raw_engine_counts_are_exact_and_published_once(aws) -> None:
    window = last_complete_hour(datetime.now(timezone.utc), timedelta(minutes=10))
    rows = []
    for vpc, group, seed in (("VPC-A", ENV["VPC_A_LOG_GROUP"], 1), ("VPC-B", ENV["VPC_B_LOG_GROUP"], 2)):
        lines = [l for l in random_lines(2400, seed=seed, malformed_every=17) if l]
        span = window.end_ms - window.start_ms
        events = []
        for i, line in enumerate(lines):
            offset = (i * 7919) % (span + 600_000) - 300_000  # some before start, some at/after end
            events.append((window.start_ms + offset, line))
        events.append((window.end_ms, lines[0]))  # exactly at the end: excluded
        events.append((window.start_ms, lines[1]))  # exactly at the start: included
        write(aws["logs"], group, events)
        rows.extend((vpc, ts, line) for ts, line in events)

    report = lambda_handler({"window": window.to_json()}, Context())
    expected = expected_with_duckdb(rows, window.start_ms, window.end_ms)
    assert set(report["vpcs"]) == {"VPC-A", "VPC-B"}
    for vpc, numbers in expected.items():
        got = report["vpcs"][vpc]
        assert numbers["total_requests"] > 1000
        for key, value in numbers.items():
            assert got[key] == value, (vpc, key)
        assert got["records_by_status"].get("NODATA", 0) > 0 and got["malformed_records"]
        assert got["lines_read"] < len([r for r in rows if r[0] == vpc])  # the service filtered the window

    assert report["published"]["metrics"] is True, {k: v["coverage"] for k, v in report["vpcs"].items()}
    metrics = aws["cloudwatch"].list_metrics(Namespace=METRIC_NAMESPACE)["Metrics"]
    assert {m["MetricName"] for m in metrics} == {"TotalRequests", "UniqueSourceIPs", "RejectedConnections", "ExternalTraffic", "TotalBytes"}
    again = lambda_handler({"window": window.to_json()}, Context())
    assert again["published"]["metrics"] is False  # the window's datapoint exists: nothing doubled
    stats = aws["cloudwatch"].get_metric_statistics(
        Namespace=METRIC_NAMESPACE, MetricName="TotalRequests", Dimensions=[{"Name": "VPC", "Value": "VPC-A"}],
        StartTime=window.start, EndTime=window.end, Period=3600, Statistics=["Sum", "SampleCount"])
    [point] = stats["Datapoints"]
    assert point["SampleCount"] == 1 and point["Sum"] == expected["VPC-A"]["total_requests"]


def test_anomalies_are_alerted_with_window_and_origin(aws) -> None:
    window = last_complete_hour(datetime.now(timezone.utc), timedelta(minutes=10))
    ts = window.start_ms + 60_000
    scan = [(ts + port, v2_line("10.1.2.66", "10.0.10.4", 40000, port, action="REJECT")) for port in range(1, 40)]
    write(aws["logs"], ENV["VPC_A_LOG_GROUP"], scan)
    write(aws["logs"], ENV["VPC_B_LOG_GROUP"], [(ts, v2_line("10.0.1.5", "10.1.10.3", 40000, 3306))])
    report = lambda_handler({"window": window.to_json(), "source": "test"}, Context())
    assert [a["type"] for a in report["anomalies"]] == ["port_scan"]
    [message] = alert_messages(aws)
    assert "port_scan" in message["Message"] and "10.1.2.66" in message["Message"]
    assert window.to_json()["start"] in message["Message"] and "request_id=req-123" in message["Message"]
    assert message["Subject"].startswith("vpcpeer: HIGH port_scan on VPC-A")
    alert_id = f"test/{window.to_json()['start']}/{report['anomalies'][0]['key']}"
    assert message["MessageAttributes"]["alert_id"]["Value"] == alert_id and f"Alert id: {alert_id}" in message["Message"]
    assert report["published"]["alerts_sent"] == [alert_id]


def test_orchestrated_runs_publish_nothing(aws) -> None:
    window = last_complete_hour(datetime.now(timezone.utc), timedelta(minutes=10))
    ts = window.start_ms + 60_000
    write(aws["logs"], ENV["VPC_A_LOG_GROUP"], [(ts + i, v2_line("10.1.2.66", "10.0.10.4", 40000, p, action="REJECT")) for i, p in enumerate(range(1, 40))])
    write(aws["logs"], ENV["VPC_B_LOG_GROUP"], [])
    report = lambda_handler({"window": window.to_json(), "orchestrated": True}, Context())
    assert report["anomalies"] and report["published"] == {"metrics": False, "alerts_sent": [],
                                                           "alerts_already_sent": [], "redelivered": []}
    assert alert_messages(aws) == []
    assert aws["cloudwatch"].list_metrics(Namespace=METRIC_NAMESPACE)["Metrics"] == []


def test_an_empty_hour_is_a_valid_distinct_result(aws) -> None:
    """Nothing in the hour, but the flow logs were active and kept delivering after it: quiet."""
    window = last_complete_hour(datetime.now(timezone.utc), timedelta(minutes=10))
    for group in (ENV["VPC_A_LOG_GROUP"], ENV["VPC_B_LOG_GROUP"]):
        write(aws["logs"], group, [(window.end_ms + 60_000, nodata_line())])
    report = lambda_handler({}, Context())
    assert all(v["total_requests"] == 0 and v["lines_read"] == 0 for v in report["vpcs"].values())
    assert report["anomalies"] == []
    assert all(v["coverage"]["complete"] for v in report["vpcs"].values())


def test_an_empty_hour_of_a_log_that_went_silent_is_not_quiet(aws) -> None:
    for group in (ENV["VPC_A_LOG_GROUP"], ENV["VPC_B_LOG_GROUP"]):
        write(aws["logs"], group, [])
    report = lambda_handler({}, Context())
    silent = {a["vpc"]: a for a in report["anomalies"] if a["type"] == "flow_logs_silent"}
    assert set(silent) == {"VPC-A", "VPC-B"}
    assert "received no record in or after the window" in silent["VPC-A"]["description"]
    assert aws["cloudwatch"].list_metrics(Namespace=METRIC_NAMESPACE)["Metrics"] == []  # no zero datapoints


def _assert_nothing_published(aws) -> None:
    assert aws["cloudwatch"].list_metrics(Namespace=METRIC_NAMESPACE)["Metrics"] == []
    assert alert_messages(aws) == []


def test_missing_log_group_raises_and_publishes_nothing(aws) -> None:
    write(aws["logs"], ENV["VPC_A_LOG_GROUP"], [])
    aws["logs"].delete_log_group(logGroupName=ENV["VPC_B_LOG_GROUP"])
    with pytest.raises(QueryFailedError, match="ResourceNotFoundException.*VPC_A_LOG_GROUP"):
        lambda_handler({}, Context())
    _assert_nothing_published(aws)


def _stubbed_failure(stub: Stubber, failure: str) -> None:
    for qid, group in (("q-a", ENV["VPC_A_LOG_GROUP"]), ("q-b", ENV["VPC_B_LOG_GROUP"])):
        if failure in ("AccessDeniedException", "ThrottlingException") and qid == "q-a":
            for _ in range(6 if failure == "ThrottlingException" else 1):
                stub.add_client_error("start_query", service_error_code=failure, http_status_code=400)
            return
        stub.add_response("start_query", {"queryId": qid}, {"logGroupName": group, "startTime": ANY, "endTime": ANY,
                                                               "queryString": ANY, "limit": ANY})
    stub.add_response("get_query_results", {"status": failure, "results": []}, {"queryId": "q-a"})
    stub.add_response("stop_query", {"success": True}, {"queryId": "q-b"})


@pytest.mark.parametrize(
    ("failure", "error"),
    [("Failed", QueryFailedError), ("Cancelled", QueryFailedError), ("Timeout", QueryFailedError),
     ("AccessDeniedException", QueryFailedError), ("ThrottlingException", ThrottledError)],
)
def test_insights_failures_raise_and_publish_nothing(aws, monkeypatch, failure: str, error: type) -> None:
    monkeypatch.setenv("ANALYZER_ENGINE", "insights")
    monkeypatch.setattr("time.sleep", lambda s: None)
    logs = boto3.client("logs", region_name=REGION)
    stub = Stubber(logs)
    _stubbed_failure(stub, failure)
    real = handler_module._clients

    def clients():
        return dataclasses.replace(real(), logs=logs)

    monkeypatch.setattr(handler_module, "_clients", clients)
    with stub, pytest.raises(error):
        lambda_handler({}, Context())
    _assert_nothing_published(aws)


def _scan_into_a(aws, window) -> None:
    ts = window.start_ms + 60_000
    write(aws["logs"], ENV["VPC_A_LOG_GROUP"],
          [(ts + port, v2_line("10.1.2.66", "10.0.10.4", 40000, port, action="REJECT")) for port in range(1, 40)])
    write(aws["logs"], ENV["VPC_B_LOG_GROUP"], [(ts, v2_line("10.0.1.5", "10.1.10.3", 40000, 3306))])


def test_invoking_twice_for_one_window_sends_each_alert_once(aws) -> None:
    """At-least-once triggers (an EventBridge or Lambda retry) invoke the handler again: one alert."""
    window = last_complete_hour(datetime.now(timezone.utc), timedelta(minutes=10))
    _scan_into_a(aws, window)
    first = lambda_handler({"window": window.to_json()}, Context())
    second = lambda_handler({"window": window.to_json()}, Context())
    assert len(first["published"]["alerts_sent"]) == 1 and second["published"]["alerts_sent"] == []
    assert second["published"]["alerts_already_sent"] == first["published"]["alerts_sent"]
    assert len(alert_messages(aws)) == 1
    assert first["published"]["metrics"] is True and second["published"]["metrics"] is False


def test_a_window_that_has_not_settled_is_refused_and_publishes_nothing(aws) -> None:
    from lambda_pkg.errors import WindowNotSettled

    now = datetime.now(timezone.utc)
    current = now.replace(minute=0, second=0, microsecond=0)
    for start, end in ((current, current + timedelta(hours=1)), (now + timedelta(hours=2), now + timedelta(hours=3))):
        with pytest.raises(WindowNotSettled, match="not settled.*analyse it after"):
            lambda_handler({"window": {"start": start.isoformat(), "end": end.isoformat()}}, Context())
    _assert_nothing_published(aws)


def _flows_from_b_into_a(aws, window, count: int = 40) -> None:
    ts = window.start_ms + 60_000
    write(aws["logs"], ENV["VPC_B_LOG_GROUP"],
          [(ts + i, v2_line("10.1.1.7", "10.0.1.9", 40000 + i, 443)) for i in range(count)])


def test_a_deleted_flow_log_is_alerted_not_reported_as_quiet(aws) -> None:
    window = last_complete_hour(datetime.now(timezone.utc), timedelta(minutes=10))
    aws["ec2"].delete_flow_logs(FlowLogIds=[aws["flow_logs"]["VPC-A"]])
    _flows_from_b_into_a(aws, window)
    report = lambda_handler({"window": window.to_json()}, Context())
    [silent] = [a for a in report["anomalies"] if a["type"] == "flow_logs_silent"]
    assert silent["vpc"] == "VPC-A" and silent["severity"] == "high"
    assert "no flow log delivers to /aws/vpc/flowlogs/test/vpc-a" in silent["description"]
    assert report["vpcs"]["VPC-A"]["coverage"]["complete"] is False
    assert report["vpcs"]["VPC-B"]["coverage"]["complete"] is True
    [message] = alert_messages(aws)
    assert "flow_logs_silent" in message["Message"] and "NOT COVERED" in message["Message"]
    # VPC-A's zero is not a fact: no datapoint for it, VPC-B's as usual.
    published = {d["Value"] for m in aws["cloudwatch"].list_metrics(Namespace=METRIC_NAMESPACE)["Metrics"]
                 for d in m["Dimensions"]}
    assert published == {"VPC-B"}


def test_a_log_silent_while_its_peer_logs_traffic_into_it_is_alerted(aws) -> None:
    window = last_complete_hour(datetime.now(timezone.utc), timedelta(minutes=10))
    write(aws["logs"], ENV["VPC_A_LOG_GROUP"], [])
    _flows_from_b_into_a(aws, window)
    report = lambda_handler({"window": window.to_json()}, Context())
    [silent] = [a for a in report["anomalies"] if a["type"] == "flow_logs_silent"]
    assert silent["vpc"] == "VPC-A" and "VPC-B logged 40 accepted flows into it" in silent["description"]
    assert silent["evidence"]["peer_flows_in"] == 40 and silent["evidence"]["records"] == 0


def test_standalone_the_band_is_learned_from_the_metrics_the_function_published(aws, monkeypatch) -> None:
    """The standalone Lambda's history is its own published metrics: three earlier days of ~100
    requests at this hour make 100 the expectation, so 200 is a spike although far under the
    constant threshold (500); with BASELINE=static the same hour is quiet."""
    from lambda_pkg.publish import MetricsPublisher

    window = last_complete_hour(datetime.now(timezone.utc), timedelta(minutes=10))
    for days in (1, 2, 3):
        start = window.start - timedelta(days=days)
        vpc = {"total_requests": 100 + days, "unique_sources": 5, "rejected_connections": 0,
               "external_traffic_count": 0, "total_bytes": 1}
        MetricsPublisher(aws["cloudwatch"]).publish({"vpcs": {"VPC-A": vpc, "VPC-B": vpc}},
                                                    Window(start, start + timedelta(hours=1)))
    ts = window.start_ms + 60_000
    write(aws["logs"], ENV["VPC_A_LOG_GROUP"],
          [(ts + i, v2_line(f"10.1.1.{i % 50 + 1}", "10.0.10.4", 40000 + i, 443)) for i in range(200)])
    write(aws["logs"], ENV["VPC_B_LOG_GROUP"],
          [(ts + i, v2_line("10.0.1.5", f"10.1.10.{i % 50 + 1}", 40000 + i, 443)) for i in range(102)])

    report = lambda_handler({"window": window.to_json(), "orchestrated": True}, Context())
    assert "baseline" not in report["vpcs"]["VPC-A"]  # orchestrated: Dagster attaches the bands
    report = lambda_handler({"window": window.to_json()}, Context())
    a = report["vpcs"]["VPC-A"]
    assert a["expected_requests"] == 102 and a["baseline"]["total_requests"]["samples"] == 3
    assert a["baseline"]["total_requests"]["method"] == "learned"
    assert [(x["type"], x["vpc"]) for x in report["anomalies"]] == [("traffic_spike", "VPC-A")]

    monkeypatch.setenv("BASELINE", "static")
    static = lambda_handler({"window": window.to_json()}, Context())
    assert static["vpcs"]["VPC-A"]["expected_requests"] == 417 and static["anomalies"] == []


def _seed_known_talkers(aws, hour: int) -> None:
    """Eight days of learning, the last of them an hour before ``hour``: 10.1.1.7 and 10.0.1.9 and
    VPC-A's 443 are known talkers."""
    from lambda_pkg import talkers

    state: talkers.State = {}
    known = {"VPC-A": {"hosts": {"10.0.1.9": 1}, "ports": {"443": 1}}, "VPC-B": {"hosts": {"10.1.1.7": 1}, "ports": {}}}
    for h in (hour - 8 * 24, hour - 1):
        talkers.learn(state, known, h, 7)
    talkers.TalkerStore(aws["dynamodb"], ENV_LEDGER, "test").save(state, 0, [], 7)


ENV_LEDGER = "test-alert-ledger"


def test_standalone_a_new_host_is_alerted_once_and_known_the_next_hour(aws) -> None:
    """The standalone Lambda keeps the known talkers in the ledger's table: a VPC-B host never
    seen is one alert naming it, a retry of the hour sends nothing more, and the next hour
    knows it."""
    last = last_complete_hour(datetime.now(timezone.utc), timedelta(minutes=10))
    first = Window(last.start - timedelta(hours=1), last.start)
    _seed_known_talkers(aws, int(first.start.timestamp()) // 3600)
    flows = [(window.start_ms + 60_000 + i, v2_line(src, "10.0.1.9", 40000 + i, 443))
             for window in (first, last) for i, src in enumerate(["10.1.1.7", "10.1.1.200"] * 5)]
    for group in (ENV["VPC_A_LOG_GROUP"], ENV["VPC_B_LOG_GROUP"]):  # leaving VPC-B, entering VPC-A
        write(aws["logs"], group, flows)

    report = lambda_handler({"window": first.to_json()}, Context())
    assert [(a["type"], a["vpc"], a["evidence"]["value"]) for a in report["anomalies"]] == [
        ("new_talker", "VPC-B", "10.1.1.200")]
    assert len(report["published"]["alerts_sent"]) == 1
    [message] = alert_messages(aws)
    assert "10.1.1.200" in message["Message"]
    retry = lambda_handler({"window": first.to_json()}, Context())
    assert retry["published"]["alerts_sent"] == [] and retry["published"]["alerts_already_sent"] == \
        report["published"]["alerts_sent"]
    following = lambda_handler({"window": last.to_json()}, Context())
    assert following["anomalies"] == [] and alert_messages(aws) == []


def test_standalone_a_talker_state_that_cannot_be_read_fails_the_hour_and_publishes_nothing(aws, monkeypatch) -> None:
    from lambda_pkg.errors import TalkerStateUnavailable

    window = last_complete_hour(datetime.now(timezone.utc), timedelta(minutes=10))
    _flows_from_b_into_a(aws, window)
    aws["dynamodb"].delete_table(TableName=ENV_LEDGER)  # the table is gone
    with pytest.raises(TalkerStateUnavailable, match=ENV_LEDGER):
        lambda_handler({"window": window.to_json()}, Context())
    _assert_nothing_published(aws)
