"""The pure traffic model and the scenario generators, on a topology built by hand."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from lambda_pkg.constants import DEFAULT_TRAFFIC_BASELINE, FLOW_LOG_V2_FIELDS, VPC_A, VPC_B
from vpcpeer_orchestration.local import scenarios
from vpcpeer_orchestration.local.traffic_model import (
    AGGREGATION_SECONDS,
    Event,
    FlowLogEmulatorError,
    Rule,
    TrafficModel,
    VpcSide,
    diurnal,
    eni_id,
    hosts_in_subnet,
)

ACCOUNT = "123456789012"
A_NET, B_NET = ipaddress.ip_network("10.0.0.0/16"), ipaddress.ip_network("10.1.0.0/16")
A_LOG, B_LOG = "/aws/vpc/flowlogs/test/vpc-a", "/aws/vpc/flowlogs/test/vpc-b"
HOUR = datetime(2024, 5, 1, 14, tzinfo=timezone.utc)


def tcp_rules(peer: ipaddress.IPv4Network, ingress: tuple[int, ...], egress: tuple[int, ...]) -> list[Rule]:
    return [Rule(False, "tcp", p, p, peer) for p in ingress] + [Rule(True, "tcp", p, p, peer) for p in egress]


def side(label: str, net: ipaddress.IPv4Network, log_group: str, ports: tuple[int, ...], rules: list[Rule]) -> VpcSide:
    base = str(net.network_address).rsplit(".", 2)[0]
    return VpcSide(
        label=label, vpc_id=f"vpc-{label.lower()}", cidr=net, log_group=log_group,
        private_hosts=[h for c in (f"{base}.1.0/24", f"{base}.2.0/24") for h in hosts_in_subnet(c, label)],
        public_hosts=[h for c in (f"{base}.10.0/24", f"{base}.11.0/24") for h in hosts_in_subnet(c, label)],
        service_ports=ports, rules=rules,
    )


def vpc_a(ingress: tuple[int, ...] = (443, 8080)) -> VpcSide:
    return side(VPC_A, A_NET, A_LOG, (443, 8080), tcp_rules(B_NET, ingress, (443, 3306)))


def vpc_b() -> VpcSide:
    return side(VPC_B, B_NET, B_LOG, (443, 3306), tcp_rules(A_NET, (443, 3306), (443, 8080)))


def model(seed: int = 42, scale: float = 1.0, a: VpcSide | None = None) -> TrafficModel:
    return TrafficModel(a or vpc_a(), vpc_b(), ACCOUNT, seed, scale)


def fields(event: Event) -> dict[str, str]:
    values = event.message.split()
    assert len(values) == len(FLOW_LOG_V2_FIELDS), event.message
    return dict(zip(FLOW_LOG_V2_FIELDS, values))


def ok_records(events: list[Event], log_group: str) -> list[dict[str, str]]:
    return [f for e in events if e.log_group == log_group for f in [fields(e)] if f["log-status"] == "OK"]


# -- the building blocks -----------------------------------------------------------------


@pytest.mark.parametrize(("rule", "peer", "protocol", "port", "expected"), [
    (Rule(False, "tcp", 443, 443, B_NET), "10.1.2.3", 6, 443, True),
    (Rule(False, "6", 443, 443, B_NET), "10.1.2.3", 6, 443, True),
    (Rule(False, "tcp", 443, 443, B_NET), "10.1.2.3", 6, 8080, False),
    (Rule(False, "tcp", 443, 443, B_NET), "10.2.0.1", 6, 443, False),
    (Rule(False, "udp", 443, 443, B_NET), "10.1.2.3", 6, 443, False),
    (Rule(False, "tcp", 1000, 2000, B_NET), "10.1.2.3", 6, 1500, True),
    (Rule(False, "-1", -1, -1, B_NET), "10.1.2.3", 17, 53, True),
    (Rule(False, "-1", -1, -1, B_NET), "192.0.2.1", 6, 22, False),
])
def test_a_rule_matches_protocol_port_range_and_peer(rule: Rule, peer: str, protocol: int, port: int,
                                                     expected: bool) -> None:
    assert rule.matches(peer, protocol, port) is expected


def test_hosts_are_deterministic_inside_the_subnet_and_clear_of_reserved_addresses() -> None:
    hosts = hosts_in_subnet("10.0.1.0/24", VPC_A)
    assert hosts == hosts_in_subnet("10.0.1.0/24", VPC_A)
    assert hosts != hosts_in_subnet("10.0.1.0/24", VPC_B)
    assert len(set(hosts)) == 3 and hosts == sorted(hosts, key=ipaddress.ip_address)
    assert all(10 <= int(h.rsplit(".", 1)[1]) <= 253 for h in hosts)


def test_an_eni_id_is_stable_per_host() -> None:
    assert eni_id("10.0.1.20") == eni_id("10.0.1.20") != eni_id("10.0.1.21")
    assert eni_id("10.0.1.20").startswith("eni-") and len(eni_id("10.0.1.20")) == 21


@pytest.mark.parametrize(("hour", "factor"), [(3, 0.7), (9, 0.9), (15, 1.1), (21, 0.9)])
def test_the_diurnal_curve_runs_from_night_to_afternoon_peak(hour: int, factor: float) -> None:
    assert diurnal(HOUR.replace(hour=hour)) == pytest.approx(factor)


# -- a normal hour -----------------------------------------------------------------------


def test_the_same_seed_and_hour_give_the_same_records() -> None:
    assert model().normal_hour(HOUR) == model().normal_hour(HOUR)


def test_another_seed_or_another_hour_gives_other_records() -> None:
    reference = [e.message for e in model(seed=42).normal_hour(HOUR)]
    assert reference != [e.message for e in model(seed=43).normal_hour(HOUR)]
    assert reference != [e.message for e in model(seed=42).normal_hour(HOUR + timedelta(hours=24))]


@pytest.mark.parametrize("hour_of_day", [3, 9, 15, 21])
@pytest.mark.parametrize("log_group", [A_LOG, B_LOG])
def test_records_per_vpc_follow_the_baseline_and_the_diurnal_curve(hour_of_day: int, log_group: str) -> None:
    hour = HOUR.replace(hour=hour_of_day)
    target = DEFAULT_TRAFFIC_BASELINE * diurnal(hour)
    count = len(ok_records(model().normal_hour(hour), log_group))
    assert abs(count - target) <= 0.06 * target + 4, (count, target)


def test_night_is_quieter_than_the_afternoon() -> None:
    night = len(model().normal_hour(HOUR.replace(hour=3)))
    afternoon = len(model().normal_hour(HOUR.replace(hour=15)))
    assert night < 0.75 * afternoon


def test_scale_multiplies_the_volume() -> None:
    full = len(ok_records(model().normal_hour(HOUR), A_LOG))
    half = len(ok_records(model(scale=0.5).normal_hour(HOUR), A_LOG))
    assert half == pytest.approx(full / 2, rel=0.1)


def test_records_are_version_2_on_their_eni_stream_and_inside_the_hour() -> None:
    start, end = int(HOUR.timestamp()), int(HOUR.timestamp()) + 3600
    for event in model().normal_hour(HOUR):
        record = fields(event)
        assert record["version"] == "2" and record["account-id"] == ACCOUNT
        assert event.stream == f"{record['interface-id']}-all"
        assert start <= int(record["start"]) and int(record["end"]) == int(record["start"]) + AGGREGATION_SECONDS
        assert start * 1000 <= event.timestamp_ms < end * 1000


def test_cross_vpc_requests_go_to_service_ports_and_replies_come_from_them() -> None:
    records = ok_records(model().normal_hour(HOUR), A_LOG)
    requests = [r for r in records if ipaddress.ip_address(r["srcaddr"]) in B_NET and int(r["dstport"]) < 32768]
    replies = [r for r in records if ipaddress.ip_address(r["dstaddr"]) in B_NET and int(r["srcport"]) in (443, 8080)]
    assert {int(r["dstport"]) for r in requests if r["action"] == "ACCEPT"} == {443, 8080}
    assert len(replies) >= 0.9 * len([r for r in requests if r["action"] == "ACCEPT"])
    assert all(32768 <= int(r["dstport"]) <= 60999 for r in replies)


def test_internet_traffic_leaves_from_private_hosts_and_is_answered() -> None:
    a = vpc_a()
    records = ok_records(model().normal_hour(HOUR), A_LOG)
    outbound = [r for r in records if not _private(r["dstaddr"])]
    assert outbound and {r["srcaddr"] for r in outbound} <= set(a.private_hosts)
    inbound = [r for r in records if not _private(r["srcaddr"])]
    assert len(inbound) == len(outbound) and all(r["action"] == "ACCEPT" for r in inbound)


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip in A_NET or ip in B_NET


def test_two_idle_interfaces_per_vpc_report_nodata() -> None:
    nodata = [e for e in model().normal_hour(HOUR) if e.message.endswith(" NODATA")]
    assert Counter(e.log_group for e in nodata) == {A_LOG: 2, B_LOG: 2}
    for event in nodata:
        record = fields(event)
        assert record["srcaddr"] == record["dstaddr"] == "-" and record["action"] == "-"


def test_a_normal_hour_has_no_rejects_into_the_allowed_ports() -> None:
    records = ok_records(model().normal_hour(HOUR), A_LOG) + ok_records(model().normal_hour(HOUR), B_LOG)
    rejected = [r for r in records if r["action"] == "REJECT"]
    assert all(int(r["dstport"]) in (22, 5432, 6379) for r in rejected)


def test_removing_the_8080_rule_into_vpc_a_turns_those_records_into_rejects() -> None:
    def actions_on_8080(a: VpcSide) -> Counter[str]:
        events = TrafficModel(a, vpc_b(), ACCOUNT, 42).normal_hour(HOUR)
        return Counter(r["action"] for r in ok_records(events, A_LOG) if r["dstport"] == "8080")

    before = actions_on_8080(vpc_a())
    after = actions_on_8080(vpc_a(ingress=(443,)))
    assert before["ACCEPT"] > 20 and before["REJECT"] == 0
    # Fewer records draw less from the hour's rng, so the later choices differ a little.
    assert after["ACCEPT"] == 0 and after["REJECT"] == pytest.approx(before["ACCEPT"], rel=0.25)


def test_a_vpc_without_service_ports_gets_no_cross_vpc_requests() -> None:
    quiet_a = dataclasses.replace(vpc_a(), service_ports=())
    records = ok_records(TrafficModel(quiet_a, vpc_b(), ACCOUNT, 42).normal_hour(HOUR), A_LOG)
    assert not [r for r in records if r["action"] == "ACCEPT" and ipaddress.ip_address(r["srcaddr"]) in B_NET
                and int(r["dstport"]) < 32768]


# -- scenarios -----------------------------------------------------------------------------


def check_port_scan(events: list[Event]) -> None:
    assert {e.log_group for e in events} == {A_LOG}
    records = [fields(e) for e in events]
    [source] = {r["srcaddr"] for r in records}
    [target] = {r["dstaddr"] for r in records}
    assert source.startswith("198.51.100.") and target in vpc_a().public_hosts
    assert len({r["dstport"] for r in records}) >= 30 and len(records) == 40
    assert {r["action"] for r in records} == {"REJECT"}


def extra_volume(times: float) -> Callable[[list[Event]], None]:
    """The check of a scenario that adds ``times`` the normal hour's records to each log."""
    def check(events: list[Event]) -> None:
        normal = model().normal_hour(HOUR)
        for log_group in (A_LOG, B_LOG):
            extra, usual = len(ok_records(events, log_group)), len(ok_records(normal, log_group))
            assert extra == pytest.approx(times * usual, rel=0.1), (log_group, extra, usual)
    return check


check_traffic_spike = extra_volume(2)


def check_external_source(events: list[Event]) -> None:
    assert {e.log_group for e in events} == {A_LOG}
    records = [fields(e) for e in events]
    [source] = {r["srcaddr"] for r in records}
    assert source.startswith("203.0.113.") and len(records) == 80
    assert {r["dstaddr"] for r in records} <= set(vpc_a().private_hosts)
    assert Counter(r["dstport"] for r in records) == {"22": 40, "3389": 40}
    assert {r["action"] for r in records} == {"REJECT"}


def check_unexpected_port(events: list[Event]) -> None:
    assert {e.log_group for e in events} == {B_LOG}
    records = [fields(e) for e in events]
    assert len(records) == 30 and {r["dstport"] for r in records} == {"5432"}
    assert {r["srcaddr"] for r in records} <= set(vpc_b().hosts)
    assert {r["dstaddr"] for r in records} <= set(vpc_a().private_hosts)
    assert {r["action"] for r in records} == {"REJECT"}


def check_reject_storm(events: list[Event]) -> None:
    assert {e.log_group for e in events} == {B_LOG}
    records = [fields(e) for e in events]
    assert len(records) == 150 and {r["dstport"] for r in records} == {"3306"}
    assert {r["srcaddr"] for r in records} <= set(vpc_b().hosts)
    assert {r["dstaddr"] for r in records} <= set(vpc_a().hosts)
    assert {r["action"] for r in records} == {"REJECT"}


check_quiet_hour_surge = extra_volume(0.6)


def check_new_talker(events: list[Event]) -> None:
    pair = model()
    a, b = pair.a, pair.b
    host = scenarios.new_host(b)
    assert host not in b.hosts and ipaddress.ip_address(host) in B_NET
    requests = [f for e in events for f in [fields(e)] if f["srcaddr"] == host]
    assert {(f["action"], int(f["dstport"]) in a.service_ports, f["dstaddr"] in a.hosts) for f in requests} == {
        ("ACCEPT", True, True)}
    # Logged leaving VPC-B and entering VPC-A, once per connection.
    assert len(requests) == 2 * scenarios.NEW_TALKER_CONNECTIONS


SCENARIO_CHECKS: dict[str, Callable[[list[Event]], None]] = {
    "port-scan": check_port_scan,
    "traffic-spike": check_traffic_spike,
    "external-source": check_external_source,
    "unexpected-port": check_unexpected_port,
    "reject-storm": check_reject_storm,
    "new-talker": check_new_talker,
    "quiet-hour-surge": check_quiet_hour_surge,
}


def test_every_registered_scenario_has_a_content_check() -> None:
    assert set(SCENARIO_CHECKS) == set(scenarios.names())


@pytest.mark.parametrize("name", scenarios.names())
def test_each_scenario_writes_what_its_description_says(name: str) -> None:
    SCENARIO_CHECKS[name](scenarios.get(name).events(model(), HOUR))


@pytest.mark.parametrize("name", scenarios.names())
def test_each_scenario_is_deterministic_and_inside_its_hour(name: str) -> None:
    events = scenarios.get(name).events(model(), HOUR)
    assert events and events == scenarios.get(name).events(model(), HOUR)
    assert all(HOUR.timestamp() * 1000 <= e.timestamp_ms < (HOUR.timestamp() + 3600) * 1000 for e in events)


@pytest.mark.parametrize("name", [n for n in scenarios.names() if n != "traffic-spike"])
def test_a_scenario_differs_by_seed(name: str) -> None:
    assert scenarios.get(name).events(model(seed=1), HOUR) != scenarios.get(name).events(model(seed=2), HOUR)


def test_an_unknown_scenario_is_an_error_naming_the_known_ones() -> None:
    with pytest.raises(scenarios.UnknownScenarioError, match="meteor-strike") as caught:
        scenarios.get("meteor-strike")
    assert isinstance(caught.value, FlowLogEmulatorError)
    assert all(name in str(caught.value) for name in scenarios.names())
