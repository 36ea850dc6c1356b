"""Logs Insights engine: query text, result parsing on real response shapes, and the
start/poll/stop plumbing through botocore's Stubber (moto cannot run these queries)."""

from __future__ import annotations

from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import ANY, Stubber

from lambda_pkg.aggregate import traffic_for
from lambda_pkg.engines import insights
from lambda_pkg.engines.insights import InsightsEngine, build_query, row_to_record
from lambda_pkg.errors import (
    InconsistentResultError,
    QueryFailedError,
    QueryTimeoutError,
    ResultTruncatedError,
    ThrottledError,
)
from lambda_pkg.window import Window
from tests.analyzer_env import ENV, config

WINDOW = Window(datetime(2026, 1, 1, 10, tzinfo=timezone.utc), datetime(2026, 1, 1, 11, tzinfo=timezone.utc))
GROUP_A, GROUP_B = ENV["VPC_A_LOG_GROUP"], ENV["VPC_B_LOG_GROUP"]


def row(src: str, dst: str, sport: int, dport: int, *, records: int = 1, nbytes: int = 100, packets: int = 2,
        action: str = "ACCEPT", proto: int = 6) -> list[dict[str, str]]:
    """A row shaped like GetQueryResults returns it (all values are strings)."""
    in_a = src.startswith("10.0.")
    in_b = src.startswith("10.1.")
    return [
        {"field": "srcAddr", "value": src}, {"field": "dstAddr", "value": dst},
        {"field": "srcPort", "value": str(sport)}, {"field": "dstPort", "value": str(dport)},
        {"field": "protocol", "value": str(proto)}, {"field": "action", "value": action},
        {"field": "srcInA", "value": "1" if in_a else "0"}, {"field": "srcInB", "value": "1" if in_b else "0"},
        {"field": "records", "value": str(records)}, {"field": "bytes", "value": str(nbytes)},
        {"field": "packets", "value": str(packets)},
    ]


def complete(rows: list) -> dict:
    return {"status": "Complete", "results": rows,
            "statistics": {"recordsMatched": float(len(rows)), "recordsScanned": 1000.0, "bytesScanned": 123456.0}}


class Clock:
    """Fake monotonic clock advanced by the fake sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def logs():
    client = boto3.client("logs", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def start(stub: Stubber, query_id: str, group: str) -> None:
    stub.add_response("start_query", {"queryId": query_id},
                      {"logGroupName": group, "startTime": ANY, "endTime": ANY, "queryString": ANY, "limit": insights.ROW_LIMIT})


def engine(client, clock: Clock, **kw) -> InsightsEngine:
    return InsightsEngine(client, clock=clock, sleep=clock.sleep, **kw)


def run(eng: InsightsEngine) -> dict:
    traffic = traffic_for(config(), WINDOW)
    eng.run(WINDOW, traffic)
    return {k: v.report() for k, v in traffic.items()}


def test_query_text_uses_discovered_fields_and_scans_once() -> None:
    text = build_query(WINDOW, "10.0.0.0/16", "10.1.0.0/16")
    assert 'logStatus = "OK"' in text
    assert f"@timestamp >= fromMillis({WINDOW.start_ms})" in text and f"@timestamp < fromMillis({WINDOW.end_ms})" in text
    assert 'isIpv4InSubnet(srcAddr, "10.0.0.0/16") as srcInA' in text
    assert 'isIpv4InSubnet(srcAddr, "10.1.0.0/16") as srcInB' in text
    assert "by srcAddr, dstAddr, srcPort, dstPort, protocol, action, srcInA, srcInB" in text
    for seed_name in ("srcaddr", "dstaddr", "dstport"):
        assert seed_name not in text
    assert text.count("stats") == 1


def test_both_queries_start_before_polling_and_rows_aggregate(logs) -> None:
    client, stub = logs
    clock = Clock()
    start(stub, "q-a", GROUP_A)
    start(stub, "q-b", GROUP_B)
    stub.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": "q-a"})
    stub.add_response("get_query_results", complete([row("10.0.1.5", "10.1.10.3", 40000, 3306, records=7, nbytes=700)]),
                      {"queryId": "q-b"})
    stub.add_response("get_query_results", {"status": "Scheduled", "results": []}, {"queryId": "q-a"})
    stub.add_response("get_query_results", complete([
        row("10.1.1.5", "10.0.10.3", 40000, 443, records=3, nbytes=300),
        row("10.1.1.6", "10.0.10.3", 40001, 22, records=2, action="REJECT"),
        row("198.51.100.9", "10.0.10.3", 443, 50000, records=4),
    ]), {"queryId": "q-a"})
    reports = run(engine(client, clock))
    assert clock.sleeps == [1.0, 2.0]  # exponential poll backoff
    a, b = reports["VPC-A"], reports["VPC-B"]
    assert a["total_requests"] == 9 and a["rejected_connections"] == 2 and a["external_traffic_count"] == 4
    assert a["top_source_ips"] == [["198.51.100.9", 4], ["10.1.1.5", 3], ["10.1.1.6", 2]]
    assert a["port_breakdown"] == {"22": 2, "443": 3, "50000": 4}
    assert b["total_requests"] == 7 and b["total_bytes"] == 700


@pytest.mark.parametrize("status", ["Failed", "Cancelled", "Timeout", "Unknown"])
def test_every_failed_status_raises_and_stops_the_other_query(logs, status: str) -> None:
    client, stub = logs
    start(stub, "q-a", GROUP_A)
    start(stub, "q-b", GROUP_B)
    stub.add_response("get_query_results", {"status": status, "results": []}, {"queryId": "q-a"})
    stub.add_response("stop_query", {"success": True}, {"queryId": "q-b"})
    with pytest.raises(QueryFailedError, match=status):
        run(engine(client, Clock()))


def test_deadline_stops_running_queries(logs) -> None:
    client, stub = logs
    start(stub, "q-a", GROUP_A)
    start(stub, "q-b", GROUP_B)
    for _ in range(3):
        stub.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": "q-a"})
        stub.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": "q-b"})
    stub.add_response("stop_query", {"success": True}, {"queryId": "q-a"})
    stub.add_response("stop_query", {"success": True}, {"queryId": "q-b"})
    clock = Clock()
    with pytest.raises(QueryTimeoutError, match="stopped"):
        run(engine(client, clock, deadline_seconds=3))
    assert sum(clock.sleeps) <= 3


def test_throttling_that_outlasts_the_client_retries_raises_at_once(logs) -> None:
    # botocore retries throttling (tests/unit/test_retry_layer.py); the engine does not loop again.
    client, stub = logs
    stub.add_client_error("start_query", service_error_code="ThrottlingException", http_status_code=400)
    clock = Clock()
    with pytest.raises(ThrottledError, match="StartQuery on .*still throttled \\(ThrottlingException\\) after 1 attempt"):
        run(engine(client, clock))
    assert clock.sleeps == []


def test_access_denied_raises_with_a_fix(logs) -> None:
    client, stub = logs
    stub.add_client_error("start_query", service_error_code="AccessDeniedException", service_message="no", http_status_code=400)
    with pytest.raises(QueryFailedError, match="AccessDeniedException.*grant the analyzer role"):
        run(engine(client, Clock()))


def test_truncated_results_are_rerun_on_half_windows(logs, monkeypatch) -> None:
    monkeypatch.setattr(insights, "ROW_LIMIT", 2)
    client, stub = logs
    start(stub, "q-a", GROUP_A)
    start(stub, "q-b", GROUP_B)
    full = [row("10.1.1.5", "10.0.10.3", 40000, 443), row("10.1.1.6", "10.0.10.3", 40001, 443)]
    stub.add_response("get_query_results", complete(full), {"queryId": "q-a"})
    stub.add_response("get_query_results", complete([]), {"queryId": "q-b"})
    start(stub, "q-a1", GROUP_A)
    start(stub, "q-a2", GROUP_A)
    stub.add_response("get_query_results", complete(full[:1]), {"queryId": "q-a1"})
    stub.add_response("get_query_results", complete(full[1:]), {"queryId": "q-a2"})
    reports = run(engine(client, Clock()))
    assert reports["VPC-A"]["total_requests"] == 2  # the truncated first answer was not counted


def test_truncation_at_the_smallest_window_raises(logs, monkeypatch) -> None:
    monkeypatch.setattr(insights, "ROW_LIMIT", 1)
    client, stub = logs
    start(stub, "q-a", GROUP_A)
    start(stub, "q-b", GROUP_B)
    stub.add_response("get_query_results", complete([row("10.1.1.5", "10.0.10.3", 40000, 443)]), {"queryId": "q-a"})
    stub.add_response("get_query_results", complete([]), {"queryId": "q-b"})
    with pytest.raises(ResultTruncatedError, match="partial"):
        run(engine(client, Clock(), max_splits=0))


def test_rows_that_contradict_the_cidr_test_raise() -> None:
    cells = row("10.1.1.5", "10.0.10.3", 40000, 443)
    cells = [c if c["field"] != "srcInB" else {"field": "srcInB", "value": "false"} for c in cells]
    cfg = config()
    with pytest.raises(InconsistentResultError, match="srcInB"):
        row_to_record(cells, cfg.vpc("VPC-A").cidr, cfg.vpc("VPC-B").cidr)


def test_rows_without_discovered_fields_say_to_use_raw() -> None:
    cfg = config()
    with pytest.raises(QueryFailedError, match="ANALYZER_ENGINE=raw"):
        row_to_record([{"field": "records", "value": "3"}], cfg.vpc("VPC-A").cidr, cfg.vpc("VPC-B").cidr)


def test_boolean_spellings_and_sums() -> None:
    cfg = config()
    cells = row("10.0.1.5", "10.1.1.5", 40000, 443, records=3, nbytes=1234567)
    cells = [c if c["field"] != "srcInA" else {"field": "srcInA", "value": "true"} for c in cells]
    record, weight = row_to_record(cells, cfg.vpc("VPC-A").cidr, cfg.vpc("VPC-B").cidr)
    assert weight == 3 and record.bytes == 1234567 and record.dstport == 443


def test_concurrent_queries_stay_under_the_cap_even_when_windows_split(logs, monkeypatch) -> None:
    """With a cap of one, no query starts before the previous one answered: the halves of a
    split window queue behind the other log group's query instead of piling onto the quota."""
    monkeypatch.setattr(insights, "ROW_LIMIT", 2)
    client, stub = logs
    full = [row("10.1.1.5", "10.0.10.3", 40000, 443), row("10.1.1.6", "10.0.10.3", 40001, 443)]
    for query_id, group, rows in (("q-a", GROUP_A, full), ("q-b", GROUP_B, []),
                                  ("q-a1", GROUP_A, full[:1]), ("q-a2", GROUP_A, full[1:])):
        start(stub, query_id, group)  # the Stubber fails the test if calls come in another order
        stub.add_response("get_query_results", complete(rows), {"queryId": query_id})
    traffic = traffic_for(config(), WINDOW)
    stats = engine(client, Clock(), max_concurrent=1).run(WINDOW, traffic)
    assert stats["queries"] == 4 and stats["splits"] == 1 and stats["max_concurrent"] == 1
    assert traffic["VPC-A"].report()["total_requests"] == 2


def test_the_cap_is_configured_and_checked() -> None:
    from lambda_pkg.errors import InvalidAnalyzerConfig

    assert config().max_concurrent_queries == 4
    assert config(INSIGHTS_MAX_CONCURRENT_QUERIES="2").max_concurrent_queries == 2
    for bad in ("0", "31", "2.5", "many"):
        with pytest.raises(InvalidAnalyzerConfig, match="INSIGHTS_MAX_CONCURRENT_QUERIES"):
            config(INSIGHTS_MAX_CONCURRENT_QUERIES=bad)
