"""Faults injected from outside: an HTTP proxy in front of an AWS endpoint.

Clients point at the proxy (as ``VPCPEER_AWS_ENDPOINT``); it forwards every request to the
real endpoint (the embedded AWS) unless a rule breaks it: answer an operation with an
error N times (SNS down, DynamoDB down), or run an action when an operation is seen (kill
the calling process between two of its calls). The code under test is never patched.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def operation_of(headers: dict[str, str], path: str, body: bytes) -> str:
    """The AWS operation a request names (JSON target, query Action, CBOR path), or METHOD path."""
    target = headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    if "/operation/" in path:
        return path.rstrip("/").rsplit("/", 1)[-1]
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return action[0]
    return f"{headers.get('method', 'GET')} {path}"


@dataclass
class Rule:
    """Break ``operation`` for ``times`` calls (after letting ``skip`` through), or act on it."""

    operation: str
    times: int = 0
    skip: int = 0
    status: int = 503
    code: str = "ServiceUnavailable"
    action: Callable[[bytes], None] | None = None
    drop: bool = False  # after the action, answer an error instead of forwarding
    when: Callable[[bytes], bool] = field(default=lambda body: True)
    seen: int = 0
    fired: int = 0


class FaultProxy:
    """A threaded forwarding proxy with fault rules; ``url`` is what clients use."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.rules: list[Rule] = []
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                headers["method"] = self.command
                operation = operation_of(headers, self.path, body)
                rule = proxy._match(operation, body)
                if rule is not None and rule.action is not None:
                    rule.action(body)
                if rule is not None and (rule.times or rule.drop):
                    self._error(rule, headers)
                    return
                self._forward(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle  # noqa: N815

            def _forward(self, body: bytes) -> None:
                connection = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                headers["Host"] = proxy.upstream.netloc
                connection.request(self.command, self.path, body=body or None, headers=headers)
                response = connection.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                connection.close()

            def _error(self, rule: Rule, headers: dict[str, str]) -> None:
                if headers.get("x-amz-target"):
                    data = json.dumps({"__type": rule.code, "message": "injected by the test"}).encode()
                    content_type = "application/x-amz-json-1.0"
                else:
                    data = (f"<ErrorResponse><Error><Type>Receiver</Type><Code>{rule.code}</Code>"
                            "<Message>injected by the test</Message></Error><RequestId>fault</RequestId>"
                            "</ErrorResponse>").encode()
                    content_type = "text/xml"
                self.send_response(rule.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _match(self, operation: str, body: bytes) -> Rule | None:
        with self.lock:
            self.calls[operation] += 1
            for rule in self.rules:
                if rule.operation != operation or not rule.when(body):
                    continue
                rule.seen += 1
                if rule.seen <= rule.skip:
                    return None
                if rule.action is not None and rule.fired == 0:
                    rule.fired += 1
                    return rule
                if rule.times and rule.fired < rule.times:
                    rule.fired += 1
                    return rule
            return None

    def fail(self, operation: str, times: int, *, skip: int = 0, status: int = 503,
             code: str = "ServiceUnavailable") -> Rule:
        """Answer the next ``times`` calls of ``operation`` (after ``skip`` good ones) with an error."""
        rule = Rule(operation, times=times, skip=skip, status=status, code=code)
        with self.lock:
            self.rules.append(rule)
        return rule

    def on(self, operation: str, action: Callable[[bytes], None], when: Callable[[bytes], bool] = lambda b: True,
           *, drop: bool = False) -> Rule:
        """Run ``action(body)`` the first time ``operation`` matches ``when``, then forward the call
        (or, with ``drop``, never let it reach the endpoint)."""
        rule = Rule(operation, action=action, when=when, drop=drop, status=500, code="InternalFailure")
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
