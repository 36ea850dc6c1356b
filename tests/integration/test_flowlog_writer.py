"""The flow-log writer and the topology reader against a real moto server and a hand-built topology."""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import boto3
import pytest

from lambda_pkg.constants import DEFAULT_ALLOWED_PORTS, VPC_LABELS
from vpcpeer_orchestration.local import scenarios
from vpcpeer_orchestration.local.flowlogs import (
    CLOUDWATCH_MAX_EVENT_AGE,
    HOUR,
    RETENTION_LIMIT,
    FlowLogEmulator,
    FlowLogEmulatorError,
    floor_hour,
)
from vpcpeer_orchestration.local.layout import StateObjects, flow_log_marker_key
from vpcpeer_orchestration.local.topology import read_topology
from vpcpeer_orchestration.local.traffic_model import Rule

VPC_A, VPC_B = VPC_LABELS
REGION = "us-east-1"
NOW = floor_hour(datetime.now(timezone.utc))
LAST_HOUR = NOW - HOUR
CIDRS = {VPC_A: "10.0.0.0/16", VPC_B: "10.1.0.0/16"}
SUBNETS = {VPC_A: {"10.0.1.0/24": "Private", "10.0.2.0/24": "Private", "10.0.10.0/24": "Public"},
           VPC_B: {"10.1.1.0/24": "Private", "10.1.10.0/24": "Public"}}
# What each VPC's group lets in from the peer and out to it (the stack's default rules).
EGRESS = {VPC_A: DEFAULT_ALLOWED_PORTS[VPC_B], VPC_B: DEFAULT_ALLOWED_PORTS[VPC_A]}


@dataclass(frozen=True)
class Topology:
    vpc_ids: dict[str, str]
    log_groups: dict[str, str]


@pytest.fixture(scope="module")
def clients(inprocess_moto: str) -> Callable[..., Any]:
    """A client factory for this module's in-process moto server."""

    def client(service: str, region: str = REGION) -> Any:
        return boto3.client(service, endpoint_url=inprocess_moto, region_name=region,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    return client


def _permissions(ports: tuple[int, ...], cidr: str) -> list[dict[str, Any]]:
    return [{"IpProtocol": "tcp", "FromPort": p, "ToPort": p, "IpRanges": [{"CidrIp": cidr}]} for p in ports]


@pytest.fixture(scope="module")
def topology(clients) -> Topology:
    """Two flow-logged VPCs with subnets and peering groups, created by hand with boto3."""
    ec2, logs = clients("ec2"), clients("logs")
    vpc_ids, log_groups = {}, {}
    for label, cidr in CIDRS.items():
        vpc_id = ec2.create_vpc(CidrBlock=cidr, TagSpecifications=[
            {"ResourceType": "vpc", "Tags": [{"Key": "VPC", "Value": label}]}])["Vpc"]["VpcId"]
        for subnet, kind in SUBNETS[label].items():
            ec2.create_subnet(VpcId=vpc_id, CidrBlock=subnet, TagSpecifications=[
                {"ResourceType": "subnet", "Tags": [{"Key": "Type", "Value": kind}]}])
        vpc_ids[label] = vpc_id
        log_groups[label] = f"/aws/vpc/flowlogs/writer-test/{label.lower()}"
        logs.create_log_group(logGroupName=log_groups[label])
        ec2.create_flow_logs(ResourceIds=[vpc_id], ResourceType="VPC", TrafficType="ALL",
                             LogDestinationType="cloud-watch-logs", LogGroupName=log_groups[label],
                             DeliverLogsPermissionArn="arn:aws:iam::123456789012:role/flow-logs")
    for label, peer in ((VPC_A, VPC_B), (VPC_B, VPC_A)):
        group = ec2.create_security_group(GroupName=f"{label.lower()}-peering", Description="peering",
                                          VpcId=vpc_ids[label])["GroupId"]
        # A new group allows all egress; the stack's groups allow only the peer's ports.
        ec2.revoke_security_group_egress(GroupId=group, IpPermissions=[
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        ec2.authorize_security_group_ingress(GroupId=group,
                                             IpPermissions=_permissions(DEFAULT_ALLOWED_PORTS[label], CIDRS[peer]))
        ec2.authorize_security_group_egress(GroupId=group, IpPermissions=_permissions(EGRESS[label], CIDRS[peer]))
    return Topology(vpc_ids, log_groups)


def emulator(clients, **kwargs: Any) -> FlowLogEmulator:
    return FlowLogEmulator(lambda service: clients(service), **kwargs)


def stored(clients, log_group: str, hour: datetime) -> list[dict[str, Any]]:
    """Every event of ``log_group`` whose timestamp falls in ``hour``."""
    start = int(hour.timestamp() * 1000)
    pages = clients("logs").get_paginator("filter_log_events").paginate(
        logGroupName=log_group, startTime=start, endTime=start + 3_600_000 - 1)
    return [event for page in pages for event in page["events"]]


# -- the topology reader --------------------------------------------------------------------


def test_the_topology_reader_returns_both_sides_with_hosts_from_the_real_subnets(clients, topology) -> None:
    sides = read_topology(clients("ec2"))
    assert [s.label for s in sides] == [VPC_A, VPC_B]
    for side in sides:
        assert side.vpc_id == topology.vpc_ids[side.label] and side.log_group == topology.log_groups[side.label]
        assert side.cidr == ipaddress.ip_network(CIDRS[side.label])
        assert side.service_ports == DEFAULT_ALLOWED_PORTS[side.label]
        subnets = {ipaddress.ip_network(c): kind for c, kind in SUBNETS[side.label].items()}
        for hosts, kind in ((side.private_hosts, "Private"), (side.public_hosts, "Public")):
            homes = [next(n for n in subnets if ipaddress.ip_address(h) in n) for h in hosts]
            assert {subnets[n] for n in homes} == {kind}
            assert Counter(homes) == {n: 3 for n, k in subnets.items() if k == kind}


def test_the_topology_reader_returns_the_rules_of_the_peering_groups_only(clients, topology) -> None:
    a, b = read_topology(clients("ec2"))
    peer_of_a, peer_of_b = ipaddress.ip_network(CIDRS[VPC_B]), ipaddress.ip_network(CIDRS[VPC_A])
    assert set(a.rules) == ({Rule(False, "tcp", p, p, peer_of_a) for p in (443, 8080)}
                            | {Rule(True, "tcp", p, p, peer_of_a) for p in (443, 3306)})
    assert set(b.rules) == ({Rule(False, "tcp", p, p, peer_of_b) for p in (443, 3306)}
                            | {Rule(True, "tcp", p, p, peer_of_b) for p in (443, 8080)})


def test_service_ports_given_to_the_emulator_reach_the_model(clients, topology) -> None:
    model = emulator(clients, service_ports={VPC_A: (443,), VPC_B: (443, 3306)}).model()
    assert model.a.service_ports == (443,) and model.b.service_ports == (443, 3306)


def test_without_a_flow_logged_pair_the_emulator_says_to_roll_out_first(clients, topology) -> None:
    elsewhere = FlowLogEmulator(lambda service: clients(service, "eu-west-1"))
    with pytest.raises(FlowLogEmulatorError, match="vpcpeer local rollout"):
        elsewhere.model()


# -- the writer ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def backfilled(clients, topology) -> tuple[dict[str, int], dict[str, int]]:
    hours = [LAST_HOUR - k * HOUR for k in range(3)]
    first = emulator(clients).ensure_hours(hours, now=NOW)
    again = emulator(clients).ensure_hours(hours, now=NOW)
    return first, again


def test_ensure_hours_writes_each_complete_hour_once(backfilled) -> None:
    first, again = backfilled
    assert sorted(first) == [(LAST_HOUR - k * HOUR).isoformat() for k in (2, 1, 0)]
    assert all(count > 500 for count in first.values())
    assert again == {}


def test_the_current_hour_is_not_written_before_it_is_complete(clients, topology) -> None:
    assert emulator(clients).ensure_hours([NOW], now=NOW + HOUR / 2) == {}
    assert all(stored(clients, group, NOW) == [] for group in topology.log_groups.values())


def test_written_hours_are_marked_in_the_state_bucket(clients, topology, backfilled) -> None:
    markers = StateObjects(clients("s3"))
    for hour_iso, count in backfilled[0].items():
        key = flow_log_marker_key("hours", topology.vpc_ids[VPC_A], datetime.fromisoformat(hour_iso))
        assert markers.get(key) == {"state": "done", "records": count}


def test_events_land_in_their_log_groups_and_streams_inside_the_hour(clients, topology, backfilled) -> None:
    expected = emulator(clients).model().normal_hour(LAST_HOUR)
    start_ms = int(LAST_HOUR.timestamp() * 1000)
    total = 0
    for label, group in topology.log_groups.items():
        events = stored(clients, group, LAST_HOUR)
        suffix = f"-{LAST_HOUR:%Y%m%dT%H}"
        assert Counter((e["logStreamName"], e["timestamp"], e["message"]) for e in events) == \
            Counter((e.stream + suffix, e.timestamp_ms, e.message) for e in expected if e.log_group == group), label
        for event in events:
            assert start_ms <= event["timestamp"] < start_ms + 3_600_000
            assert event["logStreamName"] == f"{event['message'].split()[2]}-all{suffix}"
        total += len(events)
    assert total == backfilled[0][LAST_HOUR.isoformat()]


def test_inject_writes_a_scenario_once(clients, topology, backfilled) -> None:
    hour = LAST_HOUR - HOUR
    a_before = len(stored(clients, topology.log_groups[VPC_A], hour))
    b_before = len(stored(clients, topology.log_groups[VPC_B], hour))
    written = emulator(clients).inject("port-scan", hour)
    assert written == 40
    assert emulator(clients).inject("port-scan", hour) == 0
    events = stored(clients, topology.log_groups[VPC_A], hour)
    scan = [e for e in events if e["message"].split()[3].startswith("198.51.100.")]
    assert len(events) == a_before + 40 and len(scan) == 40
    assert {e["message"].split()[12] for e in scan} == {"REJECT"}
    assert len(stored(clients, topology.log_groups[VPC_B], hour)) == b_before
    key = flow_log_marker_key("scenarios", topology.vpc_ids[VPC_A], hour, "port-scan")
    assert StateObjects(clients("s3")).get(key) == {"state": "done", "records": 40}


def test_a_scenario_goes_to_the_log_of_the_vpc_that_logs_it(clients, topology) -> None:
    hour = LAST_HOUR - 6 * HOUR  # an hour no other test writes
    written = emulator(clients).inject("reject-storm", hour)
    assert written == 150
    assert stored(clients, topology.log_groups[VPC_A], hour) == []
    b_events = stored(clients, topology.log_groups[VPC_B], hour)
    assert len(b_events) == 150
    assert Counter((e["message"].split()[6], e["message"].split()[12]) for e in b_events) == {("3306", "REJECT"): 150}


def test_an_unknown_scenario_is_refused_before_anything_is_written(clients, topology) -> None:
    with pytest.raises(scenarios.UnknownScenarioError, match="port-scan, traffic-spike"):
        emulator(clients).inject("meteor-strike", LAST_HOUR)


def test_hours_older_than_cloudwatch_accepts_are_skipped_and_the_edge_hour_is_written(clients, topology) -> None:
    # The service measures 14 days from the real clock, not the module's NOW (an earlier hour
    # once this suite has run past an hour boundary): the edge is taken from the clock here.
    now = floor_hour(datetime.now(timezone.utc))
    edge = now - RETENTION_LIMIT
    too_old = edge - HOUR
    assert too_old == now - CLOUDWATCH_MAX_EVENT_AGE
    written = emulator(clients).ensure_hours([too_old, edge], now=now)
    assert list(written) == [edge.isoformat()]
    assert sum(len(stored(clients, g, edge)) for g in topology.log_groups.values()) == written[edge.isoformat()]
    assert all(stored(clients, g, too_old) == [] for g in topology.log_groups.values())


def test_a_scenario_older_than_cloudwatch_accepts_is_refused(clients, topology) -> None:
    with pytest.raises(FlowLogEmulatorError, match="14 days"):
        emulator(clients).inject("port-scan", NOW - CLOUDWATCH_MAX_EVENT_AGE)


def test_backfill_writes_the_last_complete_hours(clients, topology, backfilled) -> None:
    written = emulator(clients).backfill(5, now=NOW)
    assert sorted(written) == [(LAST_HOUR - k * HOUR).isoformat() for k in (4, 3)]


def test_a_writer_killed_half_way_is_cleaned_up_and_written_once(clients, topology) -> None:
    """A claim without its mark (the writer died mid-hour) is rewritten, not added to."""
    hour = LAST_HOUR - 5 * HOUR
    writer = emulator(clients)
    events = writer.model().normal_hour(hour)
    key = flow_log_marker_key("hours", topology.vpc_ids[VPC_A], hour)
    suffix = f"-{hour:%Y%m%dT%H}"
    # What a writer killed after its claim and part of its records leaves behind.
    StateObjects(clients("s3")).put(key, {"state": "writing"})
    from vpcpeer_orchestration.local.traffic_model import Event
    writer.write([Event(e.log_group, e.stream + suffix, e.timestamp_ms, e.message) for e in events[:40]])

    written = writer.ensure_hours([hour], now=NOW)
    assert written == {hour.isoformat(): len(events)}
    stored_events = [e for group in topology.log_groups.values() for e in stored(clients, group, hour)]
    assert len(stored_events) == len(events)  # the partial write is gone, nothing doubled
    assert StateObjects(clients("s3")).get(key) == {"state": "done", "records": len(events)}


def test_two_writers_at_once_write_each_hour_once(clients, topology) -> None:
    """Concurrent writers serialise on the lock per hour: each hour is written by exactly one of them.

    Which writer wins which hour is up to the scheduler, so only the partition is asserted.
    """
    import threading

    hours = [LAST_HOUR - k * HOUR for k in range(8, 12)]
    lock = threading.Lock()
    results: list[dict[str, int]] = []

    def run() -> None:
        results.append(FlowLogEmulator(clients, lock=lambda: lock).ensure_hours(hours, now=NOW))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    written = [set(r) for r in results]
    assert not written[0] & written[1]
    assert written[0] | written[1] == {hour.isoformat() for hour in hours}
    for hour in hours:
        expected = emulator(clients).model().normal_hour(hour)
        stored_events = [e for group in topology.log_groups.values() for e in stored(clients, group, hour)]
        assert len(stored_events) == len(expected)


def test_a_vpc_whose_flow_log_is_gone_is_not_logged_but_its_peer_still_is(clients, topology) -> None:
    """As on AWS: deleting VPC-A's flow log stops VPC-A's records; VPC-B still logs traffic into VPC-A."""
    ec2 = clients("ec2")
    [flow_log] = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [topology.vpc_ids[VPC_A]]}])["FlowLogs"]
    ec2.delete_flow_logs(FlowLogIds=[flow_log["FlowLogId"]])
    hour = LAST_HOUR - 20 * HOUR
    written = emulator(clients, vpc_ids=topology.vpc_ids.values()).ensure_hours([hour], now=NOW)
    assert written[hour.isoformat()] > 0
    assert stored(clients, topology.log_groups[VPC_A], hour) == []
    into_a = [e for e in stored(clients, topology.log_groups[VPC_B], hour)
              if e["message"].split()[4].startswith("10.0.") and e["message"].split()[12] == "ACCEPT"]
    assert len(into_a) > 20


def test_events_the_service_drops_as_too_old_are_an_error_not_a_count(clients, topology) -> None:
    """Given a clock two hours slow, the emulator believes an hour is writable that CloudWatch
    Logs no longer accepts: the rejection surfaces instead of a count of records not stored."""
    slow = floor_hour(datetime.now(timezone.utc)) - 2 * HOUR
    with pytest.raises(FlowLogEmulatorError, match="rejected .* events"):
        emulator(clients, vpc_ids=topology.vpc_ids.values()).ensure_hours([slow - RETENTION_LIMIT], now=slow)
