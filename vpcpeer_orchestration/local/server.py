"""The embedded AWS: one moto server per Dagster instance, whose state survives restarts.

A ``LocalAws`` is a handle on one home directory (by default ``<instance>/embedded-aws``,
see ``vpcpeer_orchestration.homes``). Its server is started on demand and shared by every
process of that instance (CLI, code server, run workers, daemon); a file lock makes
concurrent starts yield one server. The server is ``local.moto_process``: moto with its
state snapshotted to the home after changes, on request (``flush``) and on stop, and
restored on start. Each fresh state gets a *generation* id; ``purge`` is the one way to
throw a generation away, and it is recorded so the Dagster side can tell a deliberate
reset from a lost state.

``VPCPEER_AWS_ENDPOINT`` set: that endpoint is used as is; vpcpeer neither starts, stops,
snapshots nor purges it.

Home layout: ``server.json`` (pid, port, generation of the running server, written by the
server once it answers), ``server.log``, ``lock``, ``state/`` (the server's snapshot and
generation), ``purged.json`` (generations discarded by ``purge``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vpcpeer_orchestration.homes import embedded_aws_home

ENDPOINT_ENV = "VPCPEER_AWS_ENDPOINT"
PORT_ENV = "VPCPEER_LOCAL_PORT"
# moto accepts any credentials; these make boto3 never look for real ones.
EMULATOR_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# Restoring a large snapshot (two weeks of flow logs) takes a while.
START_TIMEOUT_SECONDS = 120.0
# The server writes a final snapshot when asked to stop.
STOP_TIMEOUT_SECONDS = 60.0
FLUSH_TIMEOUT_SECONDS = 300.0
# Exit status of the server when its home has a generation but the state is gone.
EXIT_STATE_LOST = 3
SNAPSHOT_PATH = "/vpcpeer-api/snapshot"
STATE_DIRNAME = "state"

ClientFactory = Callable[[str], Any]


class LocalAwsError(RuntimeError):
    """The local AWS endpoint could not be started, reached or stopped."""


class EmbeddedStateLost(LocalAwsError):
    """The embedded AWS had state (a generation) that is gone; it refuses to start empty."""


@dataclass(frozen=True)
class ServerRecord:
    """What a running embedded server left behind so other processes find it."""

    pid: int
    port: int
    generation: str

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def healthy(endpoint: str, timeout: float = 1.0) -> bool:
    """True if a moto server answers at ``endpoint``."""
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


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


def _default_signals() -> None:
    """Children must not inherit ignored SIGINT/SIGTERM, or they cannot be stopped."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def make_client(service: str, endpoint_url: str, region: str) -> Any:
    """A boto3 client of an emulator endpoint: fake credentials, vpcpeer's retry configuration."""
    import boto3

    from lambda_pkg.clients import client_config

    return boto3.client(service, endpoint_url=endpoint_url, region_name=region, config=client_config(),
                        **EMULATOR_CREDENTIALS)


@dataclass(frozen=True)
class LocalAws:
    """Handle on one embedded AWS: its home, or an external endpoint it does not manage."""

    home: Path
    external_endpoint: str | None = None

    @classmethod
    def from_env(cls, instance_root: str | Path | None = None) -> LocalAws:
        """The embedded AWS of an instance, honouring VPCPEER_HOME and VPCPEER_AWS_ENDPOINT."""
        external = (os.environ.get(ENDPOINT_ENV) or "").strip().rstrip("/") or None
        return cls(embedded_aws_home(instance_root), external)

    @property
    def managed(self) -> bool:
        """False when VPCPEER_AWS_ENDPOINT points at an emulator vpcpeer does not run."""
        return self.external_endpoint is None

    # -- files of the home --------------------------------------------------------------

    @property
    def record_path(self) -> Path:
        return self.home / "server.json"

    @property
    def log_path(self) -> Path:
        return self.home / "server.log"

    @property
    def state_dir(self) -> Path:
        return self.home / STATE_DIRNAME

    @property
    def purged_path(self) -> Path:
        return self.home / "purged.json"

    @contextlib.contextmanager
    def lock(self, name: str, waiting: Callable[[], None] | None = None) -> Iterator[None]:
        """Hold ``<home>/<name>.lock`` exclusively: one holder per emulator across processes.

        ``waiting`` is called once if another process holds it (to tell the user), then
        this one waits. The lock goes with the process, so a crashed holder never blocks.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / f"{name}.lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if waiting:
                    waiting()
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _lock(self) -> contextlib.AbstractContextManager[None]:
        return self.lock("server")

    def _read_record(self) -> ServerRecord | None:
        try:
            data = json.loads(self.record_path.read_text())
            return ServerRecord(int(data["pid"]), int(data["port"]), str(data["generation"]))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    # -- lifecycle ----------------------------------------------------------------------

    def running(self) -> ServerRecord | None:
        """The embedded server if it is up and answering, else None."""
        record = self._read_record()
        if record and _alive(record.pid) and healthy(record.endpoint):
            return record
        return None

    def start(self, progress: Callable[[str], None] | None = None) -> ServerRecord:
        """Start the embedded server (restoring its state), or return the one running."""
        if not self.managed:
            raise LocalAwsError(f"{ENDPOINT_ENV} is set: vpcpeer does not start the emulator at {self.external_endpoint}")
        with self._lock():
            record = self.running()
            if record:
                return record
            self.record_path.unlink(missing_ok=True)
            port = int(os.environ.get(PORT_ENV) or 0)
            log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
            written_before = log.tell()  # what earlier servers logged is not this one's reason
            env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "false"}
            process = subprocess.Popen(
                [sys.executable, "-m", "vpcpeer_orchestration.local.moto_process", "--home", str(self.home),
                 "--port", str(port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_default_signals, start_new_session=True, env=env,
            )
            log.close()
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while True:
                record = self._read_record()
                if record and record.pid == process.pid and healthy(record.endpoint):
                    return record
                if process.poll() is not None:
                    if process.returncode == EXIT_STATE_LOST:
                        raise EmbeddedStateLost(self._log_tail(1, since=written_before) or f"the embedded AWS at {self.home} lost its state")
                    tail = self._log_tail(since=written_before)
                    code = process.returncode
                    how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                    raise LocalAwsError(f"the embedded AWS {how} while starting"
                                        f"{': ' + tail if tail else ', before it logged anything'} "
                                        f"(log: {self.log_path})")
                if time.monotonic() > deadline:
                    process.kill()
                    raise LocalAwsError(f"the embedded AWS did not answer within {START_TIMEOUT_SECONDS:g} s "
                                        f"(log: {self.log_path})")
                if progress:
                    progress(".")
                time.sleep(0.2)

    def _log_tail(self, lines: int = 5, since: int = 0) -> str:
        """The last ``lines`` lines the server log holds past byte ``since``, joined on one line."""
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(since)
                text = handle.read().decode(errors="replace").strip().splitlines()
        except FileNotFoundError:
            return ""
        return " | ".join(text[-lines:])

    def endpoint(self, *, start_if_needed: bool = True) -> str:
        """The AWS endpoint every client uses: the external one, or the embedded server."""
        if not self.managed:
            return self.external_endpoint  # type: ignore[return-value]
        record = self.running()
        if record:
            return record.endpoint
        if not start_if_needed:
            raise LocalAwsError(f"the embedded AWS ({self.home}) is not running; start it with `vpcpeer local up`")
        return self.start().endpoint

    def clients(self, region: str) -> ClientFactory:
        """A factory of boto3 clients of this emulator in ``region`` (the endpoint resolved once)."""
        endpoint_url = self.endpoint()
        return lambda service: make_client(service, endpoint_url, region)

    def generation(self) -> str | None:
        """Id of the running server's state (None for an external endpoint or when stopped)."""
        if not self.managed:
            return None
        record = self.running()
        return record.generation if record else None

    def flush(self) -> None:
        """Make every change so far durable (a snapshot now); a no-op if nothing runs here."""
        record = self.running() if self.managed else None
        if record is None:
            return
        request = urllib.request.Request(f"{record.endpoint}{SNAPSHOT_PATH}", method="POST", data=b"")
        try:
            with urllib.request.urlopen(request, timeout=FLUSH_TIMEOUT_SECONDS) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            raise LocalAwsError(f"the embedded AWS at {record.endpoint} could not save its state: {exc}") from exc

    def stop(self) -> bool:
        """Stop the embedded server by PID (it saves its state first); True if one was running."""
        if not self.managed:
            return False
        with self._lock():
            record = self._read_record()
            if not record or not _alive(record.pid):
                self.record_path.unlink(missing_ok=True)
                return False
            with contextlib.suppress(ProcessLookupError):
                os.killpg(record.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
            while _alive(record.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(record.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(record.pid, signal.SIGKILL)
                deadline = time.monotonic() + 10
                while _alive(record.pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
            self.record_path.unlink(missing_ok=True)
            return True

    def purged(self) -> frozenset[str]:
        """Generations thrown away on purpose with ``purge``."""
        try:
            return frozenset(entry["generation"] for entry in json.loads(self.purged_path.read_text()))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return frozenset()

    def purge(self, forget: tuple[str, ...] = ()) -> list[str]:
        """Stop the server and discard its state; records the generations discarded.

        ``forget`` adds generations lost otherwise (the home deleted by hand), so the
        Dagster side stops refusing to replace what they produced.
        """
        if not self.managed:
            raise LocalAwsError(f"{ENDPOINT_ENV} is set: vpcpeer does not manage the emulator at {self.external_endpoint}")
        self.stop()
        with self._lock():
            discarded = list(forget)
            generation_file = self.state_dir / "generation"
            if generation_file.is_file():
                discarded.insert(0, generation_file.read_text().strip())
            shutil.rmtree(self.state_dir, ignore_errors=True)
            if discarded:
                try:
                    entries = json.loads(self.purged_path.read_text())
                except (FileNotFoundError, ValueError):
                    entries = []
                now = datetime.now(timezone.utc).isoformat()
                entries += [{"generation": g, "purged_at": now} for g in discarded]
                self.purged_path.write_text(json.dumps(entries, indent=1))
            return discarded

    def status(self) -> dict[str, Any]:
        """Where the endpoint is and whether it answers (``vpcpeer local status --json``)."""
        if not self.managed:
            return {"endpoint": self.external_endpoint, "managed": False, "running": healthy(self.external_endpoint or ""),
                    "pid": None, "generation": None, "home": None}
        record = self.running()
        return {
            "endpoint": record.endpoint if record else None,
            "managed": True,
            "running": record is not None,
            "pid": record.pid if record else None,
            "generation": record.generation if record else None,
            "home": str(self.home),
        }
