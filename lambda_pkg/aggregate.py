"""Aggregation of flow records into the per-VPC report: linear, bounded, exact headlines.

Two stages. The *kernel* does the least possible per line: split, a few dictionary
lookups, and one count into a group keyed by what the rules need to know of a flow
(source, destination's place, source-port class, destination port, protocol, action); an
accepted reply from a port every side serves gives up its destination port, so the ephemeral
ports of replies do not multiply the groups. Values are validated once per distinct value
(addresses, ports, protocols) or in bulk (packets, bytes) when the chunk ends. *Stage B*
then classifies each distinct group once (reply, inbound, unexpected, unsolicited, scan) and
adds it, weighted, to the report's counters. The Insights engine's weighted rows and the
lines the kernel cannot take as they are (a chunk with any invalid value is parsed again
line by line by ``RecordParser``) become groups too, so every path shares stage B.

Cost is O(lines) plus O(distinct groups), whoever chose the ports and sources. Headline
fields are exact; the evidence tables behind per-port sources and scan candidates stop
growing at EVIDENCE_ENTRIES entries in all (``truncated`` names the tables that stopped), and the report lists the
EVIDENCE_PORTS busiest unexpected ports one by one and sums the rest, so no scan, however
wide, makes the report or the alert text grow without bound.
"""

from __future__ import annotations

import gc
import heapq
import ipaddress
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from lambda_pkg.detect import OTHER_PORTS
from lambda_pkg.records import (
    Addresses,
    MALFORMED_REASONS,
    MAX_PORT,
    MAX_PROTOCOL,
    STATUS_OK,
    FlowLogFormat,
    FlowRecord,
    RecordParser,
    is_number,
)
from lambda_pkg.settings import AnalyzerConfig, VpcSpec
from lambda_pkg.window import Window

TOP_N = 10
EPHEMERAL_MIN = 1024
PORT_PROTOCOLS = frozenset({"6", "17"})  # TCP, UDP: the protocols whose ports mean services
SCAN_CANDIDATE_MIN = 5  # sources touching fewer distinct ports and hosts are not reported
EVIDENCE_N = 5
# Unexpected ports reported with their top sources (the busiest first); the rest are summed.
EVIDENCE_PORTS = 50
# Talker addresses and ports a report lists at most, each (lambda_pkg/talkers.py learns them).
TALKERS_LISTED = 256
# Entries at most in all evidence tables together ((port, source) counts, (source, port) and
# (source, host) sets): about 100 MB; past it, known entries still count and new ones are dropped.
EVIDENCE_ENTRIES = 2_000_000
# Lines the kernel takes at once (validated, and re-parsed line by line if any value is bad).
CHUNK_LINES = 65_536
# Distinct groups counted before they are classified (and their memory released).
PENDING_GROUPS = 262_144
REJECT, ACCEPT = "REJECT", "ACCEPT"
# An accepted reply's destination port, folded: the ephemeral port says nothing more.
REPLY_PORT = "reply"

# Where an address sits relative to the peering.
IN_SELF, IN_PEER, EXTERNAL, IPV6, INVALID = "self", "peer", "external", "ipv6", "invalid"
# A source port's class: a port some side serves (replies come from there) or an ephemeral one.
LOW, SERVED_SELF, SERVED_PEER, SERVED_BOTH, EPHEMERAL = "low", "self", "peer", "both", "ephemeral"

# source, destination place (a rejected flow: its address), sport class, dport, protocol, action
Group = tuple[str, str, str, str, str, str]
# What the kernel picks from each line, in this order.
KERNEL_FIELDS = ("srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes", "action", "log-status",
                 "start")


_LEADING_ZERO = re.compile(r" 0[0-9]")
# A number above MAX_PORT among space-separated canonical numbers.
_ABOVE_MAX_PORT = re.compile(r"(?<![0-9])(?:6553[6-9]|655[4-9][0-9]|65[6-9][0-9]{2}|6[6-9][0-9]{3}|[7-9][0-9]{4}|[0-9]{6,})")
_DIGITS_AND_SPACE = b" 0123456789"


def canonical_numbers(values: list[str], *, ports: bool = False) -> bool:
    """``is_number`` (and, for ``ports``, at most MAX_PORT) for every value, in a few C-level
    passes over one joined string instead of a call per value."""
    if not values:
        return True
    joined = " " + " ".join(values)
    return (joined.isascii() and not joined.encode().translate(None, _DIGITS_AND_SPACE)
            and "  " not in joined and joined[-1] != " " and _LEADING_ZERO.search(joined) is None
            and not (ports and _ABOVE_MAX_PORT.search(joined)))


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector while tables of tuples and strings grow.

    None of them form cycles (reference counting frees them), but each new tuple counts
    toward a collection, and every collection walks all the live ones: on an hour that is
    all distinct flows (a scan), that was a third of the time. The previous state returns.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def top(counter: Mapping[Any, int], n: int = TOP_N) -> list[list[Any]]:
    """``[[key, count], ...]``: count descending, then key ascending as text (O(len log n))."""
    return [[k, v] for k, v in heapq.nsmallest(n, counter.items(), key=lambda kv: (-kv[1], str(kv[0])))]


# A destination port's kind: (below EPHEMERAL_MIN, served by self, served by peer).
PortKind = tuple[bool, bool, bool]
HIGH_KIND: PortKind = (False, False, False)  # an ephemeral port nobody serves
REPLY_KIND = "reply"  # the folded port of an accepted reply


@dataclass(frozen=True)
class FlowClass:
    """Which rules a group of flows satisfies, worked out once per distinct combination of
    what the rules look at (a few dozen per hour), not once per flow or per group."""

    rejected: bool
    external: bool  # from outside both VPC CIDRs (IPv6 included)
    ipv6: bool
    accepted_to_peer: bool  # left toward the peer: the peer's log should show it too
    port_proto: bool  # TCP or UDP, whose ports mean services
    unsolicited: bool  # from the internet into this VPC, not a reply
    unexpected: bool  # into this VPC, not a reply, on a port it does not serve
    unexpected_to_peer: bool  # from this VPC into the peer on a port the peer does not serve
    scan: bool  # a rejected TCP/UDP flow: a probe, if a source has many
    talks: bool  # accepted, between the two VPCs (either way, replies too): its source is a talker
    serves: bool  # such a TCP/UDP flow into this VPC that is not a reply: its port is a service talked to

    evidence: bool  # unexpected, unexpected_to_peer or scan: evidence tables are kept for it

    @classmethod
    def of(cls, src_place: str, dst_place: str, sport_class: str, dport_kind: PortKind | str, protocol: str,
           action: str) -> FlowClass:
        rejected = action == REJECT
        port_proto = protocol in PORT_PROTOCOLS
        reply = port_proto and _is_reply(src_place, sport_class, dport_kind)
        inbound = port_proto and not reply and dst_place == IN_SELF and src_place != IN_SELF
        toward_peer = port_proto and not reply and src_place == IN_SELF and dst_place == IN_PEER
        # The stack gives neither VPC IPv6 addresses: an IPv6 flow is from outside both, and its
        # direction cannot be told from CIDRs, so any that is not a reply is unsolicited.
        unsolicited = (inbound and src_place == EXTERNAL) or (port_proto and not reply and src_place == IPV6)
        unexpected = inbound and not dport_kind[1]
        unexpected_to_peer = toward_peer and not dport_kind[2]
        scan = port_proto and rejected
        talks = not rejected and {src_place, dst_place} == {IN_SELF, IN_PEER}
        return cls(
            rejected=rejected,
            external=src_place in (EXTERNAL, IPV6),  # DESIGN: a source in neither VPC CIDR
            ipv6=src_place == IPV6,
            accepted_to_peer=not rejected and dst_place == IN_PEER,
            port_proto=port_proto,
            unsolicited=unsolicited,
            unexpected=unexpected,
            unexpected_to_peer=unexpected_to_peer,
            scan=scan,
            talks=talks,
            serves=talks and port_proto and not reply and dst_place == IN_SELF,
            evidence=scan or unexpected or unexpected_to_peer,
        )


def _is_reply(src_place: str, sport_class: str, dport_kind: PortKind | str) -> bool:
    """Return traffic: to an ephemeral port, from a port its source side serves."""
    if dport_kind == REPLY_KIND:
        return True
    if sport_class == EPHEMERAL or dport_kind[0]:
        return False
    if sport_class in (LOW, SERVED_BOTH):
        return True
    if src_place == IN_PEER:
        return sport_class == SERVED_PEER
    if src_place == IN_SELF:
        return sport_class == SERVED_SELF
    return True  # from outside: any port either side serves


class _Chunk:
    """What the kernel gathered from one chunk, before it is validated and added."""

    def __init__(self) -> None:
        self.groups: dict[Group, int] = {}
        self.ports: dict[str, int] = {}
        self.destinations: dict[str, str] = {}  # accepted flows' destinations and their place
        self.packets: list[str] = []
        self.bytes: list[str] = []
        self.starts: list[str] = []
        self.ephemeral_sports: list[str] = []
        self.statuses: dict[str, int] = {}
        self.out_of_window = 0
        self.slow: list[str] = []  # lines RecordParser takes one by one


class VpcTraffic:
    """Aggregates the flow records of one VPC's log group for one window."""

    def __init__(self, spec: VpcSpec, peer: VpcSpec, window: Window, fmt: FlowLogFormat | None = None,
                 addresses: Addresses | None = None) -> None:
        self.spec = spec
        self.peer = peer
        self.window = window
        self.format = fmt or FlowLogFormat()
        self.addresses = addresses or Addresses()
        self.parser = RecordParser(self.format, self.addresses)
        fields = self.format.fields
        self._n = len(fields)
        self._at = {name: fields.index(name) for name in fields}
        self._pick = itemgetter(*(self._at.get(name, 0) for name in KERNEL_FIELDS))
        # Only the last field carries the line end; strip it unless that field is log-status.
        self._strip = fields[-1] != "log-status"
        self._places: dict[str, str] = {}
        self._self_ports = frozenset(map(str, spec.allowed_ports))
        self._peer_ports = frozenset(map(str, peer.allowed_ports))
        # Source ports that are not ephemeral, by class; any other port is ephemeral (or invalid).
        # Small on purpose: the kernel looks every source port up here.
        self._sport_class = {str(p): LOW for p in range(EPHEMERAL_MIN)}
        for port in self._self_ports | self._peer_ports:
            self._sport_class[port] = self._classify_sport(port)
        self._pending: list[str] = []
        self._pending_times: list[int] = []
        self._rows: list[tuple[FlowRecord, int]] = []
        self._groups: dict[Group, int] = {}  # counted, not yet classified (stage B)

        # Source and destination ports by what they say: (below 1024, served by self, served by peer).
        self._port_kind = {port: (int(port) < EPHEMERAL_MIN, port in self._self_ports, port in self._peer_ports)
                           for port in self._sport_class}

        # Counted in the kernel.
        self.lines = 0
        self.out_of_window = 0
        self.bytes = 0
        self.packets = 0
        self.by_status: Counter[str] = Counter()
        self.malformed: Counter[str] = Counter()
        self.destinations: set[str] = set()
        self.ports: Counter[str] = Counter()  # accepted replies' ports (the others are in _by_port)
        # Classified groups (stage B), keyed by what the report is derived from. A class is
        # the set of rules a group satisfies (``FlowClass``), numbered in order of appearance.
        self._class_ids: dict[tuple[Any, ...], int] = {}
        self._classes: list[FlowClass] = []
        self._by_class: Counter[int] = Counter()
        self._by_source: list[dict[str, int]] = []  # per class: source -> flows
        self._by_port: list[dict[str, int]] = []  # per class: destination port -> flows
        # Evidence, nested so the report reads only what it shows; EVIDENCE_ENTRIES entries in all.
        self._unexpected: dict[str, Counter[str]] = {}  # port -> source -> flows (unexpected into self)
        self._to_peer: dict[str, Counter[str]] = {}  # port -> source -> flows (unexpected into the peer)
        self._scan_ports: dict[str, set[str]] = {}  # source -> ports of its rejected TCP/UDP flows
        self._scan_hosts: dict[str, set[str]] = {}  # source -> hosts of its rejected TCP/UDP flows
        self._room = EVIDENCE_ENTRIES
        self.truncated: set[str] = set()
        self._summary: Summary | None = None  # set by adopt(): the report comes from it

    # -- classification ---------------------------------------------------------------

    def place(self, address: str) -> str:
        """IN_SELF, IN_PEER, EXTERNAL (IPv4 outside both), IPV6 or INVALID; cached."""
        place = self._places.get(address)
        if place is None:
            version = self.addresses.of(address)
            if version == 0:
                place = INVALID
            elif version == 6:
                place = IPV6
            else:
                ip = ipaddress.IPv4Address(address)
                place = IN_SELF if ip in self.spec.cidr else IN_PEER if ip in self.peer.cidr else EXTERNAL
            self._places[address] = place
        return place

    def _classify_sport(self, sport: str) -> str:
        if int(sport) < EPHEMERAL_MIN:
            return LOW
        own, peer = sport in self._self_ports, sport in self._peer_ports
        return SERVED_BOTH if own and peer else SERVED_SELF if own else SERVED_PEER if peer else EPHEMERAL

    # -- feeding ----------------------------------------------------------------------

    def add_line(self, line: str, timestamp_ms: int) -> None:
        """One raw flow-log event (a CloudWatch Logs event and its time); chunked internally."""
        self._pending.append(line)
        self._pending_times.append(timestamp_ms)
        if len(self._pending) >= CHUNK_LINES:
            self.flush()

    def add_lines(self, lines: Sequence[str], timestamps_ms: Sequence[int] | None = None) -> None:
        """Many lines at once. With ``timestamps_ms`` (event times) the window applies to those;
        without, to each record's ``start`` field (flow-log files, whose lines carry no event time)."""
        if timestamps_ms is None and "start" not in self._at:
            raise ValueError("records can only be windowed by their start field, which this flow-log format lacks")
        for i in range(0, len(lines), CHUNK_LINES):
            self._ingest_lines(lines[i:i + CHUNK_LINES], None if timestamps_ms is None else timestamps_ms[i:i + CHUNK_LINES])

    def add(self, record: FlowRecord, weight: int = 1) -> None:
        """A parsed record; ``weight`` > 1 for grouped rows (bytes/packets are their totals)."""
        self._rows.append((record, weight))
        if len(self._rows) >= CHUNK_LINES:
            self.flush()

    def flush(self) -> None:
        """Aggregate what is buffered."""
        if self._pending:
            lines, times = self._pending, self._pending_times
            self._pending, self._pending_times = [], []
            self._ingest_lines(lines, times)
        if self._rows:
            rows, self._rows = self._rows, []
            self._ingest_rows(rows)

    def _ingest_lines(self, lines: Sequence[str], times: Sequence[int] | None) -> None:
        with _no_cycle_collection():
            self._ingest_chunk(lines, times)

    def _ingest_chunk(self, lines: Sequence[str], times: Sequence[int] | None) -> None:
        self.lines += len(lines)
        if times is not None:
            lo, hi = self.window.start_ms, self.window.end_ms
            kept = [line for line, t in zip(lines, times) if lo <= t < hi]
            self.out_of_window += len(lines) - len(kept)
            lines = kept
        by_start = times is None
        chunk = self._kernel(lines, by_start)
        bad = self._invalid_values(chunk, by_start)
        if bad:
            # Some value is not what it seemed: again, with every line holding one set aside.
            chunk = self._kernel(lines, by_start, frozenset(bad))
            if self._invalid_values(chunk, by_start):  # cannot happen; never trust a chunk that fails twice
                chunk = _Chunk()
                chunk.slow = list(lines)
        self._add_chunk(chunk)
        for line in chunk.slow:
            self._ingest_one(line, by_start)
        self.flush()

    def _kernel(self, lines: Sequence[str], by_start: bool, bad: frozenset[str] | None = None) -> _Chunk:
        """The per-line pass: as little as possible, everything else per distinct value later.

        Only small tables are touched per line (a lookup in a large one costs a cache miss,
        which is most of the time here). A rejected flow keeps its destination address in its
        group (scans need it; rejects are few, or all alike), the others keep its place.
        Values are taken on trust and checked per distinct value afterwards: ``bad`` holds the
        values that failed, and any line containing one goes to the slow list.
        """
        chunk = _Chunk()
        n, pick, strip = self._n, self._pick, self._strip
        lo_s, hi_s = map(str, self.window.seconds)
        width = len(lo_s) if len(lo_s) == len(hi_s) else -1
        groups, ports, statuses, destinations = chunk.groups, chunk.ports, chunk.statuses, chunk.destinations
        groups_get, ports_get, statuses_get, destinations_get = groups.get, ports.get, statuses.get, destinations.get
        packets, nbytes, starts = chunk.packets.append, chunk.bytes.append, chunk.starts.append
        ephemeral, slow = chunk.ephemeral_sports.append, chunk.slow.append
        sport_class = self._sport_class
        sport_class_get = sport_class.get
        ok, ok_nl = STATUS_OK, STATUS_OK + "\n"  # a file's lines end in a newline, an event's do not
        foldable = (LOW, SERVED_BOTH)
        out = 0
        for line in lines:
            if strip:
                line = line.rstrip("\r\n")
            parts = line.split(" ")
            if len(parts) != n or (bad is not None and not bad.isdisjoint(parts)):
                slow(line)
                continue
            src, dst, sport, dport, proto, pkts, octets, action, status, start = pick(parts)
            if by_start:
                if len(start) != width or not lo_s <= start < hi_s:  # canonical digits compare as numbers
                    if is_number(start):
                        out += 1
                    else:
                        slow(line)
                    continue
                starts(start)  # in the window if it is a number: checked in bulk
            if status != ok and status != ok_nl and status.rstrip("\r\n") != ok:
                statuses[status] = statuses_get(status, 0) + 1
                continue
            if action != ACCEPT and action != REJECT:
                slow(line)  # found out here, so the rest of the chunk need not be read again
                continue
            packets(pkts)
            nbytes(octets)
            cls = sport_class_get(sport)
            if cls is None:
                cls = EPHEMERAL
                ephemeral(sport)
            elif cls in foldable and action == ACCEPT and len(dport) > 3 and dport not in sport_class:
                # An accepted reply: its ephemeral port counts in the port breakdown, nowhere else.
                ports[dport] = ports_get(dport, 0) + 1
                dport = REPLY_PORT
            if action == REJECT:
                key = (src, dst, cls, dport, proto, REJECT)
            else:
                key = (src, destinations_get(dst) or self._destination(dst, destinations), cls, dport, proto, action)
            groups[key] = groups_get(key, 0) + 1
        chunk.out_of_window = out
        return chunk

    def _destination(self, address: str, destinations: dict[str, str]) -> str:
        destinations[address] = place = self.place(address)
        return place

    def _invalid_values(self, chunk: _Chunk, by_start: bool) -> set[str]:
        """Every value the kernel took on trust, checked once per distinct value or in bulk:
        the set of those that are not valid (empty: the chunk is good)."""
        bad: set[str] = set()
        columns = (chunk.packets, chunk.bytes, chunk.starts) if by_start else (chunk.packets, chunk.bytes)
        for column in columns:
            if not canonical_numbers(column):
                bad.update(v for v in set(column) if not is_number(v))
        if not canonical_numbers(chunk.ephemeral_sports, ports=True):
            bad.update(p for p in set(chunk.ephemeral_sports) if not (is_number(p) and int(p) <= MAX_PORT))
        groups = chunk.groups
        dports = chunk.ports.keys() | set(map(itemgetter(3), groups))
        dports.discard(REPLY_PORT)
        if not canonical_numbers(list(dports), ports=True):
            bad.update(p for p in dports if not (is_number(p) and int(p) <= MAX_PORT))
        bad.update(a for a, place in chunk.destinations.items() if place == INVALID)
        bad.update(p for p in set(map(itemgetter(4), groups)) if not (is_number(p) and int(p) <= MAX_PROTOCOL))
        place = self.place
        bad.update(a for a in set(map(itemgetter(0), groups)) if place(a) == INVALID)
        bad.update(a for a in {key[1] for key in groups if key[5] == REJECT} if place(a) == INVALID)
        return bad

    def _add_chunk(self, chunk: _Chunk) -> None:
        self.out_of_window += chunk.out_of_window
        for status, count in chunk.statuses.items():
            status = status.rstrip("\r\n")
            if status in ("NODATA", "SKIPDATA"):
                self.by_status[status] += count
            else:
                self.malformed["bad_log_status"] += count
        self.ports.update(chunk.ports)
        self.destinations.update(chunk.destinations)
        self.packets += sum(map(int, chunk.packets))
        self.bytes += sum(map(int, chunk.bytes))
        self._pend(chunk.groups)

    def _ingest_one(self, line: str, by_start: bool) -> None:
        """One line through RecordParser; with ``by_start``, windowed by its start field first."""
        if by_start:
            parts = line.rstrip("\r\n").split(" ")
            if len(parts) == self._n:
                start = parts[self._at["start"]]
                if not is_number(start):
                    self.malformed["bad_number"] += 1
                    return
                lo, hi = self.window.seconds
                if not lo <= int(start) < hi:
                    self.out_of_window += 1
                    return
        parsed = self.parser.parse(line)
        if isinstance(parsed, str):
            self.malformed[parsed] += 1
            return
        self._rows.append((parsed, 1))

    def _ingest_rows(self, rows: list[tuple[FlowRecord, int]]) -> None:
        """Weighted records (the Insights engine's rows, or lines parsed alone) as groups."""
        groups: dict[Group, int] = {}
        for record, weight in rows:
            if record.log_status != STATUS_OK:
                self.by_status[record.log_status] += weight
                continue
            dport = str(record.dstport)
            sport = str(record.srcport)
            cls = self._sport_class.get(sport) or EPHEMERAL
            self.packets += record.packets
            self.bytes += record.bytes
            if cls in (LOW, SERVED_BOTH) and record.action == ACCEPT and record.dstport >= EPHEMERAL_MIN \
                    and dport not in self._sport_class:
                self.ports[dport] += weight
                dport = REPLY_PORT
            if record.action == REJECT:
                where = record.dstaddr
            else:
                where = self.place(record.dstaddr)
                self.destinations.add(record.dstaddr)
            key = (record.srcaddr, where, cls, dport, str(record.protocol), record.action)
            groups[key] = groups.get(key, 0) + weight
        self._pend(groups)

    def _pend(self, groups: dict[Group, int]) -> None:
        """Merge a chunk's groups into those awaiting stage B: a group seen in every chunk is
        classified once, and PENDING_GROUPS bounds what waits."""
        pending = self._groups
        if not pending:
            self._groups = pending = groups
        else:
            get = pending.get
            for key, count in groups.items():
                pending[key] = get(key, 0) + count
        if len(pending) >= PENDING_GROUPS:
            self._classify()

    def _classify(self) -> None:
        groups, self._groups = self._groups, {}
        self._add_groups(groups)

    # -- stage B: each distinct group once --------------------------------------------

    def _class_id(self, key: tuple[Any, ...]) -> int:
        """The number of the class of flows with ``key`` = (source place, destination place,
        source-port class, destination-port kind, protocol, action)."""
        cid = self._class_ids.get(key)
        if cid is None:
            cid = self._class_ids[key] = len(self._classes)
            self._classes.append(FlowClass.of(*key))
            self._by_source.append({})
            self._by_port.append({})
        return cid

    def _add_groups(self, groups: dict[Group, int]) -> None:
        """Stage B: each distinct group once, into the tables the report is derived from.

        Every table here is keyed by a string or a small integer (hashes cached, no tuple
        built per group), and the evidence tables are filled inline: on an hour of distinct
        flows (a scan) this loop is most of the time, and a call per group shows.
        """
        places_get, place = self._places.get, self.place
        kind_get = self._port_kind.get
        ids_get, class_id = self._class_ids.get, self._class_id
        classes, by_class, by_source, by_port = self._classes, self._by_class, self._by_source, self._by_port
        scan_ports, scan_hosts, unexpected, to_peer = self._scan_ports, self._scan_hosts, self._unexpected, self._to_peer
        destinations = self.destinations
        room = self._room
        for (src, where, sport_class, dport, proto, action), weight in groups.items():
            src_place = places_get(src) or place(src)
            if action == REJECT:  # a rejected flow's group holds its destination address
                dst_place = places_get(where) or place(where)
                destinations.add(where)
            else:
                dst_place = where
            key = (src_place, dst_place, sport_class, REPLY_KIND if dport == REPLY_PORT else kind_get(dport, HIGH_KIND),
                   proto, action)
            cid = ids_get(key)
            if cid is None:
                cid = class_id(key)
            by_class[cid] += weight
            table = by_source[cid]
            table[src] = table.get(src, 0) + weight
            if dport == REPLY_PORT:  # accepted replies' ports were counted as they came
                continue
            table = by_port[cid]
            table[dport] = table.get(dport, 0) + weight
            c = classes[cid]
            if not c.evidence:
                continue
            if c.scan:
                for sets, value, name in ((scan_ports, dport, "scan_ports"), (scan_hosts, where, "scan_hosts")):
                    known = sets.get(src)
                    if known is None:
                        known = sets[src] = set()
                    if value not in known:
                        if room > 0:
                            known.add(value)
                            room -= 1
                        else:
                            self.truncated.add(name)
            for flag, tallies, name in ((c.unexpected, unexpected, "unexpected_ports"),
                                        (c.unexpected_to_peer, to_peer, "unexpected_ports_to_peer")):
                if flag:
                    counts = tallies.get(dport)
                    if counts is None:
                        counts = tallies[dport] = Counter()
                    if src in counts:
                        counts[src] += weight
                    elif room > 0:
                        counts[src] = weight
                        room -= 1
                    else:
                        self.truncated.add(name)
        self._room = room

    def _remember_all(self, table: dict[str, set[str]], outer: str, inners: set[str], name: str) -> None:
        """``inners`` into ``outer``'s set: at once (a C-level union) when the budget holds them all,
        else one by one until it is spent (and ``name`` is truncated)."""
        known = table.get(outer)
        if known is None:
            known = table[outer] = set()
        if len(inners) <= self._room:
            before = len(known)
            known |= inners
            self._room -= len(known) - before
            return
        for inner in inners:
            if inner in known:
                continue
            if self._room > 0:
                known.add(inner)
                self._room -= 1
            else:
                self.truncated.add(name)

    def _tally_all(self, table: dict[str, Counter[str]], outer: str, counts: Counter[str], name: str) -> None:
        """Add ``counts`` under ``outer``; new entries only while the budget lasts."""
        mine = table.get(outer)
        if mine is None:
            mine = table[outer] = Counter()
        if len(counts) <= self._room:
            before = len(mine)
            mine.update(counts)
            self._room -= len(mine) - before
            return
        for inner, count in counts.items():
            if inner in mine:
                mine[inner] += count
            elif self._room > 0:
                mine[inner] = count
                self._room -= 1
            else:
                self.truncated.add(name)

    # -- partial aggregations -------------------------------------------------------

    # What a partial aggregation carries besides its classified tables; the rest is configuration or a cache.
    _SUMS = ("lines", "out_of_window", "bytes", "packets")
    _COUNTERS = ("by_status", "malformed", "ports")

    def settle(self) -> VpcTraffic:
        """Aggregate everything buffered (before the aggregation is sent to another process)."""
        with _no_cycle_collection():
            self.flush()
            self._classify()
        return self

    def __getstate__(self) -> dict[str, Any]:
        self.settle()
        state = dict(self.__dict__)
        state["_places"] = {}  # caches: cheaper rebuilt than sent
        state["addresses"] = Addresses()
        state["parser"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.parser = RecordParser(self.format, self.addresses)

    def merge(self, other: VpcTraffic) -> None:
        """Add the aggregation of other lines of the same log and window (a file read in parts)."""
        if (other.spec, other.peer, other.window) != (self.spec, self.peer, self.window):
            raise ValueError("only aggregations of the same VPC and window merge")
        other.settle()
        self.settle()
        for name in self._SUMS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in self._COUNTERS:
            counter = getattr(self, name)
            for key, count in getattr(other, name).items():
                counter[key] += count
        self.destinations |= other.destinations
        ids = [self._class_id(key) for key in other._class_ids]  # other's class numbers in ours
        for cid, count in other._by_class.items():
            self._by_class[ids[cid]] += count
        for mine, theirs in ((self._by_source, other._by_source), (self._by_port, other._by_port)):
            for cid, counts in enumerate(theirs):
                table = mine[ids[cid]]
                for value, count in counts.items():
                    table[value] = table.get(value, 0) + count
        for mine, theirs, name in ((self._scan_ports, other._scan_ports, "scan_ports"),
                                   (self._scan_hosts, other._scan_hosts, "scan_hosts")):
            for outer, inners in theirs.items():
                self._remember_all(mine, outer, inners, name)
        for mine, theirs, name in ((self._unexpected, other._unexpected, "unexpected_ports"),
                                   (self._to_peer, other._to_peer, "unexpected_ports_to_peer")):
            for outer, counts in theirs.items():
                self._tally_all(mine, outer, counts, name)
        self.truncated |= other.truncated

    # -- result -----------------------------------------------------------------------

    def adopt(self, summary: Summary) -> None:
        """Report from ``summary`` (the Insights plan's tables of a bigger hour) instead of
        from records added one by one; nothing may have been added."""
        if self.lines or self._by_class or self._rows or self._pending:
            raise ValueError("a summary replaces the records of an aggregation; this one already has some")
        self._summary = summary

    def report(self) -> dict[str, Any]:
        """The per-VPC report (DESIGN "Contracts" fields, plus evidence for the detections)."""
        self.settle()
        s = self._summary
        if s is None:
            t = ReportTables.of(self)
            widths = {src: (len(self._scan_ports.get(src, ())), len(self._scan_hosts.get(src, ())))
                      for src in self._scan_ports.keys() | self._scan_hosts.keys()}
            samples = _LowestPorts(self._scan_ports)
            s = Summary(t, self.bytes, self.packets, len(self.destinations), self._unexpected, self._to_peer,
                        widths, samples)
        t = s.tables
        report = {
            "vpc": self.spec.label,
            "peer": self.peer.label,
            "peer_allowed_ports": sorted(self.peer.allowed_ports),
            "log_group": self.spec.log_group,
            "cidr": str(self.spec.cidr),
            "allowed_ports": sorted(self.spec.allowed_ports),
            "total_requests": t.requests,
            "total_bytes": s.bytes,
            "total_packets": s.packets,
            "unique_sources": len(t.sources),
            "unique_destinations": s.destinations,
            "rejected_connections": t.rejected,
            "accepted_connections": t.requests - t.rejected,
            "accepted_to_peer": t.accepted_to_peer,
            "external_traffic_count": t.external,
            "ipv6_requests": t.ipv6,
            "top_source_ips": top(t.sources),
            "port_breakdown": {p: c for p, c in sorted(t.ports.items(), key=lambda pc: int(pc[0]))},
            "records_by_status": dict(sorted((k, v) for k, v in t.by_status.items() if v)),
            "malformed_records": {r: self.malformed[r] for r in MALFORMED_REASONS if self.malformed[r]},
            "out_of_window_records": self.out_of_window,
            "lines_read": self.lines,
            "evidence": {
                "unsolicited_external": {
                    "count": t.unsolicited_external,
                    "top_sources": top(t.unsolicited_sources, EVIDENCE_N),
                    "top_ports": top(Counter({int(p): c for p, c in t.unsolicited_ports.items()}), EVIDENCE_N),
                },
                "unexpected_ports": by_port(t.unexpected, s.unexpected_sources),
                "unexpected_ports_to_peer": by_port(t.unexpected_to_peer, s.to_peer_sources),
                "rejections": {
                    "top_sources": top(t.rejected_sources, EVIDENCE_N),
                    "top_ports": top(Counter({int(p): c for p, c in t.rejected_ports.items()}), EVIDENCE_N),
                },
                "scan_candidates": t.scan_candidates(s.widths, s.samples),
                "truncated": sorted(self.truncated),
            },
            "talkers": talkers(t),
        }
        if s.approximate:
            # Fields that are bounds or samples, not counts, each with what it means instead.
            report["approximate"] = dict(sorted(s.approximate.items()))
        return report


class _LowestPorts(Mapping[str, list[int]]):
    """source -> the lowest ports it probed, worked out only for the sources a report lists."""

    def __init__(self, ports: dict[str, set[str]]) -> None:
        self._ports = ports

    def __getitem__(self, source: str) -> list[int]:
        return heapq.nsmallest(EVIDENCE_N * 2, map(int, self._ports[source]))

    def __iter__(self) -> Iterator[str]:
        return iter(self._ports)

    def __len__(self) -> int:
        return len(self._ports)


@dataclass
class Summary:
    """What a report is derived from: the classified tables, the sums and the evidence."""

    tables: ReportTables
    bytes: int
    packets: int
    destinations: int
    unexpected_sources: Mapping[str, Counter[str]]  # port -> sources (unexpected into this VPC)
    to_peer_sources: Mapping[str, Counter[str]]  # port -> sources (unexpected into the peer)
    widths: Mapping[str, tuple[int, int]]  # source -> (distinct ports, distinct hosts) of its rejected TCP/UDP flows
    samples: Mapping[str, list[int]] = field(default_factory=dict)  # source -> the lowest of those ports
    approximate: dict[str, str] = field(default_factory=dict)  # report field -> what it is instead of exact


class ReportTables:
    """The report's counters, derived from the classified tables in one pass over each:
    O(distinct (value, class) entries), however the flows were spread over them."""
    def __init__(self) -> None:
        self.requests = self.rejected = self.external = self.ipv6 = 0
        self.accepted_to_peer = self.unsolicited_external = 0
        self.by_status: Counter[str] = Counter()
        self.sources: Counter[str] = Counter()
        self.rejected_sources: Counter[str] = Counter()
        self.unsolicited_sources: Counter[str] = Counter()
        self.port_records: Counter[str] = Counter()  # TCP/UDP records per source
        self.port_rejects: Counter[str] = Counter()
        self.ports: Counter[str] = Counter()
        self.rejected_ports: Counter[str] = Counter()
        self.unsolicited_ports: Counter[str] = Counter()
        self.unexpected: Counter[str] = Counter()
        self.unexpected_to_peer: Counter[str] = Counter()
        self.talker_sources: Counter[str] = Counter()  # flows between the VPCs per source
        self.talker_ports: Counter[str] = Counter()  # requests from the peer per service port of this VPC

    @classmethod
    def of(cls, traffic: VpcTraffic) -> ReportTables:
        t = cls()
        classes = traffic._classes
        for cid, count in traffic._by_class.items():
            c = classes[cid]
            t.requests += count
            t.rejected += count if c.rejected else 0
            t.external += count if c.external else 0
            t.ipv6 += count if c.ipv6 else 0
            t.accepted_to_peer += count if c.accepted_to_peer else 0
            t.unsolicited_external += count if c.unsolicited else 0
        t.by_status.update(traffic.by_status)
        if t.requests:
            t.by_status[STATUS_OK] += t.requests
        for cid, counts in enumerate(traffic._by_source):
            c = classes[cid]
            t.sources.update(counts)
            if c.rejected:
                t.rejected_sources.update(counts)
            if c.unsolicited:
                t.unsolicited_sources.update(counts)
            if c.port_proto:
                t.port_records.update(counts)
                if c.rejected:
                    t.port_rejects.update(counts)
            if c.talks:
                t.talker_sources.update(counts)
        t.ports.update(traffic.ports)
        for cid, counts in enumerate(traffic._by_port):
            c = classes[cid]
            t.ports.update(counts)
            for flag, table in ((c.rejected, t.rejected_ports), (c.unsolicited, t.unsolicited_ports),
                                (c.unexpected, t.unexpected), (c.unexpected_to_peer, t.unexpected_to_peer),
                                (c.serves, t.talker_ports)):
                if flag:
                    table.update(counts)
        return t

    def scan_candidates(self, widths: Mapping[str, tuple[int, int]],
                        samples: Mapping[str, list[int]]) -> list[dict[str, Any]]:
        """Sources touching many distinct ports or hosts with rejected flows, widest first."""
        wide = [s for s, w in widths.items() if max(w) >= SCAN_CANDIDATE_MIN]
        ranked = sorted(wide, key=lambda s: (-max(widths[s]), s))[:EVIDENCE_N * 2]
        return [
            {"source": s, "distinct_ports": widths[s][0], "distinct_hosts": widths[s][1],
             "records": self.port_records[s], "rejected": self.port_rejects[s],
             "sample_ports": list(samples.get(s, ()))}
            for s in ranked
        ]


def talkers(t: ReportTables) -> dict[str, Any]:
    """Who talked across the peering in the hour: the sources of accepted flows between the VPCs,
    each with its flows (replies included, so a host that answered is one), and this VPC's ports
    the peer opened connections to.
    At most TALKERS_LISTED of each, busiest first (``truncated`` counts the rest), so a sweep of
    new addresses cannot grow the report or the talker state without bound."""
    listed: dict[str, Any] = {"truncated": 0}
    for name, counts, order in (("hosts", t.talker_sources, str), ("ports", t.talker_ports, int)):
        kept = heapq.nsmallest(TALKERS_LISTED, counts.items(), key=lambda kv: (-kv[1], order(kv[0])))
        listed[name] = dict(sorted(kept, key=lambda kv: order(kv[0])))
        listed["truncated"] += len(counts) - len(kept)
    return listed


def busiest_ports(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """The ports a report lists one by one: at most EVIDENCE_PORTS, busiest first, then lowest."""
    return heapq.nsmallest(EVIDENCE_PORTS, counts.items(), key=lambda pc: (-pc[1], int(pc[0])))


def by_port(counts: Counter[str], sources: dict[str, Counter[str]]) -> dict[str, Any]:
    """The busiest ports (``busiest_ports``) with their top sources; the others summed under
    OTHER_PORTS."""
    busiest = busiest_ports(counts)
    table: dict[str, Any] = {
        port: {"count": count, "top_sources": top(sources.get(port, Counter()), EVIDENCE_N)}
        for port, count in sorted(busiest, key=lambda pc: int(pc[0]))
    }
    rest = len(counts) - len(busiest)
    if rest:
        table[OTHER_PORTS] = {"ports": rest, "count": sum(counts.values()) - sum(c for _, c in busiest)}
    return table


def traffic_for(config: AnalyzerConfig, window: Window) -> dict[str, VpcTraffic]:
    """One aggregation per VPC, each knowing its peer, sharing one address cache."""
    a, b = config.vpcs
    addresses = Addresses()
    return {a.label: VpcTraffic(a, b, window, config.log_format, addresses),
            b.label: VpcTraffic(b, a, window, config.log_format, addresses)}
