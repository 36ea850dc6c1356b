"""The known talkers in the ledger's DynamoDB table (the embedded AWS server): what one writer
learned survives another writer's concurrent save, the item stays within DynamoDB's limits at
the caps, and an endpoint that does not answer is a typed failure, never an empty state (which
would report every host as new, or learn nothing)."""

from __future__ import annotations

import socket
import threading

import boto3
import pytest

from lambda_pkg import talkers
from lambda_pkg.clients import client_config
from lambda_pkg.errors import TalkerStateUnavailable
from tests.aws_fixtures import create_ledger_table

REGION = "us-east-1"
H0 = 500_000
DAYS = 7


def client(endpoint: str):
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="t",
                        aws_secret_access_key="t", config=client_config())


def seen(*hosts: str) -> talkers.Seen:
    return {"VPC-B": {"hosts": {h: 3 for h in hosts}, "ports": {}}}


def test_concurrent_writers_lose_nothing_the_other_learned(local_aws) -> None:
    dynamodb = client(local_aws.endpoint())
    table = create_ledger_table(dynamodb, "talker-race")
    writers = 6
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def analyse(i: int) -> None:
        try:
            store = talkers.TalkerStore(dynamodb, table, "dev")
            state, version = store.load()
            start.wait()  # every writer read the same version
            hour = (H0 + i, seen(f"10.1.1.{i}"))
            talkers.learn(state, hour[1], hour[0], DAYS)
            store.save(state, version, [hour], DAYS)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=analyse, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    state, version = talkers.TalkerStore(dynamodb, table, "dev").load()
    assert sorted(state["VPC-B"]["hosts"]) == sorted(f"10.1.1.{i}" for i in range(writers))
    assert state["VPC-B"]["since"] == H0
    assert version >= 1  # each save wrote a new version, none over another's
    assert talkers.TalkerStore(dynamodb, table, "other-stack").load() == ({}, 0)


def test_a_state_at_the_caps_is_stored_and_read_back(local_aws) -> None:
    dynamodb = client(local_aws.endpoint())
    table = create_ledger_table(dynamodb, "talker-caps")
    state: talkers.State = {}
    for label, net in (("VPC-A", "10.0"), ("VPC-B", "10.1")):
        many = {label: {"hosts": {f"{net}.{i // 250}.{i % 250}": 1 for i in range(3000)},
                        "ports": {str(p): 1 for p in range(1024, 2024)}}}
        talkers.learn(state, many, H0, DAYS)
    store = talkers.TalkerStore(dynamodb, table, "dev")
    assert store.save(state, 0, [], DAYS) == 1
    assert store.load() == (state, 1)


def test_an_endpoint_that_does_not_answer_is_a_typed_failure() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = talkers.TalkerStore(client(f"http://127.0.0.1:{port}"), "ledger", "dev")
    with pytest.raises(TalkerStateUnavailable, match="reading the talker state from ledger failed"):
        store.load()
    with pytest.raises(TalkerStateUnavailable, match="writing the talker state to ledger failed"):
        store.save({}, 0, [], DAYS)
