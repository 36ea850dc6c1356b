"""The Logs Insights plan: its queries, evaluated by the embedded evaluator, give the report the
raw aggregation gives for the same records (exactly, or with every difference flagged).

The class of each flow (reply, inbound, unexpected, unsolicited, scan) is computed in the
query text and in ``aggregate.FlowClass``; random records over every kind of place, port and
protocol pin the two together.
"""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import flowdata
from bench.insights_cost import EvaluatedLogs, differences
from lambda_pkg.aggregate import ReportTables, traffic_for
from lambda_pkg.engines import insights_plan as plan
from lambda_pkg.engines.insights import InsightsEngine
from lambda_pkg.window import Window
from tests.analyzer_env import config
from tests.unit.test_aggregate_equivalence import line
from vpcpeer_orchestration.local.insights_query import run_query

WINDOW = Window(datetime(2026, 1, 1, 10, tzinfo=timezone.utc), datetime(2026, 1, 1, 11, tzinfo=timezone.utc))


def events(lines: list[str], window: Window = WINDOW) -> list[dict]:
    return [{"timestamp": window.start_ms + i % (window.end_ms - window.start_ms), "message": text}
            for i, text in enumerate(lines)]


def raw_traffic(lines: list[str], window: Window = WINDOW):
    traffic = traffic_for(config(), window)
    for label in traffic:
        for event in events(lines, window):
            traffic[label].add_line(event["message"], event["timestamp"])
        traffic[label].settle()
    return traffic


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_the_queries_classify_flows_as_the_aggregation_does(seed: int) -> None:
    rng = random.Random(seed)
    lines = [line(rng, clean=True) for _ in range(rng.randint(1, 300))]
    lines = [text for text in lines if text.endswith(" OK")]
    for label, agg in raw_traffic(lines).items():
        t = ReportTables.of(agg)
        ports = plan.decode_ports(run_query(plan.ports_query(WINDOW, agg.spec, agg.peer), events(lines)).results)
        assert (ports.records, ports.bytes, ports.packets) == (t.requests, agg.bytes, agg.packets), label
        assert (ports.rejected, ports.external, ports.ipv6, ports.accepted_to_peer, ports.unsolicited) == (
            t.rejected, t.external, t.ipv6, t.accepted_to_peer, t.unsolicited_external), label
        for prefix, table in (("n", t.ports), ("r", t.rejected_ports), ("s", t.unsolicited_ports),
                              ("u", t.unexpected), ("p", t.unexpected_to_peer), ("t", t.talker_ports)):
            assert ports.tables[prefix] == +table, (label, prefix)

        sources = plan.decode_sources(run_query(plan.sources_query(WINDOW, agg.spec, agg.peer), events(lines)).results)
        assert sources.complete
        for got, want in ((sources.records, t.sources), (sources.rejected, t.rejected_sources),
                          (sources.unsolicited, t.unsolicited_sources), (sources.port_records, t.port_records),
                          (sources.port_rejects, t.port_rejects), (sources.talks, t.talker_sources)):
            assert got == +want, label
        widths = {s: (len(agg._scan_ports.get(s, ())), len(agg._scan_hosts.get(s, ())))
                  for s in agg._scan_ports.keys() | agg._scan_hosts.keys()}
        assert sources.widths == widths, label

        destinations = plan.decode_destinations(run_query(plan.destinations_query(WINDOW), events(lines)).results)
        assert destinations == (len(agg.destinations), t.requests), label


def evaluated(lines: list[str], **engine_options):
    """The engine, unchanged, against Logs calls the evaluator answers over ``lines`` (VPC-A's log)."""
    cfg = config()
    window = Window(datetime.fromtimestamp(flowdata.WINDOW_START, timezone.utc),
                    datetime.fromtimestamp(flowdata.WINDOW_START + flowdata.WINDOW_SECONDS, timezone.utc))
    timed = []
    for text in lines:
        fields = text.split(" ")
        start = int(fields[10]) if len(fields) == 14 and fields[10].isdigit() else flowdata.WINDOW_START
        timed.append((start * 1000, text))
    logs = EvaluatedLogs({cfg.vpcs[0].log_group: timed, cfg.vpcs[1].log_group: []})
    traffic = traffic_for(cfg, window)
    stats = InsightsEngine(logs, sleep=lambda s: None, deadline_seconds=1e9, **engine_options).run(window, traffic)
    raw = traffic_for(cfg, window)
    for t, text in timed:
        raw["VPC-A"].add_line(text, t)
    return stats, traffic["VPC-A"].report(), raw["VPC-A"].report()


def test_a_small_hour_is_read_as_flow_tuples_in_two_scans() -> None:
    stats, insights, raw = evaluated(list(itertools.islice(flowdata.normal(5_000), 5_000)))
    assert stats["plan"]["VPC-A"] == "flows" and stats["scans"]["VPC-A"] == 2
    assert stats["plan"]["VPC-B"] == "empty" and stats["scans"]["VPC-B"] == 1
    assert set(differences(insights, raw)) == set() and "approximate" not in insights


def test_a_bigger_hour_is_exact_in_three_scans_and_flags_its_evidence() -> None:
    lines = list(itertools.islice(flowdata.normal(12_000), 12_000))
    stats, insights, raw = evaluated(lines)
    assert stats["plan"]["VPC-A"] == "sources" and stats["scans"]["VPC-A"] == 3
    assert raw["total_requests"] > plan.ROW_LIMIT
    # Every headline field is exact; each difference in the evidence is named and explained.
    assert set(differences(insights, raw)) <= set(insights["approximate"]) | {"evidence.unexpected_ports"}
    assert "evidence.unexpected_ports.top_sources" in insights["approximate"]
    assert {port: d["count"] for port, d in insights["evidence"]["unexpected_ports"].items()} == {
        port: d["count"] for port, d in raw["evidence"]["unexpected_ports"].items()}


def test_a_port_scan_hour_reads_the_sources_of_its_unexpected_ports() -> None:
    scan = list(itertools.islice(flowdata.port_scan(9_000, sources=40), 9_000))
    normal = list(itertools.islice(flowdata.normal(3_000), 3_000))
    stats, insights, raw = evaluated(scan + normal, evidence_min_count=1)
    assert stats["plan"]["VPC-A"] == "sources" and stats["scans"]["VPC-A"] == 4
    assert raw["evidence"]["scan_candidates"] and raw["evidence"]["unexpected_ports"]
    for a, b in zip(insights["evidence"]["scan_candidates"], raw["evidence"]["scan_candidates"], strict=True):
        assert a == {**b, "sample_ports": []}
    assert insights["evidence"]["unexpected_ports"] == raw["evidence"]["unexpected_ports"]
    assert set(differences(insights, raw)) == {"evidence.scan_candidates"}
    assert set(insights["approximate"]) == {"evidence.scan_candidates"}


def test_sources_beyond_the_row_limit_are_flagged_with_their_bound() -> None:
    rows = [[{"field": "srcAddr", "value": f"198.51.{i // 250}.{i % 250}"}, {"field": "records", "value": str(20_000 - i)},
             *({"field": c, "value": "0"} for c in ("rejected", "unsolicited", "portRecords", "portRejects", "talks")),
             {"field": "scanPorts", "value": "1"}, {"field": "scanHosts", "value": "1"}]
            for i in range(plan.ROW_LIMIT)]
    decoded = plan.decode_sources(rows)
    assert not decoded.complete and decoded.floor == 20_000 - plan.ROW_LIMIT + 1
    assert decoded.widths == {}  # the marker value (no probe) is taken off


@pytest.mark.parametrize("bad", ["-1", "2.5", "x"])
def test_counts_that_are_not_whole_numbers_are_refused(bad: str) -> None:
    from lambda_pkg.errors import InconsistentResultError

    with pytest.raises(InconsistentResultError, match="not a"):
        plan.integer({"records": bad}, "records")
