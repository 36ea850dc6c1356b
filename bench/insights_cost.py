"""What the insights engine's plan costs per VPC-hour: queries, scans of the log group, rows.

    python -m bench.insights_cost [--records 10000 100000 1000000] [--json]

The engine runs unchanged against a Logs client whose StartQuery is answered by the embedded
Logs Insights evaluator (vpcpeer_orchestration/local/insights_query.py) over one VPC-hour of
bench.flowdata records, so every query it sends and every row is counted as the service
would bill it (records scanned). The same records go through the raw aggregation too, and
the two reports are compared: which fields differ, and whether the Insights report flags each
of them (``approximate``). The reference design's plan is five queries per log group-hour,
each scanning the whole hour: 5 scans by construction.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from bench import flowdata

REFERENCE_QUERIES_PER_VPC_HOUR = 5


class EvaluatedLogs:
    """The four Logs calls the engine makes, answered by the evaluator over in-memory events."""

    def __init__(self, events: dict[str, list[tuple[int, str]]]) -> None:
        self.events = {group: sorted(items) for group, items in events.items()}
        self.times = {group: [t for t, _ in items] for group, items in self.events.items()}
        self.results: dict[str, dict[str, Any]] = {}
        self.queries: dict[str, int] = {}
        self.scanned: dict[str, float] = {}
        self.rows: dict[str, int] = {}

    def start_query(self, *, logGroupName: str, startTime: int, endTime: int, queryString: str, **_: Any) -> dict:
        from vpcpeer_orchestration.local.insights_query import run_query

        times, items = self.times.get(logGroupName, []), self.events.get(logGroupName, [])
        lo, hi = bisect.bisect_left(times, startTime * 1000), bisect.bisect_right(times, endTime * 1000 + 999)
        result = run_query(queryString, ({"timestamp": t, "message": m, "logGroupName": logGroupName}
                                         for t, m in items[lo:hi]))
        query_id = str(uuid.uuid4())
        self.results[query_id] = {"status": "Complete", "results": result.results, "statistics": result.statistics}
        self.queries[logGroupName] = self.queries.get(logGroupName, 0) + 1
        self.scanned[logGroupName] = self.scanned.get(logGroupName, 0) + result.statistics["recordsScanned"]
        self.rows[logGroupName] = self.rows.get(logGroupName, 0) + len(result.results)
        return {"queryId": query_id}

    def get_query_results(self, *, queryId: str) -> dict:
        return self.results[queryId]

    def stop_query(self, *, queryId: str) -> dict:
        return {"success": True}


# Fields the Insights plan does not read (it counts OK records in the window only).
UNSEEN = frozenset({"records_by_status", "malformed_records", "lines_read", "out_of_window_records"})


# The raw engine's own evidence budget (which of its tables stopped at EVIDENCE_ENTRIES): the
# Insights plan has no such tables, and names its bounds in ``approximate`` instead.
ENGINE_OWN = frozenset({"truncated"})


def differences(insights: dict[str, Any], raw: dict[str, Any]) -> list[str]:
    """Report fields (evidence as ``evidence.NAME``) where the Insights report differs from the raw one."""
    found = [k for k in raw if k not in UNSEEN and k != "evidence" and raw[k] != insights.get(k)]
    return found + [f"evidence.{k}" for k in raw["evidence"]
                    if k not in ENGINE_OWN and raw["evidence"][k] != insights["evidence"].get(k)]


def measure(records: int, kind: str = "normal") -> dict[str, Any]:
    """The plan's cost for one VPC-hour of ``records`` flow records, and how its report compares."""
    from lambda_pkg.aggregate import traffic_for
    from lambda_pkg.engines.insights import InsightsEngine
    from lambda_pkg.window import Window
    from tests.analyzer_env import config

    cfg = config()
    window = Window(datetime.fromtimestamp(flowdata.WINDOW_START, timezone.utc),
                    datetime.fromtimestamp(flowdata.WINDOW_START + flowdata.WINDOW_SECONDS, timezone.utc))
    group = cfg.vpcs[0].log_group
    events = []
    for line in itertools.islice(flowdata.KINDS[kind](records), records):
        fields = line.split(" ")
        start = int(fields[10]) if len(fields) == 14 and fields[10].isdigit() else flowdata.WINDOW_START
        events.append((start * 1000, line))
    logs = EvaluatedLogs({group: events, cfg.vpcs[1].log_group: []})
    started = time.perf_counter()
    traffic = traffic_for(cfg, window)
    figures: dict[str, Any] = {"records": records, "kind": kind}
    try:
        stats = InsightsEngine(logs, sleep=lambda s: None, deadline_seconds=1e9).run(window, traffic)
    except Exception as exc:  # noqa: BLE001 - the failure is the figure
        figures.update(outcome=f"fails: {type(exc).__name__}: {exc}", plan="-")
    else:
        figures.update(outcome="complete", plan=stats["plan"][cfg.vpcs[0].label])
    figures["seconds"] = time.perf_counter() - started
    figures.update(queries=logs.queries.get(group, 0), scans=logs.scanned.get(group, 0) / max(1, records),
                   rows=logs.rows.get(group, 0))
    if figures["outcome"] == "complete":
        raw = traffic_for(cfg, window)
        for t, line in events:
            raw[cfg.vpcs[0].label].add_line(line, t)
        mine, theirs = traffic[cfg.vpcs[0].label].report(), raw[cfg.vpcs[0].label].report()
        figures["differ"] = differences(mine, theirs)
        figures["approximate"] = sorted(mine.get("approximate", {}))
        # Every difference is flagged: the field itself, the evidence table a flagged sub-field
        # belongs to, or a table the raw engine itself capped (its evidence.truncated).
        capped = {f"evidence.{name}" for name in theirs["evidence"]["truncated"]}
        figures["all_flagged"] = all(d in capped or any(f == d or f.startswith(d + ".") for f in figures["approximate"])
                                     for d in figures["differ"])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--scan", type=int, nargs="*", default=[], help="also port-scan hours of these sizes")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = [measure(n) for n in args.records] + [measure(n, "port-scan") for n in args.scan]
    print(json.dumps(figures) if args.json else "\n".join(map(str, figures)))


if __name__ == "__main__":
    main()
