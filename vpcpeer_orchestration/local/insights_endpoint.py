"""Logs Insights on the embedded AWS: moto's StartQuery answered by our evaluator.

moto keeps ``fields``, ``sort`` and ``limit`` and silently drops ``filter`` and ``stats``,
so the production engine's grouped query came back as raw events and could never run
offline. Installed in the embedded server's process (``moto_process.serve``), this makes
StartQuery evaluate the query with ``insights_query`` over the log groups' events in the
query's time range: exact groups, the 10,000-row cap, ``statistics`` (records matched and
scanned, bytes scanned), and a MalformedQueryException for anything outside the subset,
as the service answers a query it cannot parse. Queries complete when they are started;
the engine's polling finds them ``Complete``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

_INSTALLED = False


def _events(log_groups: list[Any], start_s: int, end_s: int) -> Iterator[dict[str, Any]]:
    """Every event of ``log_groups`` with a timestamp in [start_s, end_s] (seconds, both
    inclusive, as StartQuery's range is)."""
    lo, hi = start_s * 1000, end_s * 1000 + 999
    for group in log_groups:
        for stream in group.streams.values():
            for event in stream.events:
                if lo <= event.timestamp <= hi:
                    yield {"timestamp": event.timestamp, "message": event.message, "ingestionTime": event.ingestion_time,
                           "logStreamName": stream.log_stream_name, "logGroupName": group.name}


def install() -> None:
    """Answer StartQuery/GetQueryResults with the evaluator (idempotent; this process only)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.core.exceptions import JsonRESTError
    from moto.core.utils import utcnow
    from moto.logs import models

    from vpcpeer_orchestration.local.insights_query import InsightsQueryError, run_query

    class MalformedQueryException(JsonRESTError):
        code = 400

        def __init__(self, message: str) -> None:
            super().__init__("MalformedQueryException", message)

    def evaluate(self: Any, query_id: str, start_time: int, end_time: int, query: str, log_groups: list[Any]) -> None:
        self.query_id = query_id
        self.start_time = start_time
        self.end_time = end_time
        self.query = query
        self.log_group_names = [group.name for group in log_groups]
        self.create_time = utcnow()
        try:
            result = run_query(query, _events(log_groups, start_time, end_time))
        except InsightsQueryError as exc:
            raise MalformedQueryException(str(exc)) from None
        self.results = result.results
        self.statistics = result.statistics
        self.status = "Complete"

    def to_result_json(self: Any) -> dict[str, Any]:
        return {"results": self.results, "statistics": getattr(self, "statistics", {}), "status": self.status}

    models.LogQuery.__init__ = evaluate
    models.LogQuery.to_result_json = to_result_json
    _INSTALLED = True
