"""The scenarios the flow-log emulator can inject, one registry entry each.

An entry holds everything about a scenario: its name (the CLI's ``--scenario`` choice),
what it writes and what the analyzer reports (the README's table, word for word), the
anomalies the analyzer must find in its hour, and the function that generates its
records. Adding a scenario is adding one entry to ``_ENTRIES``.

Light on purpose: ``vpcpeer --help`` imports this module for the ``--scenario`` choices,
so it imports only the pure traffic model (no boto3, no pulumi).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from lambda_pkg.constants import DEFAULT_ALLOWED_PORTS, DEFAULT_TALKER_DAYS, VPC_A, VPC_B
from vpcpeer_orchestration.local.traffic_model import Event, FlowLogEmulatorError, TrafficModel, VpcSide, diurnal

Generator = Callable[[TrafficModel, datetime, random.Random], list[Event]]


class UnknownScenarioError(FlowLogEmulatorError):
    """A scenario name that is not in the registry."""


@dataclass(frozen=True)
class Scenario:
    """One injectable scenario: its documentation and how its records are generated."""

    name: str
    description: str  # what is written (README table, CLI help)
    reported: str  # what the analyzer reports (README table)
    anomalies: frozenset[tuple[str, str]]  # (anomaly type, VPC) the analyzer must report at least
    generate: Generator
    # Where the scenario goes by default, given the last complete hour (None: the demo spaces it).
    placement: Callable[[datetime], datetime] | None = None
    # Days of history its detection needs (a learned baseline, known talkers); the default demo runs only those
    # that need none, so its day of hours shows each of them.
    needs_history_days: int = 0

    def events(self, model: TrafficModel, hour: datetime) -> list[Event]:
        """The scenario's records for ``hour``, from an rng of its own (same seed, same records)."""
        return self.generate(model, hour, model.rng(hour, f"scenario:{self.name}"))


PORT_SCAN_PORTS = 40
EXTERNAL_SOURCE_FLOWS = 80
EXTERNAL_SOURCE_PORTS = (22, 3389)
UNEXPECTED_PORT_FLOWS = 30
UNEXPECTED_PORT = 5432
REJECT_STORM_FLOWS = 150
REJECT_STORM_PORT = 3306
# Volume added on top of the normal hour, which is written anyway: three times in all.
TRAFFIC_SPIKE_EXTRA_VOLUME = 2.0


def _port_scan(model: TrafficModel, hour: datetime, rng: random.Random) -> list[Event]:
    """A documentation-range address probes random low ports plus VPC-A's service ports.

    The service ports are in the sample so a scan also touches what the host really serves;
    the stack's rules admit only the peer's CIDR, so every probe is rejected.
    """
    a = model.a
    scanner, target = f"198.51.100.{rng.randint(2, 250)}", rng.choice(a.public_hosts)
    served = list(DEFAULT_ALLOWED_PORTS[VPC_A])
    events: list[Event] = []
    for port in sorted(rng.sample(range(1, 1024), PORT_SCAN_PORTS - len(served))) + served:
        events += model.inbound(a, scanner, target, port, model.window_start(hour, rng), rng)
    return events


def _traffic_spike(model: TrafficModel, hour: datetime, rng: random.Random) -> list[Event]:
    """More of the normal hour's own traffic (its own rng, not the scenario's)."""
    return model.normal_hour(hour, volume=TRAFFIC_SPIKE_EXTRA_VOLUME)


def _external_source(model: TrafficModel, hour: datetime, rng: random.Random) -> list[Event]:
    """An internet address tries remote-access ports on private VPC-A hosts, alternating them.

    Near the busiest hours the extra records also exceed the traffic_spike threshold.
    """
    a = model.a
    attacker = f"203.0.113.{rng.randint(2, 250)}"
    events: list[Event] = []
    for i in range(EXTERNAL_SOURCE_FLOWS):
        port = EXTERNAL_SOURCE_PORTS[i % len(EXTERNAL_SOURCE_PORTS)]
        events += model.inbound(a, attacker, rng.choice(a.private_hosts), port, model.window_start(hour, rng), rng)
    return events


def _unexpected_port(model: TrafficModel, hour: datetime, rng: random.Random) -> list[Event]:
    """VPC-B hosts try PostgreSQL on private VPC-A hosts; VPC-B's own egress rules stop them."""
    a, b = model.a, model.b
    events: list[Event] = []
    for _ in range(UNEXPECTED_PORT_FLOWS):
        events += model.connection(b, rng.choice(b.hosts), a, rng.choice(a.private_hosts), UNEXPECTED_PORT,
                                   model.window_start(hour, rng), rng)
    return events


def _reject_storm(model: TrafficModel, hour: datetime, rng: random.Random) -> list[Event]:
    """Many VPC-B connections to MySQL on VPC-A, all rejected where they start (VPC-B's egress)."""
    a, b = model.a, model.b
    events: list[Event] = []
    for _ in range(REJECT_STORM_FLOWS):
        events += model.connection(b, rng.choice(b.hosts), a, rng.choice(a.hosts), REJECT_STORM_PORT,
                                   model.window_start(hour, rng), rng)
    return events


# A surge at the quietest hour: this many times its usual volume in all (the normal hour plus the rest).
QUIET_HOUR_SURGE_VOLUME = 1.6


def quietest_hour_of_last_day(last_complete_hour: datetime) -> datetime:
    """The quietest hour (by the traffic model's daily shape) of the last complete UTC day."""
    day = last_complete_hour.replace(hour=0, minute=0, second=0, microsecond=0)
    if last_complete_hour.hour != 23:
        day -= timedelta(days=1)
    return min((day + timedelta(hours=h) for h in range(24)), key=diurnal)


def _quiet_hour_surge(model: TrafficModel, hour: datetime, rng: random.Random) -> list[Event]:
    """The hour's own normal traffic again, 0.6 of it: 1.6 times the usual volume in all, which
    at the quietest hour stays under the reference's constant threshold."""
    return model.normal_hour(hour, volume=QUIET_HOUR_SURGE_VOLUME - 1)


# A new host's connections in its hour: about what one of the normal hosts opens across the peering.
NEW_TALKER_CONNECTIONS = 8


def new_host(side: VpcSide) -> str:
    """An address in the /24 of the side's first private host that none of its hosts uses: a
    workload never seen before, deterministic so the demo names the same one every time."""
    network = ipaddress.ip_network(f"{side.private_hosts[0]}/24", strict=False)
    taken = set(side.hosts)
    return next(str(network.network_address + o) for o in range(200, 250)
                if str(network.network_address + o) not in taken)


def _new_talker(model: TrafficModel, hour: datetime, rng: random.Random) -> list[Event]:
    """A VPC-B host never seen before opens connections to VPC-A on an allowed port, at a normal
    host's volume: nothing about it is loud except that it is new."""
    a, b = model.a, model.b
    host = new_host(b)
    events: list[Event] = []
    for _ in range(NEW_TALKER_CONNECTIONS):
        events += model.connection(b, host, a, rng.choice(a.private_hosts), rng.choice(a.service_ports),
                                   model.window_start(hour, rng), rng)
    return events


_ENTRIES = (
    Scenario(
        name="port-scan",
        description="one internet address probes 40 ports of a public VPC-A host",
        reported="port_scan (high) on VPC-A, naming the source",
        anomalies=frozenset({("port_scan", VPC_A)}),
        generate=_port_scan,
    ),
    Scenario(
        name="traffic-spike",
        description="three times the normal cross-VPC volume",
        reported="traffic_spike (high) on VPC-A and VPC-B",
        anomalies=frozenset({("traffic_spike", VPC_A), ("traffic_spike", VPC_B)}),
        generate=_traffic_spike,
    ),
    Scenario(
        name="external-source",
        description="an internet address hits private VPC-A hosts on 22/3389, 80 flows",
        reported="external_traffic (high) on VPC-A, unexpected_port (medium) for 22 and 3389",
        anomalies=frozenset({("external_traffic", VPC_A), ("unexpected_port", VPC_A)}),
        generate=_external_source,
    ),
    Scenario(
        name="unexpected-port",
        description="VPC-B hosts connect to VPC-A on 5432, 30 flows",
        reported="unexpected_port (medium) for 5432 into VPC-A (rejected by VPC-B's egress rules, "
                 "seen in VPC-B's log)",
        anomalies=frozenset({("unexpected_port", VPC_A)}),
        generate=_unexpected_port,
    ),
    Scenario(
        name="reject-storm",
        description="150 connections from VPC-B to VPC-A's 3306",
        reported="high_rejections (medium) on VPC-B, unexpected_port for 3306 into VPC-A; "
                 "in a busy hour also traffic_spike on VPC-B",
        anomalies=frozenset({("high_rejections", VPC_B), ("unexpected_port", VPC_A)}),
        generate=_reject_storm,
    ),
    Scenario(
        name="quiet-hour-surge",
        description="1.6 times the usual volume at the quietest hour of the last complete day "
                    "(unless --at says otherwise), below the static threshold",
        reported="traffic_spike on VPC-A and VPC-B with the learned baseline (after 3 days of history); "
                 "nothing with baseline: static",
        anomalies=frozenset({("traffic_spike", VPC_A), ("traffic_spike", VPC_B)}),
        generate=_quiet_hour_surge,
        placement=quietest_hour_of_last_day,
        needs_history_days=3,
    ),
    Scenario(
        name="new-talker",
        description=f"a VPC-B host never seen before opens {NEW_TALKER_CONNECTIONS} connections to VPC-A on an "
                    "allowed port",
        reported="new_talker (medium) on VPC-B naming the host, once, after 7 days of learning "
                 "(TALKER_DAYS)",
        anomalies=frozenset({("new_talker", VPC_B)}),
        generate=_new_talker,
        needs_history_days=DEFAULT_TALKER_DAYS,
    ),
)


def index(entries: Iterable[Scenario]) -> dict[str, Scenario]:
    """Entries by name, in the given order; a name given twice is a mistake, not an override."""
    registry: dict[str, Scenario] = {}
    for entry in entries:
        if entry.name in registry:
            raise ValueError(f"scenario {entry.name!r} is registered twice; give each entry its own name")
        registry[entry.name] = entry
    return registry


SCENARIOS: dict[str, Scenario] = index(_ENTRIES)


def names() -> tuple[str, ...]:
    """Every scenario name, in registry order (the CLI's ``--scenario`` choices)."""
    return tuple(SCENARIOS)


def get(name: str) -> Scenario:
    """The scenario called ``name``; an unknown name is an error listing the known ones."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise UnknownScenarioError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}") from None
