"""Learned hourly baselines (lambda_pkg/baseline.py) and the volume rules that use them.

The seasonal acceptance runs the real traffic model: 192 hours of the embedded default's normal
traffic with a quiet-hour surge, counted per VPC log as the analyzer counts them, judged hour by
hour in order with each hour learning from the ones before it (as traffic_analysis does)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from lambda_pkg import baseline
from lambda_pkg.detect import detect_anomalies, traffic_drop, traffic_spike
from lambda_pkg.settings import Thresholds, config_from_env
from lambda_pkg.errors import InvalidAnalyzerConfig
from tests.analyzer_env import ENV

HOUR = timedelta(hours=1)
START = datetime(2026, 3, 2, tzinfo=timezone.utc)  # a Monday
LEARNED, STATIC = Thresholds(), Thresholds(baseline="static")


def series(values_by_day: list[float], hour_of_day: int = 3, day0: datetime = START) -> dict[int, float]:
    return {baseline.hour_key(day0 + timedelta(days=d, hours=hour_of_day)): v for d, v in enumerate(values_by_day)}


def vpc(requests: int, bands: dict | None = None, complete: bool = True) -> dict:
    report = {"vpc": "VPC-A", "total_requests": requests, "top_source_ips": [], "coverage": {"complete": complete}}
    if bands is not None:
        report["baseline"] = {"total_requests": bands}
    return report


def test_the_band_is_the_median_of_the_same_hour_with_a_robust_spread() -> None:
    history = series([300, 290, 310, 295, 1000])  # one outlier day: the median and MAD ignore it
    hour = baseline.hour_key(START + timedelta(days=5, hours=3))
    band = baseline.band("total_requests", history, hour, LEARNED)
    assert band["method"] == "learned" and band["basis"] == "hour of day" and band["samples"] == 5
    assert band["expected"] == 300
    # MAD 10 -> 14.8; the floor of 10 % of the median (30) wins; 3 spreads either side.
    assert band["spread"] == 30 and (band["low"], band["high"]) == (210, 390)


def test_other_hours_of_the_day_are_not_samples() -> None:
    history = {**series([300] * 5, hour_of_day=3), **series([900] * 5, hour_of_day=4)}
    band = baseline.band("total_requests", history, baseline.hour_key(START + timedelta(days=5, hours=3)), LEARNED)
    assert band["expected"] == 300 and band["samples"] == 5


def test_with_enough_weeks_the_same_hour_of_the_week_is_used() -> None:
    t = Thresholds(baseline_days=28, baseline_min_days=3)
    history = series([100 if d % 7 == 0 else 500 for d in range(28)])  # Mondays are quiet
    monday = baseline.hour_key(START + timedelta(days=28, hours=3))
    band = baseline.band("total_requests", history, monday, t)
    assert band["basis"] == "hour of week" and band["expected"] == 100 and band["samples"] == 4


def test_until_enough_days_are_seen_the_constant_stands_in() -> None:
    history = series([300, 290])
    band = baseline.band("total_requests", history, baseline.hour_key(START + timedelta(days=2, hours=3)), LEARNED)
    assert band == {"method": "static", "expected": 417.0, "low": None, "high": 417 * 1.2,
                    "reason": "learning: 2 of 3 days of this hour seen"}
    assert baseline.band("rejected_connections", {}, 0, LEARNED)["high"] is None


def test_static_ignores_any_history() -> None:
    band = baseline.band("total_requests", series([300] * 10), baseline.hour_key(START + timedelta(days=10, hours=3)),
                         STATIC)
    assert band["method"] == "static" and band["high"] == 417 * 1.2 and band["reason"] == "baseline: static"


def test_static_reproduces_the_reference_rule_exactly() -> None:
    band = baseline.static_band("total_requests", STATIC, "baseline: static")
    assert traffic_spike(vpc(500, band), STATIC) == []  # 500 <= 417 * 1.2 = 500.4
    [spike] = traffic_spike(vpc(501, band), STATIC)
    assert spike["severity"] == "high" and spike["evidence"]["threshold"] == 417 * 1.2
    assert traffic_drop(vpc(0, band), STATIC) == []  # the reference has no lower bound


def test_severity_grows_with_the_deviation() -> None:
    band = {"method": "learned", "basis": "hour of day", "samples": 5, "expected": 300.0, "low": 210.0,
            "high": 390.0, "spread": 30.0}
    assert traffic_spike(vpc(390, band), LEARNED) == []
    assert traffic_spike(vpc(391, band), LEARNED)[0]["severity"] == "medium"
    assert traffic_spike(vpc(480, band), LEARNED)[0]["severity"] == "high"  # 6 spreads above
    assert traffic_drop(vpc(210, band), LEARNED) == []
    [drop] = traffic_drop(vpc(200, band), LEARNED)
    assert drop["type"] == "traffic_drop" and drop["severity"] == "medium" and drop["evidence"]["threshold"] == 210
    assert traffic_drop(vpc(0, band), LEARNED)[0]["severity"] == "high"
    assert traffic_drop(vpc(0, band, complete=False), LEARNED) == []  # blind, not quiet: flow_logs_silent says so


def test_an_hour_the_flow_log_did_not_cover_is_not_learned() -> None:
    history: baseline.History = {}
    report = {"window": {"start": "2026-03-02T03:00:00Z"},
              "vpcs": {"VPC-A": {"total_requests": 0, "rejected_connections": 0, "external_traffic_count": 0,
                                 "coverage": {"complete": False}},
                       "VPC-B": {"total_requests": 300, "rejected_connections": 2, "external_traffic_count": 1,
                                 "coverage": {"complete": True}}}}
    baseline.learn(history, report)
    assert ("VPC-A", "total_requests") not in history
    assert history[("VPC-B", "total_requests")] == {baseline.hour_key(START + 3 * HOUR): 300.0}


@pytest.mark.parametrize(("name", "value"), [("BASELINE", "seasonal"), ("BASELINE_DAYS", "0"),
                                             ("BASELINE_MIN_DAYS", "1"), ("BASELINE_BAND_SIGMAS", "0"),
                                             ("BASELINE_MIN_SPREAD_PERCENT", "nan")])
def test_bad_baseline_settings_are_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(InvalidAnalyzerConfig, match=name):
        config_from_env({**ENV, name: value})


def test_more_days_needed_than_read_is_refused() -> None:
    with pytest.raises(InvalidAnalyzerConfig, match="BASELINE_MIN_DAYS: 9 is more than BASELINE_DAYS"):
        config_from_env({**ENV, "BASELINE_DAYS": "7", "BASELINE_MIN_DAYS": "9"})


# -- the acceptance, on the real traffic model --------------------------------------------


def _model_hours(hours: int, surge_at: datetime | None):
    """Requests per VPC log per hour, as the raw engine counts them (records with status OK)."""
    from vpcpeer_orchestration.local.scenarios import SCENARIOS
    from tests.unit.test_traffic_model import model as make_model

    model = make_model()
    first = START + timedelta(days=1)
    counts = {}
    for i in range(hours):
        hour = first + i * HOUR
        events = model.normal_hour(hour)
        if hour == surge_at:
            events += SCENARIOS["quiet-hour-surge"].events(model, hour)
        per_log = {model.a.log_group: 0, model.b.log_group: 0}
        for event in events:
            if event.message.endswith(" OK"):
                per_log[event.log_group] += 1
        counts[hour] = {"VPC-A": per_log[model.a.log_group], "VPC-B": per_log[model.b.log_group]}
    return counts


def _judge(counts: dict, t: Thresholds) -> dict[datetime, list[dict]]:
    history: baseline.History = {}
    found = {}
    for hour, requests in sorted(counts.items()):
        report = {"window": {"start": hour.isoformat().replace("+00:00", "Z")},
                  "vpcs": {label: {"vpc": label, "total_requests": n, "rejected_connections": 0,
                                   "external_traffic_count": 0, "top_source_ips": [], "coverage": {"complete": True},
                                   "evidence": {"unexpected_ports": {}, "unexpected_ports_to_peer": {},
                                                "unsolicited_external": {"count": 0}, "scan_candidates": [],
                                                "rejections": {}},
                                   "allowed_ports": [], "peer_allowed_ports": [], "peer": "VPC-B"}
                           for label, n in requests.items()}}
        baseline.attach(report, history, t)
        baseline.learn(history, report)
        found[hour] = [a for a in detect_anomalies(report["vpcs"], t) if a["type"] in ("traffic_spike", "traffic_drop")]
    return found


def test_a_quiet_hour_surge_is_flagged_by_the_learned_baseline_only() -> None:
    from vpcpeer_orchestration.local.scenarios import quietest_hour_of_last_day

    hours = 192
    last = START + timedelta(days=1) + (hours - 1) * HOUR
    surge = quietest_hour_of_last_day(last)
    counts = _model_hours(hours, surge)
    assert all(n < STATIC.spike_threshold for n in counts[surge].values())  # under the constant
    assert all(n > 1.5 * min(c["VPC-A"] for c in counts.values()) for n in counts[surge].values())

    learned = _judge(counts, LEARNED)
    assert {a["vpc"] for a in learned[surge]} == {"VPC-A", "VPC-B"}
    assert all(a["type"] == "traffic_spike" for a in learned[surge])
    assert [h for h, found in learned.items() if found and h != surge] == []
    assert _judge(counts, STATIC) == {h: [] for h in counts}


def test_an_alert_subject_and_its_body_agree_on_the_severity() -> None:
    """The severity of a learned spike depends on its deviation: the subject and the body's
    severity group both say the anomaly's own severity, one message per anomaly."""
    from lambda_pkg.delivery import anomaly_alerts

    band = {"method": "learned", "basis": "hour of day", "samples": 5, "expected": 300.0, "low": 210.0,
            "high": 390.0, "spread": 30.0}
    found = [*traffic_spike(vpc(400, band), LEARNED), *traffic_spike({**vpc(700, band), "vpc": "VPC-B"}, LEARNED)]
    assert [a["severity"] for a in found] == ["medium", "high"]
    report = {"window": {"start": "2026-03-02T03:00:00Z", "end": "2026-03-02T04:00:00Z"}, "vpcs": {}}
    for alert, anomaly in zip(anomaly_alerts("dev", report, found, {"source": "test"}), found):
        severity = anomaly["severity"].upper()
        assert alert.message.subject.startswith(f"vpcpeer: {severity} traffic_spike on {anomaly['vpc']}")
        assert f"{severity} SEVERITY (1)" in alert.message.body
        assert ("HIGH SEVERITY" in alert.message.body) == (severity == "HIGH")
