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
from lambda_pkg.engines.insights_plan import ports_query
from lambda_pkg.errors import (
    InconsistentResultError,
    QueryFailedError,
    QueryTimeoutError,
    ThrottledError,
)
from lambda_pkg.window import Window
from tests.analyzer_env import ENV, config
from vpcpeer_orchestration.local.insights_query import run_query

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


def port_rows(label: str, *rows: list[dict[str, str]]) -> list:
    """What the per-port query answers for the records behind flow-tuple ``rows``: the query
    itself, evaluated over those records by the embedded evaluator."""
    events = []
    for cells in rows:
        f = {c["field"]: c["value"] for c in cells}
        records, nbytes, packets = int(f["records"]), int(f["bytes"]), int(f["packets"])
        for i in range(records):  # the first record carries the remainders: the sums stay the same
            b = nbytes // records + (nbytes % records if i == 0 else 0)
            p = packets // records + (packets % records if i == 0 else 0)
            events.append({"timestamp": WINDOW.start_ms + i, "message":
                           f"2 123456789012 eni-1 {f['srcAddr']} {f['dstAddr']} {f['srcPort']} {f['dstPort']} "
                           f"{f['protocol']} {p} {b} 1 2 {f['action']} OK"})
    cfg = config()
    spec = cfg.vpc(label)
    peer = next(v for v in cfg.vpcs if v.label != label)
    return run_query(ports_query(WINDOW, spec, peer), events).results


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


def test_both_queries_of_a_round_start_before_polling_and_rows_aggregate(logs) -> None:
    client, stub = logs
    clock = Clock()
    a_rows = [row("10.1.1.5", "10.0.10.3", 40000, 443, records=3, nbytes=300),
              row("10.1.1.6", "10.0.10.3", 40001, 22, records=2, action="REJECT"),
              row("198.51.100.9", "10.0.10.3", 443, 50000, records=4)]
    b_rows = [row("10.0.1.5", "10.1.10.3", 40000, 3306, records=7, nbytes=700)]
    # Round 1: the per-port query of each log group.
    start(stub, "p-a", GROUP_A)
    start(stub, "p-b", GROUP_B)
    stub.add_response("get_query_results", complete(port_rows("VPC-A", *a_rows)), {"queryId": "p-a"})
    stub.add_response("get_query_results", complete(port_rows("VPC-B", *b_rows)), {"queryId": "p-b"})
    # Round 2: small hours, so the flow tuples.
    start(stub, "q-a", GROUP_A)
    start(stub, "q-b", GROUP_B)
    stub.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": "q-a"})
    stub.add_response("get_query_results", complete(b_rows), {"queryId": "q-b"})
    stub.add_response("get_query_results", {"status": "Scheduled", "results": []}, {"queryId": "q-a"})
    stub.add_response("get_query_results", complete(a_rows), {"queryId": "q-a"})
    traffic = traffic_for(config(), WINDOW)
    stats = engine(client, clock).run(WINDOW, traffic)
    assert clock.sleeps == [1.0, 2.0]  # exponential poll backoff
    assert stats["scans"] == {"VPC-A": 2, "VPC-B": 2} and stats["plan"] == {"VPC-A": "flows", "VPC-B": "flows"}
    a, b = traffic["VPC-A"].report(), traffic["VPC-B"].report()
    assert a["total_requests"] == 9 and a["rejected_connections"] == 2 and a["external_traffic_count"] == 4
    assert a["top_source_ips"] == [["198.51.100.9", 4], ["10.1.1.5", 3], ["10.1.1.6", 2]]
    assert a["port_breakdown"] == {"22": 2, "443": 3, "50000": 4}
    assert b["total_requests"] == 7 and b["total_bytes"] == 700


def test_an_empty_hour_costs_one_scan(logs) -> None:
    client, stub = logs
    start(stub, "p-a", GROUP_A)
    start(stub, "p-b", GROUP_B)
    stub.add_response("get_query_results", complete([]), {"queryId": "p-a"})
    stub.add_response("get_query_results", complete([]), {"queryId": "p-b"})
    traffic = traffic_for(config(), WINDOW)
    stats = engine(client, Clock()).run(WINDOW, traffic)
    assert stats["queries"] == 2 and stats["plan"] == {"VPC-A": "empty", "VPC-B": "empty"}
    assert traffic["VPC-A"].report()["total_requests"] == 0


def test_records_that_change_between_the_rounds_raise(logs) -> None:
    """The flow tuples must add up to what the per-port query counted: a late record between
    the two queries would otherwise make a report whose fields disagree."""
    client, stub = logs
    first = [row("10.1.1.5", "10.0.10.3", 40000, 443, records=3)]
    start(stub, "p-a", GROUP_A)
    start(stub, "p-b", GROUP_B)
    stub.add_response("get_query_results", complete(port_rows("VPC-A", *first)), {"queryId": "p-a"})
    stub.add_response("get_query_results", complete([]), {"queryId": "p-b"})
    start(stub, "q-a", GROUP_A)
    stub.add_response("get_query_results", complete([row("10.1.1.5", "10.0.10.3", 40000, 443, records=4)]),
                      {"queryId": "q-a"})
    with pytest.raises(InconsistentResultError, match="changed between the queries"):
        run(engine(client, Clock()))


def test_per_port_columns_that_do_not_add_up_raise(logs) -> None:
    client, stub = logs
    rows = port_rows("VPC-A", row("10.1.1.5", "10.0.10.3", 40000, 443, records=3))
    rows = [[c if c["field"] != "n3" else {"field": "n3", "value": "2"} for c in r] for r in rows]  # 443 = 55 * 8 + 3
    start(stub, "p-a", GROUP_A)
    start(stub, "p-b", GROUP_B)
    stub.add_response("get_query_results", complete(rows), {"queryId": "p-a"})
    stub.add_response("get_query_results", complete([]), {"queryId": "p-b"})
    with pytest.raises(InconsistentResultError, match="add up to 2, not 3 records"):
        run(engine(client, Clock()))


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


def test_concurrent_queries_stay_under_the_cap(logs) -> None:
    """With a cap of one, no query starts before the previous one answered: the queries of a
    round queue behind each other instead of piling onto the account's quota."""
    client, stub = logs
    a_rows = [row("10.1.1.5", "10.0.10.3", 40000, 443), row("10.1.1.6", "10.0.10.3", 40001, 443)]
    for query_id, group, rows in (("p-a", GROUP_A, port_rows("VPC-A", *a_rows)), ("p-b", GROUP_B, []),
                                  ("q-a", GROUP_A, a_rows)):
        start(stub, query_id, group)  # the Stubber fails the test if calls come in another order
        stub.add_response("get_query_results", complete(rows), {"queryId": query_id})
    traffic = traffic_for(config(), WINDOW)
    stats = engine(client, Clock(), max_concurrent=1).run(WINDOW, traffic)
    assert stats["queries"] == 3 and stats["max_concurrent"] == 1
    assert traffic["VPC-A"].report()["total_requests"] == 2


def test_the_cap_is_configured_and_checked() -> None:
    from lambda_pkg.errors import InvalidAnalyzerConfig

    assert config().max_concurrent_queries == 4
    assert config(INSIGHTS_MAX_CONCURRENT_QUERIES="2").max_concurrent_queries == 2
    for bad in ("0", "31", "2.5", "many"):
        with pytest.raises(InvalidAnalyzerConfig, match="INSIGHTS_MAX_CONCURRENT_QUERIES"):
            config(INSIGHTS_MAX_CONCURRENT_QUERIES=bad)


@pytest.mark.parametrize(("field", "value"), [("dstPort", "-1"), ("dstPort", "70000"), ("srcPort", "65536"),
                                              ("protocol", "256"), ("bytes", "-5"), ("bytes", "Infinity"),
                                              ("packets", "NaN"), ("records", "1.5"), ("dstPort", "4_43"),
                                              ("dstPort", "٤٤٣"), ("bytes", " 5")])
def test_result_values_out_of_the_raw_parsers_bounds_are_refused(field: str, value: str) -> None:
    """The same bounds as the raw parser, and a typed error (Infinity once raised OverflowError)."""
    cells = [c if c["field"] != field else {"field": field, "value": value} for c in row("10.1.1.5", "10.0.10.3", 40000, 443)]
    cfg = config()
    with pytest.raises(InconsistentResultError, match=field):
        row_to_record(cells, cfg.vpc("VPC-A").cidr, cfg.vpc("VPC-B").cidr)
