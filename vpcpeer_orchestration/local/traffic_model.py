"""The traffic model behind the flow-log emulator: which records an hour between two VPCs holds.

Pure: it knows two ``VpcSide``s (hosts, service ports, security-group rules, log group)
and turns an hour into ``Event``s, version-2 flow records as each ENI would log them. It
reads nothing from AWS (``topology`` does) and writes nothing (``flowlogs`` does), so it
can be tested on a hand-built topology and stays importable without boto3.

Everything is deterministic: every random choice comes from an rng seeded by the model's
seed, the two VPC ids, the hour and what is being generated, so the same hour always holds
the same records, whichever other hours or scenarios were generated before it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import random
from dataclasses import dataclass, field
from datetime import datetime

from lambda_pkg.constants import DEFAULT_TRAFFIC_BASELINE


# Addresses per subnet the model places workloads on.
HOSTS_PER_SUBNET = 3
# Flow logs aggregate a connection over this window (the one-minute setting).
AGGREGATION_SECONDS = 60
TCP, UDP, ICMP = 6, 17, 1
# Source ports a client picks (the Linux ephemeral range).
EPHEMERAL_PORTS = (32768, 60999)
# Ports private hosts reach on the internet, weighted by repetition (mostly HTTPS).
INTERNET_SERVICE_PORTS = (443, 443, 443, 80, 123)
# First octets of the public addresses private hosts talk to (large cloud and CDN ranges).
INTERNET_FIRST_OCTETS = (34, 52, 54, 104, 151)
# Ports of the odd misdirected cross-VPC connection of a normal hour (mostly rejected).
MISDIRECTED_PORTS = (22, 5432, 6379)
# Share of the hourly target per direction: cross-VPC connections and internet connections.
CROSS_VPC_SHARE = 0.2
INTERNET_SHARE = 0.1
# Interfaces per VPC that report NODATA in every hour.
IDLE_INTERFACES = 2

_PROTOCOL_NAMES = {TCP: "tcp", UDP: "udp", ICMP: "icmp"}
_PROTOCOL_NUMBERS = {"6": "tcp", "17": "udp", "1": "icmp"}
ALL_PROTOCOLS = "-1"


class FlowLogEmulatorError(RuntimeError):
    """The emulator cannot write flow logs (no rollout yet, unknown scenario, ...)."""


@dataclass(frozen=True)
class Rule:
    """One security-group rule as EC2 describes it (protocol ``-1`` means every protocol)."""

    egress: bool
    protocol: str
    from_port: int
    to_port: int
    cidr: ipaddress.IPv4Network

    def matches(self, peer: str, protocol: int, port: int) -> bool:
        """True if this rule lets ``protocol``/``port`` traffic with ``peer`` through."""
        name = _PROTOCOL_NUMBERS.get(self.protocol, self.protocol)
        if name not in (ALL_PROTOCOLS, _PROTOCOL_NAMES.get(protocol, "")):
            return False
        if name != ALL_PROTOCOLS and not self.from_port <= port <= self.to_port:
            return False
        return ipaddress.ip_address(peer) in self.cidr


@dataclass
class VpcSide:
    """One VPC: its hosts, the ports its workloads serve, its rules and log group (None: not flow-logged)."""

    label: str
    vpc_id: str
    cidr: ipaddress.IPv4Network
    log_group: str | None
    private_hosts: list[str]
    public_hosts: list[str]
    service_ports: tuple[int, ...]
    rules: list[Rule] = field(default_factory=list)

    @property
    def hosts(self) -> list[str]:
        return self.private_hosts + self.public_hosts

    def allows(self, egress: bool, peer: str, protocol: int, port: int) -> bool:
        """True if any of the VPC's rules in that direction lets the traffic through."""
        return any(r.egress == egress and r.matches(peer, protocol, port) for r in self.rules)


@dataclass(frozen=True)
class Event:
    """A flow record as delivered: log group (None: its VPC has no flow log), stream, event time, message."""

    log_group: str | None
    stream: str
    timestamp_ms: int
    message: str


def eni_id(host: str) -> str:
    """The ENI id a host's records carry: stable per address, so its stream is too."""
    return "eni-" + hashlib.sha256(host.encode()).hexdigest()[:17]


def stream_name(host: str) -> str:
    """The log stream VPC Flow Logs writes a host's ENI records to."""
    return f"{eni_id(host)}-all"


def hosts_in_subnet(subnet_cidr: str, salt: str) -> list[str]:
    """Deterministic host addresses inside a subnet, clear of the addresses AWS reserves."""
    network = ipaddress.ip_network(subnet_cidr)
    rng = random.Random(f"hosts:{subnet_cidr}:{salt}")
    offsets = rng.sample(range(10, network.num_addresses - 2), HOSTS_PER_SUBNET)
    return [str(network.network_address + o) for o in sorted(offsets)]


def diurnal(hour: datetime) -> float:
    """Volume factor by hour of day: 0.7 at night to 1.1 at the afternoon peak (15:00 UTC)."""
    return 0.9 + 0.2 * math.sin(2 * math.pi * (hour.hour - 9) / 24)


class TrafficModel:
    """Generates the flow records of one hour between two peered VPCs."""

    def __init__(self, a: VpcSide, b: VpcSide, account_id: str, seed: int, scale: float = 1.0) -> None:
        self.a, self.b = a, b
        self.account_id = account_id
        self.seed = seed
        self.scale = scale

    # -- records ----------------------------------------------------------------------

    def _record(self, side: VpcSide, eni_host: str, src: str, dst: str, sport: int, dport: int, protocol: int,
                action: str, start: int, rng: random.Random) -> Event:
        packets = rng.randint(1, 40)
        nbytes = packets * rng.randint(60, 1400)
        message = (f"2 {self.account_id} {eni_id(eni_host)} {src} {dst} {sport} {dport} {protocol} {packets} "
                   f"{nbytes} {start} {start + AGGREGATION_SECONDS} {action} OK")
        # Delivery lags the end of the aggregation window by up to 20 s.
        timestamp = (start + AGGREGATION_SECONDS) * 1000 + rng.randint(0, 20_000)
        return Event(side.log_group, stream_name(eni_host), timestamp, message)

    def _nodata(self, side: VpcSide, host: str, start: int) -> Event:
        end = start + AGGREGATION_SECONDS
        return Event(side.log_group, stream_name(host), end * 1000,
                     f"2 {self.account_id} {eni_id(host)} - - - - - - - {start} {end} - NODATA")

    def connection(self, src_side: VpcSide, src: str, dst_side: VpcSide | None, dst: str, dport: int,
                   start: int, rng: random.Random, protocol: int = TCP) -> list[Event]:
        """One connection as both ENIs log it, decided by the security groups.

        ``dst_side`` None means the internet: the workload's own egress group lets it out
        (vpcpeer does not manage that group), and the reply comes back.
        """
        sport = rng.randint(*EPHEMERAL_PORTS)
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
        sport = rng.randint(*EPHEMERAL_PORTS)
        action = "ACCEPT" if dst_side.allows(False, src, TCP, dport) else "REJECT"
        events = [self._record(dst_side, dst, src, dst, sport, dport, TCP, action, start, rng)]
        if action == "ACCEPT":
            events.append(self._record(dst_side, dst, dst, src, dport, sport, TCP, "ACCEPT", start, rng))
        return events

    # -- an hour ----------------------------------------------------------------------

    def rng(self, hour: datetime, salt: str) -> random.Random:
        """The rng of one hour and one purpose (``salt``), independent of every other one."""
        return random.Random(f"{self.seed}:{self.a.vpc_id}:{self.b.vpc_id}:{hour.isoformat()}:{salt}")

    @staticmethod
    def window_start(hour: datetime, rng: random.Random) -> int:
        """A window start inside the hour whose records (and delivery lag) stay inside it."""
        return int(hour.timestamp()) + rng.randint(0, 3600 - AGGREGATION_SECONDS - 30)

    def normal_hour(self, hour: datetime, volume: float = 1.0) -> list[Event]:
        """The background traffic of one hour (records per VPC log around the baseline)."""
        rng = self.rng(hour, "normal")
        target = DEFAULT_TRAFFIC_BASELINE * diurnal(hour) * self.scale * volume
        events: list[Event] = []
        for src_side, dst_side in ((self.a, self.b), (self.b, self.a)):
            for _ in range(round(CROSS_VPC_SHARE * target * rng.uniform(0.95, 1.05))):
                if not dst_side.service_ports:
                    break
                events += self.connection(src_side, rng.choice(src_side.hosts), dst_side, rng.choice(dst_side.hosts),
                                          rng.choice(dst_side.service_ports), self.window_start(hour, rng), rng)
            for _ in range(round(INTERNET_SHARE * target * rng.uniform(0.95, 1.05))):
                internet = (f"{rng.choice(INTERNET_FIRST_OCTETS)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}"
                            f".{rng.randint(1, 254)}")
                events += self.connection(src_side, rng.choice(src_side.private_hosts), None, internet,
                                          rng.choice(INTERNET_SERVICE_PORTS), self.window_start(hour, rng), rng)
            for _ in range(rng.randint(0, 3)):
                events += self.connection(src_side, rng.choice(src_side.hosts), dst_side, rng.choice(dst_side.hosts),
                                          rng.choice(MISDIRECTED_PORTS), self.window_start(hour, rng), rng)
            for host in rng.sample(src_side.hosts, IDLE_INTERFACES):
                events.append(self._nodata(src_side, host, self.window_start(hour, rng)))
        return events
