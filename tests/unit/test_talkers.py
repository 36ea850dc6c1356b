"""New talkers (lambda_pkg/talkers.py) and the ``new_talker`` rule.

The acceptance runs the real traffic model through the real aggregation: eight days of the
embedded default's normal population with one new VPC-B host in the last day, judged hour by
hour in order with each hour learning from the ones before it (as traffic_analysis does)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from lambda_pkg import talkers
from lambda_pkg.aggregate import TALKERS_LISTED, traffic_for
from lambda_pkg.analysis import build_report
from lambda_pkg.detect import NEW_TALKERS_LISTED, detect_anomalies
from lambda_pkg.window import Window
from tests.analyzer_env import config

HOUR = timedelta(hours=1)
START = datetime(2026, 3, 2, tzinfo=timezone.utc)
H0 = int(START.timestamp()) // 3600
DAYS = 7


def seen(a_hosts=(), b_hosts=(), a_ports=()) -> talkers.Seen:
    return {"VPC-A": {"hosts": {h: 5 for h in a_hosts}, "ports": {p: 5 for p in a_ports}},
            "VPC-B": {"hosts": {h: 5 for h in b_hosts}, "ports": {}}}


def new_values(verdicts: dict, label: str) -> list[str]:
    return [n["value"] for n in verdicts[label]["new"]]


def test_talkers_belong_to_the_vpc_of_their_address_and_count_the_larger_log() -> None:
    report = {"vpcs": {
        "VPC-A": {"cidr": "10.0.0.0/16", "talkers": {"hosts": {"10.0.1.5": 7, "10.1.1.9": 3}, "ports": {"443": 4}}},
        "VPC-B": {"cidr": "10.1.0.0/16", "talkers": {"hosts": {"10.0.1.5": 6, "10.1.1.9": 4}, "ports": {}}},
    }}
    assert talkers.observed(report) == {"VPC-A": {"hosts": {"10.0.1.5": 7}, "ports": {"443": 4}},
                                        "VPC-B": {"hosts": {"10.1.1.9": 4}, "ports": {}}}


def test_the_first_days_only_learn_then_only_the_unseen_are_new() -> None:
    state: talkers.State = {}
    normal = seen(a_hosts=["10.0.1.5"], b_hosts=["10.1.1.9"], a_ports=["443"])
    for h in range(DAYS * 24):
        verdicts = talkers.judge(state, normal, H0 + h, DAYS)
        assert all(v["learning"] and not v["new"] for v in verdicts.values()), h
        talkers.learn(state, normal, H0 + h, DAYS)
    after = H0 + DAYS * 24
    assert talkers.judge(state, normal, after, DAYS) == {
        label: {"learning": False, "learning_until": after, "new": []} for label in ("VPC-A", "VPC-B")}
    fresh = seen(a_hosts=["10.0.1.5"], b_hosts=["10.1.1.9", "10.1.1.200"], a_ports=["443", "8080"])
    verdicts = talkers.judge(state, fresh, after, DAYS)
    assert new_values(verdicts, "VPC-B") == ["10.1.1.200"]
    assert new_values(verdicts, "VPC-A") == ["8080"]


def test_an_hour_judged_again_finds_the_same_talkers_new_and_the_next_hour_knows_them() -> None:
    state: talkers.State = {}
    hour = H0 + DAYS * 24 + 5
    for h in (H0, hour - 1):
        talkers.learn(state, seen(b_hosts=["10.1.1.9"]), h, DAYS)
    fresh = seen(b_hosts=["10.1.1.9", "10.1.1.200"])
    first = talkers.judge(state, fresh, hour, DAYS)
    talkers.learn(state, fresh, hour, DAYS)
    assert talkers.judge(state, fresh, hour, DAYS) == first  # a retry of the same hour
    assert new_values(first, "VPC-B") == ["10.1.1.200"]
    assert new_values(talkers.judge(state, fresh, hour + 1, DAYS), "VPC-B") == []


def test_a_talker_back_after_the_window_is_new_again() -> None:
    state: talkers.State = {}
    talkers.learn(state, seen(b_hosts=["10.1.1.9", "10.1.1.10"]), H0, DAYS)
    back = H0 + DAYS * 24 + 1  # 10.1.1.9 was last seen more than DAYS days before
    talkers.learn(state, seen(b_hosts=["10.1.1.10"]), back - 2, DAYS)
    verdicts = talkers.judge(state, seen(b_hosts=["10.1.1.9", "10.1.1.10"]), back, DAYS)
    assert new_values(verdicts, "VPC-B") == ["10.1.1.9"]


def test_the_state_stays_bounded_whatever_a_sweep_of_addresses_does() -> None:
    state: talkers.State = {}
    for h in range(20):
        sweep = seen(b_hosts=[f"10.1.{h}.{i % 250}" for i in range(h * 250, h * 250 + 250)],
                     a_ports=[str(p) for p in range(h * 100, h * 100 + 100)])
        talkers.learn(state, sweep, H0 + h, DAYS)
    assert len(state["VPC-B"]["hosts"]) == talkers.TALKER_HOSTS_KEPT
    assert len(state["VPC-A"]["ports"]) == talkers.TALKER_PORTS_KEPT
    # The most recently seen are the ones kept.
    assert "10.1.19.0" in state["VPC-B"]["hosts"] and "10.1.0.0" not in state["VPC-B"]["hosts"]
    size = len(talkers.json.dumps(state, separators=(",", ":")))
    assert size < 200_000  # the item stays far under DynamoDB's 400 KB


def test_many_new_talkers_are_ten_alerts_and_one_for_the_rest() -> None:
    t = config().thresholds
    new = [{"kind": "host", "value": f"10.1.1.{i}", "flows": 100 - i} for i in range(25)]
    vpc = {"vpc": "VPC-B", "new_talkers": {"learning": False, "new": new}}
    from lambda_pkg.detect import new_talkers

    found = new_talkers(vpc, t)
    assert len(found) == NEW_TALKERS_LISTED + 1
    assert [a["key"] for a in found[:2]] == ["new_talker:VPC-B:host:10.1.1.0", "new_talker:VPC-B:host:10.1.1.1"]
    assert found[-1]["evidence"]["talkers"] == 15 and found[-1]["key"] == "new_talker:VPC-B:others"
    assert all(a["severity"] == "medium" for a in found)


# -- the acceptance, on the real traffic model and the real aggregation --------------------


def _reports(hours: int, new_host_at: datetime):
    from tests.unit.test_traffic_model import model as make_model
    from vpcpeer_orchestration.local.scenarios import SCENARIOS

    cfg = config()
    model = make_model()
    for i in range(hours):
        hour = START + i * HOUR
        window = Window(hour, hour + HOUR)
        events = model.normal_hour(hour)
        if hour == new_host_at:
            events += SCENARIOS["new-talker"].events(model, hour)
        traffic = traffic_for(cfg, window)
        for label, spec in zip(traffic, cfg.vpcs):
            agg = traffic[label]
            for event in events:
                if event.log_group == spec.log_group:
                    agg.add_line(event.message, event.timestamp_ms)
        yield hour, cfg, window, {label: agg.report() for label, agg in traffic.items()}


def test_a_new_host_is_reported_once_and_the_normal_population_never() -> None:
    from tests.unit.test_traffic_model import model as make_model
    from vpcpeer_orchestration.local.scenarios import new_host

    hours = 8 * 24
    at = START + (hours - 6) * HOUR
    host = new_host(make_model().b)
    state: talkers.State = {}
    found = {}
    for hour, cfg, window, vpcs in _reports(hours, at):
        report = build_report(cfg, window, "raw", {}, vpcs, known_talkers=state)
        found[hour] = [a for a in report["anomalies"] if a["type"] == "new_talker"]
        assert len(report["vpcs"]["VPC-A"]["talkers"]["hosts"]) <= TALKERS_LISTED
    assert {h: f for h, f in found.items() if f} == {at: found[at]}
    [anomaly] = found[at]
    assert (anomaly["vpc"], anomaly["evidence"]["value"]) == ("VPC-B", host)
    assert host in anomaly["description"]
    assert detect_anomalies(report["vpcs"], cfg.thresholds) == report["anomalies"]  # pure over the report
