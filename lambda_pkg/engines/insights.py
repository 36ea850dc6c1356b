"""The ``insights`` engine: CloudWatch Logs Insights, a fixed plan of grouped queries.

Every VPC-hour starts with the per-port query (``insights_plan.ports_query``): every count
of the report, exact at any volume. An hour of at most ROW_LIMIT records is then read as
flow tuples (``build_query``), which cannot overflow, and aggregated like raw lines: 2 scans.
A bigger hour reads its sources and its distinct destinations instead (3 scans; a 4th for
the sources of unexpected ports when one reaches the alert threshold), and the report says
which of its evidence fields are bounds (``approximate``). Nothing is split or retried on a
truncated result, so the cost is known in advance and never fails on volume.

Queries of a round are started before any is polled, at most ``max_concurrent`` at once;
polling backs off, every status is handled, queries still running at the deadline are
stopped, and results that contradict each other (records that changed between the rounds,
per-port columns that do not add up) raise ``InconsistentResultError``.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from lambda_pkg.aggregate import EVIDENCE_N, TOP_N, ReportTables, Summary, VpcTraffic, busiest_ports
from lambda_pkg.constants import DEFAULT_INSIGHTS_MAX_CONCURRENT_QUERIES, DEFAULT_QUERY_DEADLINE_SECONDS
from lambda_pkg.constants import INSIGHTS_FIELDS as F
from lambda_pkg.engines import aws_calls
from lambda_pkg.engines import insights_plan as plan
from lambda_pkg.engines.insights_plan import ROW_LIMIT
from lambda_pkg.errors import InconsistentResultError, QueryFailedError, QueryTimeoutError
from lambda_pkg.records import MAX_PORT, MAX_PROTOCOL, STATUS_OK, FlowRecord
from lambda_pkg.settings import Thresholds
from lambda_pkg.window import Window

RUNNING_STATUSES = frozenset({"Scheduled", "Running"})
FAILED_STATUSES = frozenset({"Failed", "Cancelled", "Timeout", "Unknown"})
# The plan of a VPC-hour, by its size: nothing more to read, flow tuples, or sources and destinations.
EMPTY, FLOWS, SOURCES = "empty", "flows", "sources"

GROUP_FIELDS = (F["srcaddr"], F["dstaddr"], F["srcport"], F["dstport"], F["protocol"], F["action"])


def build_query(window: Window, vpc_a_cidr: str, vpc_b_cidr: str) -> str:
    """The flow tuples of one log group and window (half-open on event time), for an hour of
    at most ROW_LIMIT records: it has no more groups than records, so it always fits."""
    return (
        f'filter {F["log-status"]} = "{STATUS_OK}"'
        f" and @timestamp >= fromMillis({window.start_ms}) and @timestamp < fromMillis({window.end_ms})\n"
        f'| fields isIpv4InSubnet({F["srcaddr"]}, "{vpc_a_cidr}") as srcInA,'
        f' isIpv4InSubnet({F["srcaddr"]}, "{vpc_b_cidr}") as srcInB\n'
        f'| stats count(*) as records, sum({F["bytes"]}) as bytes, sum({F["packets"]}) as packets'
        f' by {", ".join(GROUP_FIELDS)}, srcInA, srcInB\n'
        f"| limit {ROW_LIMIT}"
    )


def _boolean(row: dict[str, str], name: str) -> bool:
    value = str(row.get(name, "")).strip().lower()
    if value in ("1", "true"):
        return True
    if value in ("0", "false", ""):
        return False
    raise InconsistentResultError(f"result field {name}={row[name]!r} is not a boolean")


def row_to_record(cells: list[dict[str, str]], cidr_a: Any, cidr_b: Any) -> tuple[FlowRecord, int]:
    """Turn one GetQueryResults row into a (record, weight) pair, cross-checking CIDR tests."""
    row = {cell["field"]: cell.get("value", "") for cell in cells}
    src, dst = row.get(F["srcaddr"]), row.get(F["dstaddr"])
    if not src or not dst:
        raise QueryFailedError("result row lacks srcAddr/dstAddr; use ANALYZER_ENGINE=raw for this log format")
    action = row.get(F["action"], "")
    if action not in ("ACCEPT", "REJECT"):
        raise InconsistentResultError(f"result row has action {action!r}")
    try:
        ip = ipaddress.ip_address(src)
        ipaddress.ip_address(dst)
    except ValueError:
        raise InconsistentResultError(f"result row has an invalid address ({src!r} -> {dst!r})") from None
    if ip.version == 4:
        for flag, cidr in (("srcInA", cidr_a), ("srcInB", cidr_b)):
            if _boolean(row, flag) != (ip in cidr):
                raise InconsistentResultError(f"Logs Insights says {flag}={row.get(flag)!r} for {src}, but {src} in {cidr} is {ip in cidr}")
    record = FlowRecord(
        STATUS_OK, src, dst, plan.integer(row, F["srcport"], MAX_PORT), plan.integer(row, F["dstport"], MAX_PORT),
        plan.integer(row, F["protocol"], MAX_PROTOCOL),
        plan.integer(row, "packets"), plan.integer(row, "bytes"), action, ip.version,
    )
    weight = plan.integer(row, "records")
    if weight < 1:
        raise InconsistentResultError(f"result row counts {weight} records")
    return record, weight


class InsightsEngine:
    """Logs Insights at scale; the production default."""

    name = "insights"

    def __init__(
        self,
        logs_client: Any,
        *,
        deadline_seconds: float = DEFAULT_QUERY_DEADLINE_SECONDS,
        poll_initial_seconds: float = 1.0,
        poll_max_seconds: float = 8.0,
        max_concurrent: int = DEFAULT_INSIGHTS_MAX_CONCURRENT_QUERIES,
        evidence_min_count: int = Thresholds().unexpected_port_min_count,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.logs = logs_client
        self.deadline_seconds = deadline_seconds
        self.poll_initial = poll_initial_seconds
        self.poll_max = poll_max_seconds
        self.max_concurrent = max(1, max_concurrent)
        self.evidence_min_count = evidence_min_count
        self.clock = clock
        self.sleep = sleep

    def _start(self, group: str, window: Window, query: str) -> str:
        response = aws_calls.call(
            f"StartQuery on {group}", self.logs.start_query,
            logGroupName=group,
            startTime=window.start_ms // 1000,
            endTime=math.ceil(window.end_ms / 1000),
            queryString=query,
            limit=ROW_LIMIT,
        )
        return response["queryId"]

    def _stop_all(self, query_ids: list[str]) -> None:
        """Best effort: a stop that fails must not hide the error being raised."""
        for query_id in query_ids:
            try:
                self.logs.stop_query(queryId=query_id)
            except Exception:  # noqa: BLE001 - the original failure is what matters
                pass

    def _await_all(self, queries: dict[str, str], deadline: float) -> dict[str, list[list[dict[str, str]]]]:
        """Poll every query until all complete; raise on any failure or at the deadline."""
        outstanding = dict(queries)  # query id -> log group
        results: dict[str, list[list[dict[str, str]]]] = {}
        interval = self.poll_initial
        while outstanding:
            for query_id, group in list(outstanding.items()):
                response = aws_calls.call(f"GetQueryResults on {group}", self.logs.get_query_results, queryId=query_id)
                status = response.get("status", "Unknown")
                if status == "Complete":
                    results[query_id] = response.get("results", [])
                    del outstanding[query_id]
                elif status in FAILED_STATUSES or status not in RUNNING_STATUSES:
                    del outstanding[query_id]
                    self._stop_all(list(outstanding))
                    raise QueryFailedError(f"Logs Insights query {query_id} on {group} ended with status {status}")
            if not outstanding:
                break
            if self.clock() >= deadline:
                self._stop_all(list(outstanding))
                raise QueryTimeoutError(
                    f"Logs Insights queries on {', '.join(sorted(set(outstanding.values())))} did not complete "
                    f"within {self.deadline_seconds:g} s; they were stopped"
                )
            self.sleep(min(interval, max(0.0, deadline - self.clock())))
            interval = min(interval * 2, self.poll_max)
        return results

    def _round(self, jobs: list[tuple[str, str, str, Window, str]], deadline: float,
               stats: dict[str, Any]) -> dict[tuple[str, str], list[list[dict[str, str]]]]:
        """Run ``jobs`` (label, kind, log group, window, query), at most max_concurrent at once."""
        results: dict[tuple[str, str], list[list[dict[str, str]]]] = {}
        for first in range(0, len(jobs), self.max_concurrent):
            started = {}
            for label, kind, group, part, query in jobs[first:first + self.max_concurrent]:
                started[self._start(group, part, query)] = (label, kind, group)
                stats["queries"] += 1
                stats["scans"][label] += 1
            answers = self._await_all({q: group for q, (_, _, group) in started.items()}, deadline)
            for query_id, (label, kind, _) in started.items():
                results[label, kind] = answers[query_id]
                stats["rows"] += len(answers[query_id])
        return results

    def run(self, window: Window, traffic: dict[str, VpcTraffic]) -> dict[str, Any]:
        deadline = self.clock() + self.deadline_seconds
        labels = list(traffic)
        cidr_a, cidr_b = (traffic[label].spec.cidr for label in labels[:2])
        stats: dict[str, Any] = {"engine": self.name, "queries": 0, "rows": 0, "max_concurrent": self.max_concurrent,
                                 "scans": {label: 0 for label in labels}, "plan": {}}
        groups = {label: traffic[label].spec.log_group for label in labels}
        first = self._round([(label, "ports", groups[label], window,
                              plan.ports_query(window, traffic[label].spec, traffic[label].peer)) for label in labels],
                            deadline, stats)
        ports = {label: plan.decode_ports(first[label, "ports"]) for label in labels}
        jobs = []
        for label in labels:
            agg, counts = traffic[label], ports[label]
            if not counts.records:  # nothing in the window: the per-port query said all there is
                stats["plan"][label] = EMPTY
                continue
            if counts.records <= ROW_LIMIT:
                stats["plan"][label] = FLOWS
                jobs.append((label, FLOWS, groups[label], window, build_query(window, str(cidr_a), str(cidr_b))))
                continue
            stats["plan"][label] = SOURCES
            jobs.append((label, SOURCES, groups[label], window, plan.sources_query(window, agg.spec, agg.peer)))
            jobs.append((label, "destinations", groups[label], window, plan.destinations_query(window)))
            into_self, into_peer = (dict(busiest_ports(counts.tables[t])) for t in ("u", "p"))
            if any(count >= self.evidence_min_count for count in (*into_self.values(), *into_peer.values())):
                jobs.append((label, "evidence", groups[label], window,
                             plan.evidence_query(window, agg.spec, agg.peer, map(int, into_self), map(int, into_peer))))
        second = self._round(jobs, deadline, stats)
        for label in labels:
            if stats["plan"][label] == EMPTY:
                continue
            if stats["plan"][label] == FLOWS:
                _adopt_flows(traffic[label], second[label, FLOWS], ports[label], cidr_a, cidr_b)
            else:
                _adopt_summary(traffic[label], ports[label], second, label, self.evidence_min_count)
        return stats


def _adopt_flows(agg: VpcTraffic, rows: list[list[dict[str, str]]], counts: plan.PortsDecoded,
                 cidr_a: Any, cidr_b: Any) -> None:
    """A small hour's flow tuples, aggregated as raw lines are; they must agree with its per-port counts."""
    records = nbytes = 0
    for cells in rows:
        record, weight = row_to_record(cells, cidr_a, cidr_b)
        agg.add(record, weight)
        records += weight
        nbytes += record.bytes
    if (records, nbytes) != (counts.records, counts.bytes):
        raise InconsistentResultError(
            f"{agg.spec.log_group}: the flow query counted {records} records ({nbytes} bytes), the per-port query "
            f"{counts.records} ({counts.bytes} bytes); records changed between the queries: analyse the window again")


def _adopt_summary(agg: VpcTraffic, counts: plan.PortsDecoded, results: dict[tuple[str, str], Any], label: str,
                   evidence_min_count: int) -> None:
    """A bigger hour's report from its per-port counts, its sources and its destinations."""
    sources = plan.decode_sources(results[label, SOURCES])
    destinations, dst_records = plan.decode_destinations(results[label, "destinations"])
    seen = sum(sources.records.values())
    if dst_records != counts.records or (sources.complete and seen != counts.records):
        raise InconsistentResultError(
            f"{agg.spec.log_group}: {counts.records} records by port, {seen} by source, {dst_records} by destination; "
            "records changed between the queries: analyse the window again")
    t = ReportTables()
    t.requests, t.rejected, t.external, t.ipv6 = counts.records, counts.rejected, counts.external, counts.ipv6
    t.accepted_to_peer, t.unsolicited_external = counts.accepted_to_peer, counts.unsolicited
    if counts.records:
        t.by_status[STATUS_OK] = counts.records
    t.ports, t.rejected_ports, t.unsolicited_ports = counts.tables["n"], counts.tables["r"], counts.tables["s"]
    t.unexpected, t.unexpected_to_peer = counts.tables["u"], counts.tables["p"]
    t.sources, t.rejected_sources, t.unsolicited_sources = sources.records, sources.rejected, sources.unsolicited
    t.port_records, t.port_rejects = sources.port_records, sources.port_rejects
    t.talker_sources, t.talker_ports = sources.talks, counts.tables["t"]

    approximate: dict[str, str] = {}
    if sources.widths:
        approximate["evidence.scan_candidates"] = (
            "distinct_ports and distinct_hosts come from Logs Insights' count_distinct, which AWS estimates at "
            "very high cardinality; sample_ports are not read")
    if not sources.complete:
        approximate["unique_sources"] = f"a lower bound: only the {ROW_LIMIT} busiest sources are returned"
        approximate["talkers.hosts"] = (f"from the {ROW_LIMIT} busiest sources; a host with fewer flows is learned "
                                        "in a later hour")
        for name, table, n in (("top_source_ips", sources.records, TOP_N),
                               ("evidence.rejections.top_sources", sources.rejected, EVIDENCE_N),
                               ("evidence.unsolicited_external.top_sources", sources.unsolicited, EVIDENCE_N)):
            ranked = sorted(table.values(), reverse=True)
            if len(ranked) < n or ranked[n - 1] <= sources.floor:  # a source not returned could rank here
                approximate[name] = f"from the {ROW_LIMIT} busiest sources; others have at most {sources.floor} records"
    into_self: dict[str, Counter[str]] = {}
    into_peer: dict[str, Counter[str]] = {}
    if (label, "evidence") in results:
        into_self, into_peer, complete = plan.decode_evidence(results[label, "evidence"])
        if not complete:
            approximate["evidence.unexpected_ports.top_sources"] = (
                f"from the {ROW_LIMIT} busiest port-source pairs of the listed ports")
    elif t.unexpected or t.unexpected_to_peer:
        approximate["evidence.unexpected_ports.top_sources"] = (
            f"not read: no unexpected port reached UNEXPECTED_PORT_MIN_COUNT ({evidence_min_count}) in this bigger hour")
    agg.adopt(Summary(t, counts.bytes, counts.packets, destinations, into_self, into_peer, sources.widths,
                      approximate=approximate))
