"""The learned baseline's history is the analyzer's own published metrics: what the publisher puts
into CloudWatch (moto) is what read_history reads back, hour by hour, and an endpoint that does
not answer is a typed failure, never an empty history (which would judge the hour against the
constant, silently)."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone

import pytest

from lambda_pkg import baseline
from lambda_pkg.errors import HistoryUnavailable
from lambda_pkg.publish import MetricsPublisher
from lambda_pkg.window import Window
from vpcpeer_orchestration.local.server import make_client

START = datetime(2026, 3, 2, tzinfo=timezone.utc)


def report(requests: int, rejects: int, external: int, covered_b: bool = True) -> dict:
    vpc = {"total_requests": requests, "unique_sources": 5, "rejected_connections": rejects,
           "external_traffic_count": external, "total_bytes": 1000, "coverage": {"complete": True}}
    return {"vpcs": {"VPC-A": vpc, "VPC-B": {**vpc, "total_requests": requests + 1,
                                             "coverage": {"complete": covered_b}}}}


def test_what_the_analyzer_published_is_the_history_it_reads(inprocess_moto) -> None:
    cloudwatch = make_client("cloudwatch", inprocess_moto, "us-east-1")
    publisher = MetricsPublisher(cloudwatch, namespace="VPCPeer/HistoryTest")
    hours = [START + timedelta(days=d, hours=3) for d in range(4)] + [START + timedelta(days=70)]
    for i, hour in enumerate(hours):
        assert publisher.publish(report(300 + i, i, 2 * i, covered_b=i != 1), Window(hour, hour + timedelta(hours=1)))

    history = baseline.read_history(cloudwatch, ["VPC-A", "VPC-B"], START, START + timedelta(days=71),
                                    namespace="VPCPeer/HistoryTest")  # two calls: 71 days > 1,440 hours
    assert history[("VPC-A", "total_requests")] == {baseline.hour_key(h): 300.0 + i for i, h in enumerate(hours)}
    assert history[("VPC-A", "rejected_connections")] == {baseline.hour_key(h): float(i) for i, h in enumerate(hours)}
    assert history[("VPC-A", "external_traffic_count")][baseline.hour_key(hours[2])] == 4.0
    # VPC-B's hour 1 was not covered: published for VPC-A only, and absent from VPC-B's history.
    assert sorted(history[("VPC-B", "total_requests")]) == sorted(baseline.hour_key(h) for i, h in enumerate(hours)
                                                                   if i != 1)
    # [start, end): the hours from the 4th day on are outside.
    short = baseline.read_history(cloudwatch, ["VPC-A"], START, START + timedelta(days=3),
                                  namespace="VPCPeer/HistoryTest")
    assert len(short[("VPC-A", "total_requests")]) == 3


def test_an_endpoint_that_does_not_answer_is_a_typed_failure() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cloudwatch = make_client("cloudwatch", f"http://127.0.0.1:{port}", "us-east-1")
    with pytest.raises(HistoryUnavailable, match="could not read the TotalRequests history of VPC-A"):
        baseline.read_history(cloudwatch, ["VPC-A"], START, START + timedelta(days=28))
