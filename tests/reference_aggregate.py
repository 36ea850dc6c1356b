"""The test oracle for lambda_pkg/aggregate.py: the straightforward per-record aggregation.

One record at a time, exact (uncapped) evidence tables, no attention to speed: what the
columnar implementation must reproduce. Kept out of lambda_pkg so nothing ships it.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Any

from lambda_pkg.records import (
    MALFORMED_REASONS,
    STATUS_OK,
    FlowRecord,
    RecordParser,
)
from lambda_pkg.settings import AnalyzerConfig, VpcSpec
from lambda_pkg.window import Window

TOP_N = 10
EPHEMERAL_MIN = 1024
PORT_PROTOCOLS = frozenset({6, 17})  # TCP, UDP: the protocols whose ports mean services
SCAN_SET_CAP = 256  # per-source distinct ports/hosts kept; enough to exceed any threshold
SCAN_CANDIDATE_MIN = 5  # sources touching fewer distinct ports and hosts are not reported
EVIDENCE_N = 5

# Where an address sits relative to the peering.
IN_SELF, IN_PEER, EXTERNAL, IPV6, INVALID = "self", "peer", "external", "ipv6", "invalid"


def top(counter: Counter, n: int = TOP_N) -> list[list[Any]]:
    """``[[key, count], ...]``: count descending, then key ascending as text."""
    return [[k, v] for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))[:n]]


class VpcTraffic:
    """Aggregates the flow records of one VPC's log group for one window."""

    def __init__(self, spec: VpcSpec, peer: VpcSpec, window: Window, parser: RecordParser | None = None) -> None:
        self.spec = spec
        self.peer = peer
        self.window = window
        self.parser = parser or RecordParser()
        self._start_ms, self._end_ms = window.start_ms, window.end_ms
        self._places: dict[str, str] = {}
        self._all_allowed = spec.allowed_ports | peer.allowed_ports

        self.lines = 0
        self.by_status: Counter[str] = Counter()
        self.malformed: Counter[str] = Counter()
        self.out_of_window = 0
        self.requests = 0
        self.bytes = 0
        self.packets = 0
        self.rejected = 0
        self.external = 0
        self.ipv6 = 0
        self.sources: Counter[str] = Counter()
        self.destinations: set[str] = set()
        self.ports: Counter[int] = Counter()
        self.rejected_sources: Counter[str] = Counter()
        self.rejected_ports: Counter[int] = Counter()
        self.unsolicited_external = 0
        self.unsolicited_sources: Counter[str] = Counter()
        self.unsolicited_ports: Counter[int] = Counter()
        self.unexpected: Counter[int] = Counter()
        self.unexpected_sources: Counter[tuple[int, str]] = Counter()
        self.unexpected_to_peer: Counter[int] = Counter()
        self.unexpected_to_peer_sources: Counter[tuple[int, str]] = Counter()
        self.accepted_to_peer = 0
        self.talker_sources: Counter[str] = Counter()
        self.talker_ports: Counter[int] = Counter()
        self._scan: dict[str, list[Any]] = {}

    # -- classification ---------------------------------------------------------------

    def place(self, address: str) -> str:
        """IN_SELF, IN_PEER, EXTERNAL (IPv4 outside both), IPV6 or INVALID; cached."""
        place = self._places.get(address)
        if place is None:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                place = INVALID
            else:
                if ip.version == 6:
                    place = IPV6
                elif ip in self.spec.cidr:
                    place = IN_SELF
                elif ip in self.peer.cidr:
                    place = IN_PEER
                else:
                    place = EXTERNAL
            self._places[address] = place
        return place

    def _is_reply(self, src_place: str, sport: int, dport: int) -> bool:
        """Return traffic: to an ephemeral port, from a port a service listens on."""
        if dport < EPHEMERAL_MIN:
            return False
        if src_place == IN_PEER:
            return sport in self.peer.allowed_ports or sport < EPHEMERAL_MIN
        if src_place == IN_SELF:
            return sport in self.spec.allowed_ports or sport < EPHEMERAL_MIN
        return sport < EPHEMERAL_MIN or sport in self._all_allowed

    # -- feeding ----------------------------------------------------------------------

    def add_line(self, line: str, timestamp_ms: int) -> None:
        """One raw flow-log event: window check, parse, aggregate."""
        self.lines += 1
        if not self._start_ms <= timestamp_ms < self._end_ms:
            self.out_of_window += 1
            return
        parsed = self.parser.parse(line)
        if isinstance(parsed, str):
            self.malformed[parsed] += 1
            return
        self.add(parsed)

    def add(self, record: FlowRecord, weight: int = 1) -> None:
        """Aggregate a parsed record; ``weight`` > 1 for grouped rows (bytes/packets are totals)."""
        self.by_status[record.log_status] += weight
        if record.log_status != STATUS_OK:
            return
        src, dst, sport, dport = record.srcaddr, record.dstaddr, record.srcport, record.dstport
        self.requests += weight
        self.bytes += record.bytes
        self.packets += record.packets
        self.sources[src] += weight
        self.destinations.add(dst)
        self.ports[dport] += weight
        rejected = record.action == "REJECT"
        if rejected:
            self.rejected += weight
            self.rejected_sources[src] += weight
            self.rejected_ports[dport] += weight

        src_place = self.place(src)
        if src_place == IPV6:
            self.ipv6 += weight
        dst_place = self.place(dst)
        inbound = dst_place == IN_SELF and src_place != IN_SELF
        if src_place in (EXTERNAL, IPV6):  # a source in neither VPC CIDR
            self.external += weight
        if dst_place == IN_PEER and not rejected:
            # Left this VPC toward the peer: the peer's own log should show it too.
            self.accepted_to_peer += weight
        if src_place == IPV6 and record.protocol in PORT_PROTOCOLS and not self._is_reply(src_place, sport, dport):
            # No VPC has IPv6 addresses of its own: an IPv6 flow that is not a reply is unsolicited.
            self.unsolicited_external += weight
            self.unsolicited_sources[src] += weight
            self.unsolicited_ports[dport] += weight
        if inbound and record.protocol in PORT_PROTOCOLS and not self._is_reply(src_place, sport, dport):
            if src_place == EXTERNAL:
                self.unsolicited_external += weight
                self.unsolicited_sources[src] += weight
                self.unsolicited_ports[dport] += weight
            if dport not in self.spec.allowed_ports:
                self.unexpected[dport] += weight
                self.unexpected_sources[(dport, src)] += weight
        elif (src_place == IN_SELF and dst_place == IN_PEER and record.protocol in PORT_PROTOCOLS
              and dport not in self.peer.allowed_ports and not self._is_reply(src_place, sport, dport)):
            # Headed into the peer on a port the peer does not allow (often rejected here, on egress).
            self.unexpected_to_peer[dport] += weight
            self.unexpected_to_peer_sources[(dport, src)] += weight

        if not rejected and {src_place, dst_place} == {IN_SELF, IN_PEER}:
            # Between the two VPCs, either way: its source talks across the peering.
            self.talker_sources[src] += weight
            if record.protocol in PORT_PROTOCOLS and dst_place == IN_SELF and not self._is_reply(src_place, sport, dport):
                self.talker_ports[dport] += weight

        if record.protocol in PORT_PROTOCOLS:
            scan = self._scan.get(src)
            if scan is None:
                scan = self._scan[src] = [set(), set(), 0, 0]
            scan[2] += weight
            if rejected:
                # A probe shows as rejected flows to many ports or hosts; accepted traffic to
                # many internet hosts (NAT) is not a scan.
                if len(scan[0]) < SCAN_SET_CAP:
                    scan[0].add(dport)
                if len(scan[1]) < SCAN_SET_CAP:
                    scan[1].add(dst)
                scan[3] += weight

    # -- result -----------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The per-VPC report (DESIGN "Contracts" fields, plus evidence for the detections)."""
        scan_candidates = sorted(
            (
                {
                    "source": src,
                    "distinct_ports": len(ports),  # among rejected flows
                    "distinct_hosts": len(hosts),  # among rejected flows
                    "records": records,
                    "rejected": rejects,
                    "sample_ports": sorted(ports)[:EVIDENCE_N * 2],
                }
                for src, (ports, hosts, records, rejects) in self._scan.items()
                if len(ports) >= SCAN_CANDIDATE_MIN or len(hosts) >= SCAN_CANDIDATE_MIN
            ),
            key=lambda s: (-max(s["distinct_ports"], s["distinct_hosts"]), s["source"]),
        )
        def by_port(counts: Counter[int], sources: Counter[tuple[int, str]]) -> dict[str, Any]:
            return {
                str(port): {
                    "count": count,
                    "top_sources": top(Counter({s: c for (p, s), c in sources.items() if p == port}), EVIDENCE_N),
                }
                for port, count in sorted(counts.items())
            }

        return {
            "vpc": self.spec.label,
            "peer": self.peer.label,
            "peer_allowed_ports": sorted(self.peer.allowed_ports),
            "log_group": self.spec.log_group,
            "cidr": str(self.spec.cidr),
            "allowed_ports": sorted(self.spec.allowed_ports),
            "total_requests": self.requests,
            "total_bytes": self.bytes,
            "total_packets": self.packets,
            "unique_sources": len(self.sources),
            "unique_destinations": len(self.destinations),
            "rejected_connections": self.rejected,
            "accepted_connections": self.requests - self.rejected,
            "accepted_to_peer": self.accepted_to_peer,
            "external_traffic_count": self.external,
            "ipv6_requests": self.ipv6,
            "top_source_ips": top(self.sources),
            "port_breakdown": {str(p): c for p, c in sorted(self.ports.items())},
            "records_by_status": dict(sorted(self.by_status.items())),
            "malformed_records": {r: self.malformed[r] for r in MALFORMED_REASONS if self.malformed[r]},
            "out_of_window_records": self.out_of_window,
            "lines_read": self.lines,
            "evidence": {
                "unsolicited_external": {
                    "count": self.unsolicited_external,
                    "top_sources": top(self.unsolicited_sources, EVIDENCE_N),
                    "top_ports": top(self.unsolicited_ports, EVIDENCE_N),
                },
                "unexpected_ports": by_port(self.unexpected, self.unexpected_sources),
                "unexpected_ports_to_peer": by_port(self.unexpected_to_peer, self.unexpected_to_peer_sources),
                "rejections": {
                    "top_sources": top(self.rejected_sources, EVIDENCE_N),
                    "top_ports": top(self.rejected_ports, EVIDENCE_N),
                },
                "scan_candidates": scan_candidates[:EVIDENCE_N * 2],
            },
            "talkers": {"hosts": dict(sorted(self.talker_sources.items())),
                        "ports": {str(p): c for p, c in sorted(self.talker_ports.items())}, "truncated": 0},
        }


def traffic_for(config: AnalyzerConfig, window: Window) -> dict[str, VpcTraffic]:
    """One aggregation per VPC, each knowing its peer, sharing one parser cache."""
    a, b = config.vpcs
    parser = RecordParser(config.log_format)
    return {a.label: VpcTraffic(a, b, window, parser), b.label: VpcTraffic(b, a, window, parser)}
