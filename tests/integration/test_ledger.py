"""The delivery ledger on DynamoDB (moto): claims are exclusive, a dead holder's claim is taken
over after its expiry, released and unsent alerts are due, sent ones never come back."""

from __future__ import annotations

import threading

import boto3
import pytest
from moto import mock_aws

from lambda_pkg.delivery import Alert, Deliverer, Delivery
from lambda_pkg.errors import LedgerError
from lambda_pkg.ledger import KIND_METRICS, PENDING, SENT, AlertLedger, Message
from tests.aws_fixtures import create_ledger_table

REGION = "us-east-1"
MESSAGE = Message("vpcpeer: HIGH port_scan", "Window: ...\n  - [VPC-A] port_scan: ...", {"alert_id": "dev/h/a"})


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def dynamodb(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_ledger_table(client, "ledger")
        yield client


@pytest.fixture
def clock() -> Clock:
    return Clock()


def ledger(dynamodb, clock: Clock) -> AlertLedger:
    return AlertLedger(dynamodb, "ledger", claim_seconds=60, clock=clock)


def test_a_claim_is_exclusive_until_it_expires_and_final_once_sent(dynamodb, clock) -> None:
    book = ledger(dynamodb, clock)
    assert book.claim("dev/h/a", "run-1", message=MESSAGE)
    assert not book.claim("dev/h/a", "run-2", message=MESSAGE)  # held, not expired
    assert list(book.due()) == []  # a live claim is not due
    clock.now += 61
    [due] = list(book.due())  # the holder died: due, with the message decided then
    assert due.id == "dev/h/a" and due.owner == "run-1" and due.message == MESSAGE
    assert book.take_over(due, "run-2") and not book.take_over(due, "run-3")
    book.mark_sent("dev/h/a", "msg-1")
    clock.now += 3600
    assert not book.claim("dev/h/a", "run-4", message=MESSAGE)
    assert list(book.due()) == []
    record = book.get("dev/h/a")
    assert record.state == SENT and record.message_id == "msg-1" and record.owner == "run-2"


def test_a_released_claim_is_due_at_once(dynamodb, clock) -> None:
    book = ledger(dynamodb, clock)
    assert book.claim("dev/h/a", "run-1", message=MESSAGE)
    book.release("dev/h/a", "run-2")  # not the holder: ignored
    assert list(book.due()) == []
    book.release("dev/h/a", "run-1")
    assert [r.id for r in book.due()] == ["dev/h/a"]
    assert book.claim("dev/h/a", "run-2", message=MESSAGE)  # a retry claims it again


def test_metrics_records_are_never_listed_as_due_alerts(dynamodb, clock) -> None:
    book = ledger(dynamodb, clock)
    assert book.claim("dev/h/metrics", "run-1", kind=KIND_METRICS)
    book.release("dev/h/metrics", "run-1")
    assert list(book.due()) == [] and book.get("dev/h/metrics").state == PENDING


def test_concurrent_claims_on_the_embedded_aws_have_one_winner(local_aws) -> None:
    """Against the embedded AWS (a real server, requests from many threads): one claim wins.

    (moto used in-process, without the server, does not make conditional writes atomic.)
    """
    from lambda_pkg.clients import client_config

    dynamodb = boto3.client("dynamodb", endpoint_url=local_aws.endpoint(), region_name=REGION,
                            aws_access_key_id="t", aws_secret_access_key="t", config=client_config())
    create_ledger_table(dynamodb, "race-ledger")
    for round_ in range(5):
        book = AlertLedger(dynamodb, "race-ledger")
        winners: list[str] = []
        start = threading.Barrier(8)

        def claim(owner: str) -> None:
            start.wait()
            if book.claim(f"dev/h/race-{round_}", owner, message=MESSAGE):
                winners.append(owner)

        threads = [threading.Thread(target=claim, args=(f"run-{i}",)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(winners) == 1 and book.get(f"dev/h/race-{round_}").owner == winners[0]


def test_a_missing_table_is_a_ledger_error_naming_it(dynamodb, clock) -> None:
    book = AlertLedger(dynamodb, "no-such-table", clock=clock)
    with pytest.raises(LedgerError, match="no-such-table"):
        book.claim("dev/h/a", "run-1", message=MESSAGE)
    with pytest.raises(LedgerError, match="ALERT_LEDGER_TABLE"):
        AlertLedger(dynamodb, "")


def test_the_deliverer_publishes_each_alert_once_with_its_id_attribute(dynamodb, clock) -> None:
    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    alerts = [Alert(f"dev/h/{i}", Message(f"s{i}", f"b{i}", {"alert_id": f"dev/h/{i}"})) for i in range(3)]
    first = Deliverer(ledger(dynamodb, clock), sns, topic, "run-1").deliver(alerts)
    again = Deliverer(ledger(dynamodb, clock), sns, topic, "run-2").deliver(alerts)
    assert sorted(first.sent) == [a.id for a in alerts] and again.sent == {} and sorted(again.skipped) == sorted(first.sent)
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    import json

    ids = sorted(json.loads(m["Body"])["MessageAttributes"]["alert_id"]["Value"] for m in received)
    assert ids == [a.id for a in alerts]


def test_failures_raise_only_after_everything_else_went_out() -> None:
    delivery = Delivery(sent={"a": "m1"}, skipped=["b"], failed={"c": "SNS Publish failed: 503"})
    with pytest.raises(Exception, match="1 alert\\(s\\) could not be published.*c"):
        delivery.raise_for_failures()
    Delivery(sent={"a": "m1"}).raise_for_failures()
