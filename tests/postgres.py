"""A throwaway PostgreSQL server for the tests that need Dagster's Postgres storage.

Debian's ``postgresql`` package (``.ci/run`` installs it when missing) gives the binaries; the
server runs from a temporary directory on a free loopback port, as an unprivileged user (the
``postgres`` account when the tests run as root: the server refuses root; the switch happens
in the child, so the PID held is the server's), with default signal handling, and is stopped
by its PID. ``unavailable()`` says why a server cannot start
here, for the one skip this allows.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

USER = "vpcpeer"
DATABASE = "dagster"
START_TIMEOUT_SECONDS = 60


def binaries() -> Path | None:
    """The directory of initdb and postgres (Debian keeps them off PATH), newest version first."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]), reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _run_as() -> str | None:
    """The account the server runs as: None (this one) unless this is root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "nobody"
    return "postgres"


def unavailable() -> str | None:
    """Why no server can start here, or None."""
    if binaries() is None:
        return "PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)"
    return None


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _child_setup(account: str | None):
    """In the child before exec: default signal handling (children of a process that ignores
    SIGINT/SIGTERM inherit that; the server must not), and the unprivileged account, so the PID
    Popen returns is the server's own."""
    entry = pwd.getpwnam(account) if account else None

    def setup() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_DFL)
        if entry is not None:
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)

    return setup


@dataclass
class PostgresServer:
    """One running server; ``env`` holds the DAGSTER_PG_* variables deploy/dagster.postgres.yaml reads."""

    directory: Path
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def env(self) -> dict[str, str]:
        return {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(self.port), "DAGSTER_PG_USERNAME": USER,
                "DAGSTER_PG_PASSWORD": "unused-trust-auth", "DAGSTER_PG_DB": DATABASE}

    def create_database(self, name: str) -> None:
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=USER, dbname="postgres")
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()

    def stop(self) -> None:
        """Fast shutdown by PID; SIGKILL if it has not exited in 30 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # postgres: SIGINT is the fast shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


def start() -> PostgresServer:
    """A new cluster in a new directory of the system's temporary directory (the unprivileged
    account cannot enter a root-only test directory), started and accepting connections, with
    the ``dagster`` database."""
    bin_dir = binaries()
    assert bin_dir is not None, unavailable()
    account = _run_as()
    directory = Path(tempfile.mkdtemp(prefix="vpcpeer-postgres-"))
    data = directory / "data"
    if account:
        entry = pwd.getpwnam(account)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    initdb = subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8",
                             "--no-sync"], capture_output=True, text=True, preexec_fn=_child_setup(account), cwd=directory)
    if initdb.returncode:
        shutil.rmtree(directory, ignore_errors=True)
        raise RuntimeError(f"initdb failed ({initdb.returncode}): {initdb.stderr[-2000:]}")
    port = free_port()
    log = open(directory / "server.log", "w")  # noqa: SIM115 - the server writes it while it runs
    process = subprocess.Popen(
        [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(directory),
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"],
        stdout=log, stderr=subprocess.STDOUT, preexec_fn=_child_setup(account), cwd=directory)
    server = PostgresServer(directory, port, process)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"postgres exited with {process.returncode}: {(directory / 'server.log').read_text()[-2000:]}")
        ready = subprocess.run([str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True)
        if ready.returncode == 0:
            break
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"postgres did not accept connections in {START_TIMEOUT_SECONDS} s")
        time.sleep(0.2)
    server.create_database(DATABASE)
    return server
