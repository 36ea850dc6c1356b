"""Streaming aggregation: exact counts on hand-checked inputs."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from lambda_pkg.aggregate import traffic_for
from lambda_pkg.records import FlowRecord
from lambda_pkg.window import Window
from tests.analyzer_env import config
from tests.flowgen import nodata_line, v2_line

WINDOW = Window(datetime(2026, 1, 1, 10, tzinfo=timezone.utc), datetime(2026, 1, 1, 11, tzinfo=timezone.utc))
IN = WINDOW.start_ms + 1000


def vpc_a(lines: list[tuple[str, int]], **env: str) -> dict:
    traffic = traffic_for(config(**env), WINDOW)["VPC-A"]
    for line, ts in lines:
        traffic.add_line(line, ts)
    return traffic.report()


def test_counts_sources_ports_and_rejects() -> None:
    report = vpc_a([
        (v2_line("10.1.1.5", "10.0.10.7", 50000, 443, nbytes=100, packets=2), IN),
        (v2_line("10.1.1.5", "10.0.10.8", 50001, 8080, nbytes=200, packets=3), IN),
        (v2_line("10.1.1.6", "10.0.10.7", 50002, 22, nbytes=40, packets=1, action="REJECT"), IN),
        (v2_line("10.1.1.6", "10.0.10.7", 50003, 22, nbytes=40, packets=1, action="REJECT"), IN),
        (v2_line("10.1.1.7", "10.0.10.7", 50004, 443, nbytes=10, packets=1), IN),
    ])
    assert report["total_requests"] == 5
    assert report["total_bytes"] == 390 and report["total_packets"] == 8
    assert report["unique_sources"] == 3 and report["unique_destinations"] == 2
    assert report["rejected_connections"] == 2 and report["accepted_connections"] == 3
    assert report["top_source_ips"] == [["10.1.1.5", 2], ["10.1.1.6", 2], ["10.1.1.7", 1]]
    assert report["port_breakdown"] == {"22": 2, "443": 2, "8080": 1}
    assert report["external_traffic_count"] == 0


def test_top_sources_tie_break_is_ip_as_text_and_capped_at_ten() -> None:
    lines = [(v2_line(f"10.1.1.{i}", "10.0.1.1", 50000, 443), IN) for i in range(1, 13)]
    lines += [(v2_line("10.1.1.9", "10.0.1.1", 50000, 443), IN)]
    top = vpc_a(lines)["top_source_ips"]
    assert top[0] == ["10.1.1.9", 2]
    assert [ip for ip, _ in top[1:]] == sorted(f"10.1.1.{i}" for i in range(1, 13) if i != 9)[:9]
    assert len(top) == 10


def test_window_is_half_open_on_event_time() -> None:
    line = v2_line("10.1.1.5", "10.0.1.1", 50000, 443)
    report = vpc_a([(line, WINDOW.start_ms), (line, WINDOW.end_ms - 1), (line, WINDOW.end_ms), (line, WINDOW.start_ms - 1)])
    assert report["total_requests"] == 2
    assert report["out_of_window_records"] == 2


def test_nodata_skipdata_and_malformed_are_counted_but_never_traffic() -> None:
    report = vpc_a([
        (nodata_line(), IN), (nodata_line("SKIPDATA"), IN), ("garbage", IN), ("", IN),
        (v2_line("10.1.1.5", "10.0.1.1", 50000, 443), IN),
    ])
    assert report["total_requests"] == 1
    assert report["records_by_status"] == {"NODATA": 1, "OK": 1, "SKIPDATA": 1}
    assert report["malformed_records"] == {"empty": 1, "field_count": 1}


def test_external_is_real_cidr_membership_against_both_vpcs() -> None:
    env = {"VPC_A_CIDR": "172.16.0.0/20", "VPC_B_CIDR": "192.168.0.0/16"}
    report = vpc_a([
        (v2_line("172.16.15.1", "172.16.1.1", 50000, 443), IN),   # VPC-A (inside /20)
        (v2_line("172.16.16.1", "172.16.1.1", 50000, 443), IN),   # just outside the /20: external
        (v2_line("192.168.200.1", "172.16.1.1", 50000, 443), IN), # VPC-B
        (v2_line("10.0.0.5", "172.16.1.1", 50000, 443), IN),      # the reference's "internal" prefix: external here
        (v2_line("2001:db8::1", "2001:db8::2", 50000, 443), IN),  # IPv6: in neither CIDR, so external
    ], **env)
    assert report["external_traffic_count"] == 3
    assert report["ipv6_requests"] == 1


def test_unsolicited_ipv6_is_external_traffic_for_the_rule() -> None:
    """The stack gives neither VPC IPv6 addresses: IPv6 flows come from outside, and those that
    are not replies feed the external-traffic rule as IPv4 ones from the internet do."""
    report = vpc_a([(v2_line(f"2001:db8::{i:x}", "2001:db8:ffff::1", 50000, 22), IN) for i in range(1, 61)]
                   + [(v2_line("2001:db8::1", "2001:db8:ffff::1", 443, 50000), IN)])  # a reply
    assert report["external_traffic_count"] == 61 and report["ipv6_requests"] == 61
    assert report["evidence"]["unsolicited_external"]["count"] == 60
    from lambda_pkg.detect import external_traffic
    from lambda_pkg.settings import Thresholds
    assert [a["type"] for a in external_traffic(report, Thresholds())] == ["external_traffic"]


def test_weighted_rows_equal_repeated_records() -> None:
    cfg = config()
    once = traffic_for(cfg, WINDOW)["VPC-A"]
    rec = FlowRecord("OK", "10.1.1.5", "10.0.1.1", 50000, 22, 6, 3, 300, "REJECT", 4)
    once.add(rec, weight=4)
    repeated = traffic_for(cfg, WINDOW)["VPC-A"]
    for _ in range(4):
        repeated.add(FlowRecord("OK", "10.1.1.5", "10.0.1.1", 50000, 22, 6, 0, 0, "REJECT", 4))
    a, b = once.report(), repeated.report()
    for key in ("total_requests", "rejected_connections", "top_source_ips", "port_breakdown", "unique_sources"):
        assert a[key] == b[key]
    assert a["total_bytes"] == 300 and a["evidence"]["unexpected_ports"]["22"]["count"] == 4


@pytest.mark.parametrize(
    ("src", "dst", "sport", "dport", "proto", "unexpected"),
    [
        ("10.1.1.5", "10.0.1.1", 50000, 3306, 6, True),    # 3306 is allowed into VPC-B, not VPC-A
        ("10.1.1.5", "10.0.1.1", 50000, 8080, 6, False),   # allowed into VPC-A
        ("10.1.1.5", "10.0.1.1", 443, 50000, 6, False),    # reply from an allowed peer port
        ("10.1.1.5", "10.0.1.1", 3306, 41000, 6, False),   # reply from VPC-B's database port
        ("10.1.1.5", "10.0.1.1", 0, 0, 1, False),          # ICMP has no ports
        ("10.0.1.2", "10.0.1.1", 50000, 22, 6, False),     # inside VPC-A: not crossing anything
        ("10.0.1.1", "10.1.1.5", 50000, 22, 6, False),     # leaving VPC-A: VPC-B's concern
    ],
)
def test_unexpected_ports_follow_the_direction_and_skip_replies(src, dst, sport, dport, proto, unexpected) -> None:
    report = vpc_a([(v2_line(src, dst, sport, dport, proto=proto), IN)])
    assert (str(dport) in report["evidence"]["unexpected_ports"]) is unexpected


def test_a_scan_wider_than_the_evidence_budget_keeps_exact_headlines(monkeypatch) -> None:
    """Adversary-chosen cardinality: the evidence tables stop at their budget and say so; the
    headline counts, the port breakdown and the scan's widest source stay exact."""
    import lambda_pkg.aggregate as aggregate

    monkeypatch.setattr(aggregate, "EVIDENCE_ENTRIES", 500)
    lines = [(v2_line(f"198.51.100.{i % 20 + 1}", f"10.0.1.{i % 7 + 1}", 40000, port, action="REJECT"), IN)
             for i, port in enumerate(range(1, 3001))]
    report = vpc_a(lines)
    assert report["total_requests"] == 3000 and report["rejected_connections"] == 3000
    assert report["unique_sources"] == 20 and len(report["port_breakdown"]) == 3000
    evidence = report["evidence"]
    assert set(evidence["truncated"]) >= {"scan_ports", "unexpected_ports"}
    assert len(evidence["unexpected_ports"]) == aggregate.EVIDENCE_PORTS + 1  # the busiest, then the rest summed
    other = evidence["unexpected_ports"][aggregate.OTHER_PORTS]
    assert other["ports"] == 2999 - aggregate.EVIDENCE_PORTS  # 443 is VPC-A's own
    assert sum(p["count"] for k, p in evidence["unexpected_ports"].items() if k != aggregate.OTHER_PORTS) + other["count"] == 2999
    assert all(c["distinct_ports"] >= aggregate.SCAN_CANDIDATE_MIN for c in evidence["scan_candidates"])
    assert {c["records"] for c in evidence["scan_candidates"]} == {150}  # per source, exact


def test_merged_parts_respect_the_evidence_budget(monkeypatch) -> None:
    """Parts read apart and merged: the budget holds across the merge, headlines add up exactly."""
    import lambda_pkg.aggregate as aggregate

    monkeypatch.setattr(aggregate, "EVIDENCE_ENTRIES", 700)
    lines = [(v2_line(f"198.51.100.{i % 20 + 1}", f"10.0.1.{i % 7 + 1}", 40000, port, action="REJECT"), IN)
             for i, port in enumerate(range(1, 3001))]
    parts = []
    for chunk in (lines[:1000], lines[1000:]):
        part = traffic_for(config(), WINDOW)["VPC-A"]
        for line, ts in chunk:
            part.add_line(line, ts)
        parts.append(part.settle())
    total, other = parts
    total.merge(other)
    entries = (sum(map(len, total._scan_ports.values())) + sum(map(len, total._scan_hosts.values()))
               + sum(map(len, total._unexpected.values())) + sum(map(len, total._to_peer.values())))
    assert entries == 700 and total._room == 0
    report = total.report()
    assert report["total_requests"] == 3000 and len(report["port_breakdown"]) == 3000
    assert set(report["evidence"]["truncated"]) >= {"scan_ports"}
    assert {c["records"] for c in report["evidence"]["scan_candidates"]} == {150}
