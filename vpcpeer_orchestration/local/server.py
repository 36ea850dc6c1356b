"""The local AWS endpoint: one moto server on loopback, shared by every process.

``VPCPEER_AWS_ENDPOINT`` set: that endpoint is used as is (vpcpeer neither starts nor
stops it). Unset: the embedded server is started on demand, its PID and port recorded
under ``$VPCPEER_HOME/moto`` (default ``~/.vpcpeer``), and reused by the CLI, the Dagster
code server, run workers and the daemon. A file lock makes concurrent starts yield one
server.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENDPOINT_ENV = "VPCPEER_AWS_ENDPOINT"
HOME_ENV = "VPCPEER_HOME"
REGION_ENV = "VPCPEER_AWS_REGION"
DEFAULT_REGION = "us-east-1"
# moto accepts any credentials; these make boto3 never look for real ones.
EMULATOR_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
START_TIMEOUT_SECONDS = 30.0


class LocalAwsError(RuntimeError):
    """The local AWS endpoint could not be started, reached or stopped."""


def vpcpeer_home() -> Path:
    """Where vpcpeer keeps local state (moto server record, logs)."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".vpcpeer")


def region() -> str:
    return os.environ.get(REGION_ENV) or DEFAULT_REGION


@dataclass(frozen=True)
class ServerRecord:
    """What a running embedded server left behind so other processes find it."""

    pid: int
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _state_dir() -> Path:
    path = vpcpeer_home() / "moto"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _record_path() -> Path:
    return _state_dir() / "server.json"


def _read_record() -> ServerRecord | None:
    try:
        data = json.loads(_record_path().read_text())
        return ServerRecord(int(data["pid"]), int(data["port"]))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0): reap it if it is ours.
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def healthy(endpoint: str, timeout: float = 1.0) -> bool:
    """True if a moto server answers at ``endpoint``."""
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    with open(_state_dir() / "lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _default_signals() -> None:
    """Children must not inherit ignored SIGINT/SIGTERM, or they cannot be stopped."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def running_record() -> ServerRecord | None:
    """The embedded server if it is up and answering, else None."""
    record = _read_record()
    if record and _alive(record.pid) and healthy(record.endpoint):
        return record
    return None


def start(port: int | None = None, progress: Any = None) -> ServerRecord:
    """Start the embedded server, or return the one already running."""
    with _lock():
        record = running_record()
        if record:
            return record
        port = port or int(os.environ.get("VPCPEER_LOCAL_PORT") or 0) or _free_port()
        log = open(_state_dir() / "server.log", "ab")  # noqa: SIM115 - handed to the child
        env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "false"}
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_default_signals, start_new_session=True, env=env,
        )
        log.close()
        record = ServerRecord(process.pid, port)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not healthy(record.endpoint):
            if process.poll() is not None:
                raise LocalAwsError(f"moto server exited with {process.returncode}; see {_state_dir() / 'server.log'}")
            if time.monotonic() > deadline:
                process.kill()
                raise LocalAwsError(f"moto server did not answer on port {port} within {START_TIMEOUT_SECONDS:g} s")
            if progress:
                progress(".")
            time.sleep(0.2)
        _record_path().write_text(json.dumps({"pid": record.pid, "port": record.port}))
        return record


def stop() -> bool:
    """Stop the embedded server by PID; True if one was running."""
    with _lock():
        record = _read_record()
        _record_path().unlink(missing_ok=True)
        if not record or not _alive(record.pid):
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _alive(record.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(record.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(record.pid, signal.SIGKILL)
        return True


def endpoint(*, start_if_needed: bool = True) -> str:
    """The AWS endpoint every client uses: VPCPEER_AWS_ENDPOINT, or the embedded server."""
    configured = os.environ.get(ENDPOINT_ENV)
    if configured:
        return configured.rstrip("/")
    record = running_record()
    if record:
        return record.endpoint
    if not start_if_needed:
        raise LocalAwsError("the embedded AWS is not running; start it with `vpcpeer local up`")
    return start().endpoint


def client(service: str, endpoint_url: str | None = None) -> Any:
    """A boto3 client for the local endpoint (fake credentials, fixed region)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        service, endpoint_url=endpoint_url or endpoint(), region_name=region(),
        config=Config(retries={"mode": "standard", "max_attempts": 3}), **EMULATOR_CREDENTIALS,
    )


def status() -> dict[str, Any]:
    """Where the endpoint is and whether it answers (``vpcpeer local status --json``)."""
    configured = os.environ.get(ENDPOINT_ENV)
    if configured:
        return {"endpoint": configured, "managed": False, "running": healthy(configured.rstrip("/")), "region": region()}
    record = running_record()
    return {
        "endpoint": record.endpoint if record else None,
        "managed": True,
        "running": record is not None,
        "pid": record.pid if record else None,
        "region": region(),
        "home": str(vpcpeer_home()),
    }
