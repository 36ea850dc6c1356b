"""Anomaly rules on aggregated reports."""

from __future__ import annotations

from datetime import datetime, timezone

from lambda_pkg.aggregate import traffic_for
from lambda_pkg.detect import detect_anomalies
from lambda_pkg.window import Window
from tests.analyzer_env import config
from tests.flowgen import v2_line

WINDOW = Window(datetime(2026, 1, 1, 10, tzinfo=timezone.utc), datetime(2026, 1, 1, 11, tzinfo=timezone.utc))
IN = WINDOW.start_ms + 5


def anomalies(lines_a: list[str], lines_b: list[str] = (), **env: str) -> list[dict]:
    cfg = config(**env)
    traffic = traffic_for(cfg, WINDOW)
    for line in lines_a:
        traffic["VPC-A"].add_line(line, IN)
    for line in lines_b:
        traffic["VPC-B"].add_line(line, IN)
    return detect_anomalies({k: v.report() for k, v in traffic.items()}, cfg.thresholds)


def normal(n: int) -> list[str]:
    return [v2_line(f"10.1.1.{i % 50 + 1}", f"10.0.10.{i % 20 + 1}", 40000 + i, (443, 8080)[i % 2]) for i in range(n)]


def test_normal_traffic_has_no_anomaly() -> None:
    assert anomalies(normal(400), [v2_line("10.0.1.5", "10.1.10.3", 40000 + i, 3306) for i in range(300)]) == []


def test_spike_above_baseline_plus_threshold() -> None:
    assert anomalies(normal(500)) == []  # 500 <= 417 * 1.2
    found = anomalies(normal(501))
    assert [(a["type"], a["vpc"], a["severity"]) for a in found] == [("traffic_spike", "VPC-A", "high")]
    assert found[0]["evidence"]["threshold"] == 417 * 1.2


def test_learned_baseline_is_an_input() -> None:
    assert anomalies(normal(150), TRAFFIC_BASELINE="100", ANOMALY_THRESHOLD="0.5")[0]["type"] == "traffic_spike"


def test_unexpected_port_per_direction_with_evidence() -> None:
    into_a = [v2_line("10.1.1.9", "10.0.10.4", 40000 + i, 3306) for i in range(12)]
    found = anomalies(into_a)
    assert [(a["type"], a["vpc"], a["evidence"]["port"]) for a in found] == [("unexpected_port", "VPC-A", 3306)]
    assert found[0]["evidence"]["top_sources"] == [["10.1.1.9", 12]]
    assert anomalies([], [v2_line("10.0.1.9", "10.1.10.4", 40000 + i, 3306) for i in range(12)]) == []


def test_replies_to_ephemeral_ports_are_not_unexpected() -> None:
    replies = [v2_line("10.1.10.4", "10.0.1.9", 3306, 40000 + i) for i in range(50)]
    assert anomalies(replies) == []


def test_external_source_hitting_a_private_host() -> None:
    hits = [v2_line(f"203.0.113.{i % 5 + 1}", "10.0.10.4", 50000 + i, 22, action="REJECT") for i in range(60)]
    kinds = {a["type"] for a in anomalies(hits)}
    assert "external_traffic" in kinds
    nat_replies = [v2_line("198.51.100.7", "10.0.10.4", 443, 50000 + i) for i in range(200)]
    assert anomalies(nat_replies) == []


def test_high_rejections() -> None:
    rejects = [v2_line(f"10.1.1.{i % 40 + 1}", "10.0.10.4", 40000 + i, 443, action="REJECT") for i in range(101)]
    assert [a["type"] for a in anomalies(rejects)] == ["high_rejections"]


def test_port_scan_from_one_source() -> None:
    scan = [v2_line("10.1.2.66", "10.0.10.4", 40000, port, action="REJECT") for port in range(1, 40)]
    found = anomalies(scan)
    scans = [a for a in found if a["type"] == "port_scan"]
    assert len(scans) == 1 and scans[0]["evidence"]["source"] == "10.1.2.66"
    assert scans[0]["severity"] == "high" and scans[0]["evidence"]["distinct_ports"] == 39
    assert found[0]["type"] == "port_scan"  # high severity sorts first


def test_many_ports_mostly_accepted_is_not_a_scan() -> None:
    busy = [v2_line("10.1.2.66", f"10.0.10.{port % 30 + 1}", 40000, 443) for port in range(1, 40)]
    assert not [a for a in anomalies(busy) if a["type"] == "port_scan"]


def test_anomaly_keys_identify_the_condition() -> None:
    found = anomalies([v2_line("10.1.1.9", "10.0.10.4", 40000 + i, 3306) for i in range(12)])
    assert found[0]["key"] == "unexpected_port:VPC-A:3306"
