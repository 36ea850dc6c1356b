"""The Logs Insights queries of one VPC-hour and the decoding of their rows (pure: no AWS).

A query partitions the records once (``stats ... by``) and returns at most ROW_LIMIT rows, so
the plan is chosen by what each partition can return exactly:

* ``ports_query`` (every hour, first): records grouped by ``floor(dstPort / 8)``, each row
  carrying eight per-port columns of each per-port table (all flows, rejected, unsolicited,
  unexpected into this VPC, unexpected into the peer, services the peer opened connections
  to) and the hour's sums. 65,536 ports make
  at most 8,192 rows, so every count and every port of the report is exact whatever the
  volume or the scan.
* ``insights.build_query`` (hours of at most ROW_LIMIT records): the flow tuple, as the raw
  engine sees it; it cannot have more groups than records, so it always fits, and the
  aggregation works exactly as on raw lines: 2 scans of the log group.
* Bigger hours: ``sources_query`` (per source: its flows by class and the distinct ports and
  hosts it probed) and ``destinations_query`` (the exact number of distinct destinations, one
  row, through stats-of-stats). Distinct sources, distinct destinations and per-port counts
  are three partitions of the records, and no two fit 10,000 rows once the hour has more
  source-destination pairs than that: 3 scans. ``evidence_query`` (the top sources of the
  busiest unexpected ports) is a 4th, only when such a port reaches the alert threshold.

Where a bigger hour's evidence is not exact it says so in ``approximate`` (see
``SourcesDecoded``): the report never passes an estimate off as a count.

Each flow's class (reply, inbound, unexpected, unsolicited, scan) is computed in the query
with the same rules as ``aggregate.FlowClass``; the unit tests pin the two together.
Booleans are summed as 1/0, as GetQueryResults shows them; a row whose per-port columns do
not add up to its record count is refused (``InconsistentResultError``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from lambda_pkg.constants import INSIGHTS_FIELDS as F
from lambda_pkg.errors import InconsistentResultError, QueryFailedError
from lambda_pkg.records import MAX_PORT, STATUS_OK
from lambda_pkg.settings import VpcSpec
from lambda_pkg.window import Window

ROW_LIMIT = 10_000
PORTS_PER_ROW = 8  # 65,536 ports / 8 = 8,192 rows, under ROW_LIMIT
EPHEMERAL_MIN = 1024  # the same boundary as the aggregation's (aggregate.EPHEMERAL_MIN)

# The per-port tables of ``ports_query``: column prefix -> flag the flows must carry ("" = all).
PORT_TABLES = {"n": "", "r": "rejected", "s": "unsolicited", "u": "unexpected", "p": "unexpectedToPeer",
               "t": "serves"}
# The hour's sums ``ports_query`` adds to every row.
PORT_SUMS = ("records", "bytes", "packets", "external", "ipv6", "acceptedToPeer")

Row = list[dict[str, str]]
# A number as GetQueryResults writes one: ASCII, optionally signed, a fraction or an exponent.
_RESULT_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", re.ASCII)


def _ports(ports: Iterable[int]) -> str:
    return ", ".join(str(p) for p in sorted(set(ports)))


def _member(field_name: str, ports: Sequence[int]) -> str:
    return f"{field_name} in [{_ports(ports)}]" if ports else f"{field_name} < 0"


def _window_filter(window: Window) -> str:
    return (f'filter {F["log-status"]} = "{STATUS_OK}"'
            f" and @timestamp >= fromMillis({window.start_ms}) and @timestamp < fromMillis({window.end_ms})")


def class_fields(spec: VpcSpec, peer: VpcSpec) -> str:
    """``fields`` commands that give every record the flags of ``aggregate.FlowClass``.

    Places: an address in this VPC's CIDR (self), the peer's, or outside both (external; an
    IPv6 address is external too, and its flows that are not replies are unsolicited). A reply is traffic to an ephemeral port from a port
    its source side serves; an accepted reply from a low or both-sides port to a port nobody
    serves is one whatever its source.
    """
    src, dst, sport, dport = F["srcaddr"], F["dstaddr"], F["srcport"], F["dstport"]
    own, theirs = sorted(spec.allowed_ports), sorted(peer.allowed_ports)
    return "\n".join((
        f'| fields isIpv4InSubnet({src}, "{spec.cidr}") as srcSelf, isIpv4InSubnet({src}, "{peer.cidr}") as srcPeer,'
        f" isValidIpV4({src}) as srcV4,"
        f' isIpv4InSubnet({dst}, "{spec.cidr}") as dstSelf, isIpv4InSubnet({dst}, "{peer.cidr}") as dstPeer,'
        f' {F["action"]} = "REJECT" as rejected, ({F["protocol"]} = 6 or {F["protocol"]} = 17) as portProto,'
        f" {sport} < {EPHEMERAL_MIN} as sLow, {_member(sport, own)} as sSelf, {_member(sport, theirs)} as sPeer,"
        f" {dport} < {EPHEMERAL_MIN} as dLow, {_member(dport, own)} as dSelf, {_member(dport, theirs)} as dPeer",
        f'| fields ({F["action"]} = "ACCEPT" and (sLow or (sSelf and sPeer)) and not dLow and not dSelf'
        " and not dPeer) as folded",
        "| fields (portProto and (folded or (not dLow and (sLow or sSelf or sPeer) and (sLow or (sSelf and sPeer)"
        " or (srcSelf and sSelf) or (srcPeer and sPeer) or (not srcSelf and not srcPeer))))) as reply",
        "| fields (portProto and not reply and dstSelf and not srcSelf) as inbound,"
        " (portProto and not reply and srcSelf and dstPeer) as towardPeer,"
        " (not srcSelf and not srcPeer) as external, (not srcV4) as ipv6,"
        " (not rejected and dstPeer) as acceptedToPeer, (portProto and rejected) as scan,"
        " (not rejected and ((srcSelf and dstPeer) or (srcPeer and dstSelf))) as talks",
        "| fields ((inbound and external) or (portProto and not reply and not srcV4)) as unsolicited,"
        " (inbound and not dSelf) as unexpected,"
        " (towardPeer and not dPeer) as unexpectedToPeer, (talks and portProto and not reply and dstSelf) as serves",
    ))


def ports_query(window: Window, spec: VpcSpec, peer: VpcSpec) -> str:
    """Every per-port table and the hour's sums, PORTS_PER_ROW ports to a row."""
    columns = [f'count(*) as records, sum({F["bytes"]}) as bytes, sum({F["packets"]}) as packets',
               "sum(external) as external, sum(ipv6) as ipv6, sum(acceptedToPeer) as acceptedToPeer"]
    for prefix, flag in PORT_TABLES.items():
        columns.append(", ".join(
            f"sum(offset = {k}{f' and {flag}' if flag else ''}) as {prefix}{k}" for k in range(PORTS_PER_ROW)))
    return "\n".join((
        _window_filter(window),
        class_fields(spec, peer),
        f'| fields {F["dstport"]} % {PORTS_PER_ROW} as offset',
        f'| stats {", ".join(columns)} by floor({F["dstport"]} / {PORTS_PER_ROW}) as portRow',
        f"| limit {ROW_LIMIT}",
    ))


SOURCE_COLUMNS = ("records", "rejected", "unsolicited", "portRecords", "portRejects", "talks")


def sources_query(window: Window, spec: VpcSpec, peer: VpcSpec) -> str:
    """Per source, busiest first: its flows by class, and the distinct ports and hosts of its
    rejected TCP/UDP flows. A flow that is not such a probe gives the marker value (port 0,
    host "#"), which ``decode_sources`` takes off again."""
    sums = ", ".join(f"sum({flag}) as {column}" for flag, column in
                     (("rejected", "rejected"), ("unsolicited", "unsolicited"), ("portProto", "portRecords"),
                      ("scan", "portRejects"), ("talks", "talks")))
    return "\n".join((
        _window_filter(window),
        class_fields(spec, peer),
        f'| fields ({F["dstport"]} + 1) * scan as scanPort,'
        f' concat("#", substr({F["dstaddr"]}, 0, strlen({F["dstaddr"]}) * scan)) as scanHost',
        f"| stats count(*) as records, {sums}, count_distinct(scanPort) as scanPorts,"
        f' count_distinct(scanHost) as scanHosts by {F["srcaddr"]}',
        "| sort records desc",
        f"| limit {ROW_LIMIT}",
    ))


def destinations_query(window: Window) -> str:
    """The number of distinct destinations (and the records, to cross-check): one row."""
    return "\n".join((
        _window_filter(window),
        f'| stats count(*) as records by {F["dstaddr"]}',
        "| stats count(*) as destinations, sum(records) as records",
    ))


def evidence_query(window: Window, spec: VpcSpec, peer: VpcSpec, into_self: Iterable[int],
                   into_peer: Iterable[int]) -> str:
    """The sources of unexpected flows on the given ports, busiest pairs first."""
    ports = sorted(set(into_self) | set(into_peer))
    return "\n".join((
        _window_filter(window),
        class_fields(spec, peer),
        f'| filter (unexpected = 1 or unexpectedToPeer = 1) and {_member(F["dstport"], ports)}',
        f'| stats count(*) as flows by {F["dstport"]}, {F["srcaddr"]}, unexpected',
        "| sort flows desc",
        f"| limit {ROW_LIMIT}",
    ))


# -- decoding ---------------------------------------------------------------------------


def cells(row: Row) -> dict[str, str]:
    return {cell["field"]: cell.get("value", "") for cell in row}


def integer(values: dict[str, str], name: str, maximum: int | None = None) -> int:
    """A whole number from 0 to ``maximum`` from a result cell; anything else is refused, as
    the raw parser refuses it (Infinity, NaN, -1, 2.5, a port of 70000)."""
    try:
        text = values[name]
        if not _RESULT_NUMBER.fullmatch(text):  # Decimal() would take 4_43, ٤٤٣ and " 443 "
            raise InvalidOperation
        value = Decimal(text)
    except KeyError:
        raise QueryFailedError(
            f"result row lacks {name!r}: Logs Insights did not discover the flow-log fields "
            "(custom log format?); use ANALYZER_ENGINE=raw"
        ) from None
    except InvalidOperation:
        raise InconsistentResultError(f"result field {name}={values[name]!r} is not a number") from None
    if not value.is_finite() or value != value.to_integral_value() or value < 0:
        raise InconsistentResultError(f"result field {name}={values[name]!r} is not a whole number >= 0")
    if maximum is not None and value > maximum:
        raise InconsistentResultError(f"result field {name}={values[name]!r} is above {maximum}")
    return int(value)


@dataclass
class PortsDecoded:
    """What ``ports_query`` says of the hour: exact, whatever its size."""

    records: int = 0
    bytes: int = 0
    packets: int = 0
    external: int = 0
    ipv6: int = 0
    accepted_to_peer: int = 0
    tables: dict[str, Counter[str]] = field(default_factory=lambda: {p: Counter() for p in PORT_TABLES})

    @property
    def rejected(self) -> int:
        return sum(self.tables["r"].values())

    @property
    def unsolicited(self) -> int:
        return sum(self.tables["s"].values())


def decode_ports(rows: Sequence[Row]) -> PortsDecoded:
    if len(rows) >= ROW_LIMIT:  # cannot happen (8,192 rows at most): never trust it if it does
        raise InconsistentResultError(f"the per-port query returned {len(rows)} rows; at most 8,192 exist")
    out = PortsDecoded()
    names = dict(zip(PORT_SUMS, ("records", "bytes", "packets", "external", "ipv6", "accepted_to_peer")))
    for row in rows:
        values = cells(row)
        base = integer(values, "portRow", MAX_PORT // PORTS_PER_ROW) * PORTS_PER_ROW
        for column, attr in names.items():
            setattr(out, attr, getattr(out, attr) + integer(values, column))
        all_flows = 0
        for prefix, table in out.tables.items():
            for k in range(PORTS_PER_ROW):
                count = integer(values, f"{prefix}{k}")
                if count:
                    table[str(base + k)] += count
                if prefix == "n":
                    all_flows += count
        if all_flows != integer(values, "records"):
            raise InconsistentResultError(
                f"ports {base}-{base + PORTS_PER_ROW - 1}: the per-port columns add up to {all_flows}, not "
                f"{values.get('records')} records (Logs Insights did not sum booleans as 1/0?); use ANALYZER_ENGINE=raw")
    return out


@dataclass
class SourcesDecoded:
    """Per-source tables of a bigger hour, and which of them are not exact."""

    records: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    unsolicited: Counter[str] = field(default_factory=Counter)
    port_records: Counter[str] = field(default_factory=Counter)
    port_rejects: Counter[str] = field(default_factory=Counter)
    talks: Counter[str] = field(default_factory=Counter)  # flows between the VPCs
    widths: dict[str, tuple[int, int]] = field(default_factory=dict)  # source -> (ports, hosts) it probed
    complete: bool = True  # every source is here
    floor: int = 0  # a source not here has at most this many records


def decode_sources(rows: Sequence[Row]) -> SourcesDecoded:
    out = SourcesDecoded(complete=len(rows) < ROW_LIMIT)
    for row in rows:
        values = cells(row)
        source = values.get(F["srcaddr"], "")
        if not source:
            raise QueryFailedError("result row lacks srcAddr; use ANALYZER_ENGINE=raw for this log format")
        for table, column in zip((out.records, out.rejected, out.unsolicited, out.port_records, out.port_rejects,
                                  out.talks), SOURCE_COLUMNS, strict=True):
            count = integer(values, column)
            if count:
                table[source] += count
        marker = integer(values, "records") > integer(values, "portRejects")  # non-probes counted one value
        ports, hosts = integer(values, "scanPorts") - marker, integer(values, "scanHosts") - marker
        if ports < 0 or hosts < 0:
            raise InconsistentResultError(f"{source}: {ports} distinct probed ports, {hosts} hosts")
        if ports or hosts:
            out.widths[source] = (ports, hosts)
    if not out.complete:
        out.floor = min(out.records.values(), default=0)
    return out


def decode_destinations(rows: Sequence[Row]) -> tuple[int, int]:
    """(distinct destinations, records)."""
    if not rows:
        return 0, 0
    if len(rows) != 1:
        raise InconsistentResultError(f"the destinations query returned {len(rows)} rows, not 1")
    values = cells(rows[0])
    return integer(values, "destinations"), integer(values, "records")


def decode_evidence(rows: Sequence[Row]) -> tuple[dict[str, Counter[str]], dict[str, Counter[str]], bool]:
    """(port -> sources into this VPC, port -> sources into the peer, complete)."""
    into_self: dict[str, Counter[str]] = {}
    into_peer: dict[str, Counter[str]] = {}
    for row in rows:
        values = cells(row)
        port, source = str(integer(values, F["dstport"], MAX_PORT)), values.get(F["srcaddr"], "")
        table = into_self if integer(values, "unexpected") else into_peer
        table.setdefault(port, Counter())[source] += integer(values, "flows")
    return into_self, into_peer, len(rows) < ROW_LIMIT
