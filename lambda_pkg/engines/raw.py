"""The ``raw`` engine: FilterLogEvents pages over the window, parsed in one streaming pass."""

from __future__ import annotations

from typing import Any

from lambda_pkg.aggregate import VpcTraffic
from lambda_pkg.engines import aws_calls
from lambda_pkg.window import Window

PAGE_LIMIT = 10_000


class RawEngine:
    """Reads every event of the window from each log group; for the embedded default and small volumes."""

    name = "raw"

    def __init__(self, logs_client: Any, page_limit: int = PAGE_LIMIT) -> None:
        self.logs = logs_client
        self.page_limit = page_limit

    def run(self, window: Window, traffic: dict[str, VpcTraffic]) -> dict[str, Any]:
        pages: dict[str, int] = {}
        for label, agg in traffic.items():
            group = agg.spec.log_group
            token = None
            pages[label] = 0
            while True:
                # FilterLogEvents' endTime is inclusive: stop one millisecond short of the end.
                request = {"logGroupName": group, "startTime": window.start_ms, "endTime": window.end_ms - 1,
                           "limit": self.page_limit}
                if token:
                    request["nextToken"] = token
                page = aws_calls.call(f"FilterLogEvents on {group}", self.logs.filter_log_events, **request)
                pages[label] += 1
                for event in page.get("events", ()):
                    agg.add_line(event["message"], event["timestamp"])
                next_token = page.get("nextToken")
                if not next_token or next_token == token:
                    break
                token = next_token
        return {"engine": self.name, "pages": pages}
