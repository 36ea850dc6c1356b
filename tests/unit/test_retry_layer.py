"""Retries live in one layer per call: botocore's standard mode, with vpcpeer's client config.

A real HTTP endpoint on loopback plays CloudWatch Logs and throttles StartQuery a given
number of times; the Insights engine, with the clients vpcpeer builds, must succeed when the
throttling stops within the budget and raise ThrottledError after exactly
``AWS_MAX_ATTEMPTS`` calls when it does not. That is the worst case per query start and
step attempt documented in the README.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from lambda_pkg.aggregate import traffic_for
from lambda_pkg.clients import client_config
from lambda_pkg.constants import AWS_MAX_ATTEMPTS
from lambda_pkg.engines.insights import InsightsEngine
from lambda_pkg.errors import ThrottledError
from lambda_pkg.window import Window
from tests.analyzer_env import config

WINDOW = Window(datetime(2026, 11, 28, 9, tzinfo=timezone.utc), datetime(2026, 11, 28, 10, tzinfo=timezone.utc))


class ThrottlingLogs(BaseHTTPRequestHandler):
    """StartQuery answers ThrottlingException ``throttle`` times per log group, then succeeds."""

    throttle = 0
    calls: Counter = Counter()

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        operation = self.headers["X-Amz-Target"].rsplit(".", 1)[1]
        key = (operation, body.get("logGroupName") or body.get("queryId"))
        type(self).calls[key] += 1
        if operation == "StartQuery" and type(self).calls[key] <= type(self).throttle:
            self._answer(400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
        elif operation == "StartQuery":
            self._answer(200, {"queryId": f"q-{body['logGroupName']}"})
        else:
            self._answer(200, {"status": "Complete", "results": [], "statistics": {}})

    def _answer(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def endpoint(monkeypatch):
    import botocore.retries.standard as standard

    # botocore's backoff waits up to 20 s; its jittered delays are recorded, not slept.
    delays: list[float] = []
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: delays.append(1) or 0.0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), ThrottlingLogs)
    ThrottlingLogs.calls = Counter()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", delays
    finally:
        server.shutdown()


def analyse(url: str) -> None:
    logs = boto3.client("logs", endpoint_url=url, region_name="us-east-1", aws_access_key_id="t",
                        aws_secret_access_key="t", config=client_config())
    InsightsEngine(logs, poll_initial_seconds=0).run(WINDOW, traffic_for(config(), WINDOW))


def start_calls() -> dict[str, int]:
    return {group: n for (op, group), n in ThrottlingLogs.calls.items() if op == "StartQuery"}


def test_throttling_within_the_budget_is_absorbed_by_the_client(endpoint) -> None:
    url, delays = endpoint
    ThrottlingLogs.throttle = AWS_MAX_ATTEMPTS - 1
    analyse(url)
    assert set(start_calls().values()) == {AWS_MAX_ATTEMPTS}
    assert len(delays) == 2 * (AWS_MAX_ATTEMPTS - 1)  # one backoff per retry, both log groups


def test_throttling_past_the_budget_raises_after_exactly_max_attempts(endpoint) -> None:
    url, _ = endpoint
    ThrottlingLogs.throttle = AWS_MAX_ATTEMPTS + 10
    with pytest.raises(ThrottledError, match=f"after {AWS_MAX_ATTEMPTS} attempt"):
        analyse(url)
    assert list(start_calls().values()) == [AWS_MAX_ATTEMPTS]  # the first group fails; nothing loops above botocore
