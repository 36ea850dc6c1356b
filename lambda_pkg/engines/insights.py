"""The ``insights`` engine: CloudWatch Logs Insights, one grouped query per log group.

Each log group is scanned once per window (the reference scanned each five times): one
query groups the window's OK records by flow tuple, the rows carry their record counts,
and the same aggregation as the raw engine turns them into the report. Both queries are
started before either is polled, polling backs off, every status is handled, queries
still running at the deadline are stopped, and a result that hits the row limit is re-run
on the two halves of its window instead of being reported short.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from lambda_pkg.aggregate import VpcTraffic
from lambda_pkg.constants import DEFAULT_INSIGHTS_MAX_CONCURRENT_QUERIES, DEFAULT_QUERY_DEADLINE_SECONDS
from lambda_pkg.constants import INSIGHTS_FIELDS as F
from lambda_pkg.engines import aws_calls
from lambda_pkg.errors import InconsistentResultError, QueryFailedError, QueryTimeoutError, ResultTruncatedError
from lambda_pkg.records import STATUS_OK, FlowRecord
from lambda_pkg.window import Window

ROW_LIMIT = 10_000
RUNNING_STATUSES = frozenset({"Scheduled", "Running"})
FAILED_STATUSES = frozenset({"Failed", "Cancelled", "Timeout", "Unknown"})
MAX_SPLITS = 6  # an hour halved six times is 56 s

GROUP_FIELDS = (F["srcaddr"], F["dstaddr"], F["srcport"], F["dstport"], F["protocol"], F["action"])


def build_query(window: Window, vpc_a_cidr: str, vpc_b_cidr: str) -> str:
    """The grouped query for one log group and window (half-open on event time)."""
    return (
        f'filter {F["log-status"]} = "{STATUS_OK}"'
        f" and @timestamp >= fromMillis({window.start_ms}) and @timestamp < fromMillis({window.end_ms})\n"
        f'| fields isIpv4InSubnet({F["srcaddr"]}, "{vpc_a_cidr}") as srcInA,'
        f' isIpv4InSubnet({F["srcaddr"]}, "{vpc_b_cidr}") as srcInB\n'
        f'| stats count(*) as records, sum({F["bytes"]}) as bytes, sum({F["packets"]}) as packets'
        f' by {", ".join(GROUP_FIELDS)}, srcInA, srcInB\n'
        f"| limit {ROW_LIMIT}"
    )


def _integer(row: dict[str, str], name: str) -> int:
    try:
        value = Decimal(row[name])
    except KeyError:
        raise QueryFailedError(
            f"result row lacks {name!r}: Logs Insights did not discover the flow-log fields "
            "(custom log format?); use ANALYZER_ENGINE=raw"
        ) from None
    except InvalidOperation:
        raise InconsistentResultError(f"result field {name}={row[name]!r} is not a number") from None
    if value != value.to_integral_value():
        raise InconsistentResultError(f"result field {name}={row[name]!r} is not a whole number")
    return int(value)


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
        STATUS_OK, src, dst, _integer(row, F["srcport"]), _integer(row, F["dstport"]), _integer(row, F["protocol"]),
        _integer(row, "packets"), _integer(row, "bytes"), action, ip.version,
    )
    weight = _integer(row, "records")
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
        max_splits: int = MAX_SPLITS,
        max_concurrent: int = DEFAULT_INSIGHTS_MAX_CONCURRENT_QUERIES,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.logs = logs_client
        self.deadline_seconds = deadline_seconds
        self.poll_initial = poll_initial_seconds
        self.poll_max = poll_max_seconds
        self.max_splits = max_splits
        self.max_concurrent = max(1, max_concurrent)
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

    def run(self, window: Window, traffic: dict[str, VpcTraffic]) -> dict[str, Any]:
        deadline = self.clock() + self.deadline_seconds
        labels = list(traffic)
        cidr_a, cidr_b = (traffic[label].spec.cidr for label in labels[:2])
        pending = [(label, window, 0) for label in labels]
        stats = {"engine": self.name, "queries": 0, "splits": 0, "rows": 0, "max_concurrent": self.max_concurrent}
        while pending:
            # At most max_concurrent queries run at once; halves of a split window queue behind.
            batch, pending = pending[:self.max_concurrent], pending[self.max_concurrent:]
            started = []
            for label, part, depth in batch:
                group = traffic[label].spec.log_group
                query_id = self._start(group, part, build_query(part, str(cidr_a), str(cidr_b)))
                started.append((label, part, depth, query_id))
            stats["queries"] += len(started)
            results = self._await_all({q: traffic[label].spec.log_group for label, _, _, q in started}, deadline)
            for label, part, depth, query_id in started:
                rows = results[query_id]
                if len(rows) >= ROW_LIMIT:
                    if depth >= self.max_splits:
                        raise ResultTruncatedError(
                            f"{traffic[label].spec.log_group}: {ROW_LIMIT} rows even for {part.end - part.start}; "
                            "the report would be partial (use ANALYZER_ENGINE=raw or a shorter window)"
                        )
                    stats["splits"] += 1
                    pending.extend((label, half, depth + 1) for half in part.split())
                    continue
                stats["rows"] += len(rows)
                agg = traffic[label]
                for cells in rows:
                    record, weight = row_to_record(cells, cidr_a, cidr_b)
                    agg.add(record, weight)
        return stats
