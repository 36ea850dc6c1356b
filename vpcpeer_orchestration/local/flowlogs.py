"""The flow-log emulator: plays the VPC Flow Logs service on the local AWS.

For every flow log configured in the emulator it writes realistic version-2 records into
the flow log's log group: diurnal volume around the reference's ~10,000 requests a day,
hosts drawn from the real subnets, cross-VPC traffic on the declared service ports with
replies, internet traffic from private hosts and its replies, NODATA records, and
ACCEPT/REJECT decided by the security-group rules present in the emulator *at the time of
writing* (change a rule by hand and the next hours change with it).

Everything is deterministic for a seed. Hours and injected scenarios are recorded in the
emulator (S3 markers), so back-filling twice writes nothing twice.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from infra.emulated import STATE_BUCKET
from lambda_pkg.constants import DEFAULT_ALLOWED_PORTS, DEFAULT_TRAFFIC_BASELINE

HOUR = timedelta(hours=1)
RETENTION_LIMIT = timedelta(days=14) - HOUR  # CloudWatch refuses events older than 14 days
HOSTS_PER_SUBNET = 3
AGGREGATION_SECONDS = 60
TCP, ICMP = 6, 1
INTERNET_SERVICE_PORTS = (443, 443, 443, 80, 123)

SCENARIOS: dict[str, str] = {
    "port-scan": "one internet address probes 40 ports of a public VPC-A host; all but the allowed ones are "
                 "rejected. Expect port_scan (high) on VPC-A naming that source.",
    "traffic-spike": "three times the normal cross-VPC volume for the hour. "
                     "Expect traffic_spike (high) on VPC-A and VPC-B.",
    "external-source": "an internet address hits private VPC-A hosts on 22 and 3389 (80 flows, rejected). "
                       "Expect external_traffic (high) on VPC-A, plus unexpected_port (medium) for 22 and 3389; "
                       "near the busiest hours the extra records also exceed the traffic_spike threshold.",
    "unexpected-port": "VPC-B hosts connect to VPC-A on 5432, which VPC-A does not allow (30 flows, rejected "
                       "by VPC-B's egress rules). Expect unexpected_port (medium) for 5432 into VPC-A.",
    "reject-storm": "150 connections from VPC-B hosts to VPC-A on 3306, which VPC-A does not allow, all "
                    "rejected. Expect high_rejections (medium) on VPC-B, where they are rejected, and "
                    "unexpected_port (medium) for 3306 into VPC-A; the extra records can also push VPC-B "
                    "over the traffic_spike threshold in a busy hour.",
}


class FlowLogEmulatorError(RuntimeError):
    """The emulator cannot write flow logs (no rollout yet, unknown scenario, ...)."""


@dataclass(frozen=True)
class Rule:
    """One security-group rule as read from the emulator."""

    egress: bool
    protocol: str
    from_port: int
    to_port: int
    cidr: ipaddress.IPv4Network

    def matches(self, peer: str, protocol: int, port: int) -> bool:
        name = {"6": "tcp", "17": "udp", "1": "icmp"}.get(self.protocol, self.protocol)
        if name not in ("-1", {TCP: "tcp", 17: "udp", ICMP: "icmp"}.get(protocol, "")):
            return False
        if name != "-1" and not self.from_port <= port <= self.to_port:
            return False
        return ipaddress.ip_address(peer) in self.cidr


@dataclass
class VpcSide:
    """One flow-logged VPC: its hosts, security-group rules and log group."""

    label: str
    vpc_id: str
    cidr: ipaddress.IPv4Network
    log_group: str
    private_hosts: list[str]
    public_hosts: list[str]
    service_ports: tuple[int, ...]
    rules: list[Rule] = field(default_factory=list)

    @property
    def hosts(self) -> list[str]:
        return self.private_hosts + self.public_hosts

    def allows(self, egress: bool, peer: str, protocol: int, port: int) -> bool:
        return any(r.egress == egress and r.matches(peer, protocol, port) for r in self.rules)


def _eni(host: str) -> str:
    return "eni-" + hashlib.sha256(host.encode()).hexdigest()[:17]


def _hosts(subnet_cidr: str, salt: str) -> list[str]:
    """Deterministic host addresses inside a subnet (skipping AWS-reserved ones)."""
    network = ipaddress.ip_network(subnet_cidr)
    rng = random.Random(f"hosts:{subnet_cidr}:{salt}")
    offsets = rng.sample(range(10, network.num_addresses - 2), HOSTS_PER_SUBNET)
    return [str(network.network_address + o) for o in sorted(offsets)]


def read_topology(ec2: Any, service_ports: dict[str, tuple[int, ...]] | None = None) -> list[VpcSide]:
    """Every flow-logged VPC in the emulator, with hosts and the rules of its peering groups."""
    service_ports = service_ports or {k: tuple(v) for k, v in DEFAULT_ALLOWED_PORTS.items()}
    sides = []
    for flow_log in ec2.describe_flow_logs()["FlowLogs"]:
        vpc_id = flow_log["ResourceId"]
        group = flow_log.get("LogGroupName") or flow_log.get("LogDestination", "").split(":log-group:")[-1]
        vpcs = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
        if not vpcs or not group:
            continue
        vpc = vpcs[0]
        tags = {t["Key"]: t["Value"] for t in vpc.get("Tags", [])}
        label = tags.get("VPC", vpc_id)
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
        private, public = [], []
        for subnet in sorted(subnets, key=lambda s: s["CidrBlock"]):
            kind = {t["Key"]: t["Value"] for t in subnet.get("Tags", [])}.get("Type", "Private")
            (public if kind == "Public" else private).append(subnet["CidrBlock"])
        side = VpcSide(
            label=label, vpc_id=vpc_id, cidr=ipaddress.ip_network(vpc["CidrBlock"]), log_group=group,
            private_hosts=[h for c in private for h in _hosts(c, label)],
            public_hosts=[h for c in public for h in _hosts(c, label)],
            service_ports=tuple(service_ports.get(label, ())),
        )
        side.rules = read_rules(ec2, vpc_id)
        sides.append(side)
    return sorted(sides, key=lambda s: s.label)


def read_rules(ec2: Any, vpc_id: str) -> list[Rule]:
    """The rules of the VPC's non-default security groups (the ones workloads carry)."""
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]
    ids = [g["GroupId"] for g in groups if g["GroupName"] != "default"]
    if not ids:
        return []
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": ids}])["SecurityGroupRules"]
    return [
        Rule(r["IsEgress"], str(r.get("IpProtocol", "-1")), int(r.get("FromPort", -1)), int(r.get("ToPort", -1)),
             ipaddress.ip_network(r["CidrIpv4"]))
        for r in rules if r.get("CidrIpv4")
    ]


@dataclass(frozen=True)
class Event:
    """A flow record as delivered: log group, stream, event time, message."""

    log_group: str
    stream: str
    timestamp_ms: int
    message: str


class TrafficModel:
    """Generates the flow records of one hour between two peered VPCs."""

    def __init__(self, a: VpcSide, b: VpcSide, account_id: str, seed: int, scale: float = 1.0) -> None:
        self.a, self.b = a, b
        self.account_id = account_id
        self.seed = seed
        self.scale = scale

    # -- record writing ---------------------------------------------------------------

    def _record(self, side: VpcSide, eni_host: str, src: str, dst: str, sport: int, dport: int, protocol: int,
                action: str, start: int, rng: random.Random) -> Event:
        packets = rng.randint(1, 40)
        nbytes = packets * rng.randint(60, 1400)
        message = (f"2 {self.account_id} {_eni(eni_host)} {src} {dst} {sport} {dport} {protocol} {packets} {nbytes} "
                   f"{start} {start + AGGREGATION_SECONDS} {action} OK")
        timestamp = (start + AGGREGATION_SECONDS) * 1000 + rng.randint(0, 20_000)
        return Event(side.log_group, f"{_eni(eni_host)}-all", timestamp, message)

    def connection(self, src_side: VpcSide, src: str, dst_side: VpcSide | None, dst: str, dport: int,
                   start: int, rng: random.Random, protocol: int = TCP) -> list[Event]:
        """One connection as both ENIs log it, decided by the security groups.

        ``dst_side`` None means the internet: the workload's own egress group lets it out
        (vpcpeer does not manage that group), and the reply comes back.
        """
        sport = rng.randint(32768, 60999)
        events: list[Event] = []
        if dst_side is None:
            events.append(self._record(src_side, src, src, dst, sport, dport, protocol, "ACCEPT", start, rng))
            events.append(self._record(src_side, src, dst, src, dport, sport, protocol, "ACCEPT", start, rng))
            return events
        if src_side is dst_side:
            return events
        if not src_side.allows(True, dst, protocol, dport):
            events.append(self._record(src_side, src, src, dst, sport, dport, protocol, "REJECT", start, rng))
            return events
        events.append(self._record(src_side, src, src, dst, sport, dport, protocol, "ACCEPT", start, rng))
        if not dst_side.allows(False, src, protocol, dport):
            events.append(self._record(dst_side, dst, src, dst, sport, dport, protocol, "REJECT", start, rng))
            return events
        events.append(self._record(dst_side, dst, src, dst, sport, dport, protocol, "ACCEPT", start, rng))
        events.append(self._record(dst_side, dst, dst, src, dport, sport, protocol, "ACCEPT", start, rng))
        events.append(self._record(src_side, src, dst, src, dport, sport, protocol, "ACCEPT", start, rng))
        return events

    def inbound(self, dst_side: VpcSide, src: str, dst: str, dport: int, start: int, rng: random.Random) -> list[Event]:
        """An unsolicited connection from outside both VPCs, decided by the target's group."""
        sport = rng.randint(32768, 60999)
        action = "ACCEPT" if dst_side.allows(False, src, TCP, dport) else "REJECT"
        events = [self._record(dst_side, dst, src, dst, sport, dport, TCP, action, start, rng)]
        if action == "ACCEPT":
            events.append(self._record(dst_side, dst, dst, src, dport, sport, TCP, "ACCEPT", start, rng))
        return events

    # -- an hour ----------------------------------------------------------------------

    @staticmethod
    def diurnal(hour: datetime) -> float:
        """Volume factor by hour of day: 0.7 at night to 1.1 at the afternoon peak."""
        return 0.9 + 0.2 * math.sin(2 * math.pi * (hour.hour - 9) / 24)

    def _rng(self, hour: datetime, salt: str) -> random.Random:
        return random.Random(f"{self.seed}:{self.a.vpc_id}:{self.b.vpc_id}:{hour.isoformat()}:{salt}")

    def _start(self, hour: datetime, rng: random.Random) -> int:
        return int(hour.timestamp()) + rng.randint(0, 3600 - AGGREGATION_SECONDS - 30)

    def normal_hour(self, hour: datetime, volume: float = 1.0) -> list[Event]:
        """The background traffic of one hour (records per VPC log around the baseline)."""
        rng = self._rng(hour, "normal")
        target = DEFAULT_TRAFFIC_BASELINE * self.diurnal(hour) * self.scale * volume
        events: list[Event] = []
        for src_side, dst_side in ((self.a, self.b), (self.b, self.a)):
            for _ in range(round(0.2 * target * rng.uniform(0.95, 1.05))):
                if not dst_side.service_ports:
                    break
                events += self.connection(src_side, rng.choice(src_side.hosts), dst_side, rng.choice(dst_side.hosts),
                                          rng.choice(dst_side.service_ports), self._start(hour, rng), rng)
            for _ in range(round(0.1 * target * rng.uniform(0.95, 1.05))):
                internet = f"{rng.choice((34, 52, 54, 104, 151))}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
                events += self.connection(src_side, rng.choice(src_side.private_hosts), None, internet,
                                          rng.choice(INTERNET_SERVICE_PORTS), self._start(hour, rng), rng)
            for _ in range(rng.randint(0, 3)):  # the odd misdirected connection, mostly rejected
                events += self.connection(src_side, rng.choice(src_side.hosts), dst_side, rng.choice(dst_side.hosts),
                                          rng.choice((22, 5432, 6379)), self._start(hour, rng), rng)
            for host in rng.sample(src_side.hosts, 2):  # idle interfaces report NODATA
                start = self._start(hour, rng)
                events.append(Event(src_side.log_group, f"{_eni(host)}-all", (start + AGGREGATION_SECONDS) * 1000,
                                    f"2 {self.account_id} {_eni(host)} - - - - - - - {start} {start + AGGREGATION_SECONDS} - NODATA"))
        return events

    def scenario(self, name: str, hour: datetime) -> list[Event]:
        """The records of an injected scenario for one hour (see SCENARIOS)."""
        rng = self._rng(hour, f"scenario:{name}")
        a, b = self.a, self.b
        events: list[Event] = []
        if name == "port-scan":
            scanner, target = f"198.51.100.{rng.randint(2, 250)}", rng.choice(a.public_hosts)
            for port in sorted(rng.sample(range(1, 1024), 38)) + [443, 8080]:
                events += self.inbound(a, scanner, target, port, self._start(hour, rng), rng)
        elif name == "traffic-spike":
            events += self.normal_hour(hour, volume=2.0)  # on top of the normal hour: three times in all
        elif name == "external-source":
            attacker = f"203.0.113.{rng.randint(2, 250)}"
            for i in range(80):
                events += self.inbound(a, attacker, rng.choice(a.private_hosts), (22, 3389)[i % 2], self._start(hour, rng), rng)
        elif name == "unexpected-port":
            for _ in range(30):
                events += self.connection(b, rng.choice(b.hosts), a, rng.choice(a.private_hosts), 5432, self._start(hour, rng), rng)
        elif name == "reject-storm":
            for _ in range(150):
                events += self.connection(b, rng.choice(b.hosts), a, rng.choice(a.hosts), 3306, self._start(hour, rng), rng)
        else:
            raise FlowLogEmulatorError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}")
        return events


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


class FlowLogEmulator:
    """Writes emulated flow logs into the local AWS, once per hour and scenario."""

    def __init__(self, client: Callable[[str], Any], *, seed: int = 42, scale: float = 1.0,
                 service_ports: dict[str, tuple[int, ...]] | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.client = client
        self.ec2, self.logs, self.s3 = client("ec2"), client("logs"), client("s3")
        self.seed = seed
        self.scale = scale
        self.service_ports = service_ports
        self.progress = progress

    # -- markers ----------------------------------------------------------------------

    def _marker_key(self, kind: str, group: str, hour: datetime, name: str = "") -> str:
        return f"flowlogs/{kind}/{group.strip('/')}/{hour:%Y%m%dT%H}{('-' + name) if name else ''}"

    def _marked(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_object(Bucket=STATE_BUCKET, Key=key)
        except ClientError:
            return False
        return True

    def _mark(self, key: str, count: int) -> None:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_bucket(Bucket=STATE_BUCKET)
        except ClientError:
            self.s3.create_bucket(Bucket=STATE_BUCKET)
        self.s3.put_object(Bucket=STATE_BUCKET, Key=key, Body=json.dumps({"records": count}).encode())

    # -- topology ---------------------------------------------------------------------

    def model(self) -> TrafficModel:
        sides = read_topology(self.ec2, self.service_ports)
        by_label = {s.label: s for s in sides}
        if "VPC-A" not in by_label or "VPC-B" not in by_label:
            raise FlowLogEmulatorError(
                "no flow-logged VPC-A/VPC-B pair in the emulator; roll the stack out first (`vpcpeer local rollout`)"
            )
        account = self.client("sts").get_caller_identity()["Account"]
        return TrafficModel(by_label["VPC-A"], by_label["VPC-B"], account, self.seed, self.scale)

    # -- writing ----------------------------------------------------------------------

    def _ensure_streams(self, events: Iterable[Event]) -> None:
        from botocore.exceptions import ClientError

        for group, stream in sorted({(e.log_group, e.stream) for e in events}):
            try:
                self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                    raise

    def write(self, events: list[Event]) -> int:
        """Deliver events, one PutLogEvents per stream and batch, in time order."""
        self._ensure_streams(events)
        by_stream: dict[tuple[str, str], list[Event]] = defaultdict(list)
        for event in events:
            by_stream[(event.log_group, event.stream)].append(event)
        for (group, stream), batch in sorted(by_stream.items()):
            batch.sort(key=lambda e: e.timestamp_ms)
            for i in range(0, len(batch), 5000):
                self.logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
                    {"timestamp": e.timestamp_ms, "message": e.message} for e in batch[i:i + 5000]])
        return len(events)

    def backfill(self, hours: int, now: datetime | None = None) -> dict[str, int]:
        """Write normal traffic for the last ``hours`` complete hours not written yet."""
        now = now or datetime.now(timezone.utc)
        last = floor_hour(now) - HOUR
        count = min(hours, int(RETENTION_LIMIT / HOUR))
        return self.ensure_hours([last - k * HOUR for k in range(count)], now)

    def ensure_hours(self, hours: Iterable[datetime], now: datetime | None = None) -> dict[str, int]:
        """Write normal traffic for the given complete hours not yet written (as AWS would have)."""
        now = now or datetime.now(timezone.utc)
        oldest = floor_hour(now) - RETENTION_LIMIT
        model = None
        written: dict[str, int] = {}
        for hour in sorted({floor_hour(h) for h in hours}):
            if hour + HOUR > now or hour < oldest:
                continue
            model = model or self.model()
            key = self._marker_key("hours", model.a.log_group, hour)
            if self._marked(key):
                continue
            count = self.write(model.normal_hour(hour))
            self._mark(key, count)
            written[hour.isoformat()] = count
            if self.progress:
                self.progress(f"  {hour:%Y-%m-%d %H:00} UTC  {count:5d} records")
        return written

    def inject(self, name: str, hour: datetime) -> int:
        """Write a scenario into ``hour`` (once); returns records written (0 if already there)."""
        if name not in SCENARIOS:
            raise FlowLogEmulatorError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}")
        hour = floor_hour(hour)
        if hour < floor_hour(datetime.now(timezone.utc)) - RETENTION_LIMIT:
            raise FlowLogEmulatorError(f"{hour:%Y-%m-%d %H:00} is older than CloudWatch keeps events (14 days)")
        model = self.model()
        key = self._marker_key("scenarios", model.a.log_group, hour, name)
        if self._marked(key):
            return 0
        count = self.write(model.scenario(name, hour))
        self._mark(key, count)
        if self.progress:
            self.progress(f"  {hour:%Y-%m-%d %H:00} UTC  {count:5d} records  scenario {name}")
        return count
