"""`dg dev` from the repository root (what `make dev` runs): the UI's GraphQL API lists the graph and launches
a rollout and an analysis partition; every process started is stopped."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from datetime import datetime, timedelta, timezone

from lambda_pkg.constants import DEFAULT_SETTLE_LAG_SECONDS
from lambda_pkg.window import last_complete_hour
from tests.e2e.conftest import BIN, REPO, default_signals
from tests.unit.test_definitions import SNAPSHOT

LAUNCH = """
mutation Launch($job: String!, $tags: [ExecutionTag!]) {
  launchRun(executionParams: {
      selector: {repositoryLocationName: "vpcpeer", repositoryName: "__repository__", jobName: $job},
      executionMetadata: {tags: $tags}}) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
STATUS = "query Status($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
ASSETS = "{ assetNodes { assetKey { path } } }"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", method="POST",
                                     data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return body["data"]


def wait_for(port: int, run_id: str, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = graphql(port, STATUS, {"id": run_id})["runOrError"].get("status")
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(2)
    raise AssertionError(f"run {run_id} did not finish in {timeout} s")


def launch(port: int, job: str, tags: dict[str, str] | None = None) -> str:
    result = graphql(port, LAUNCH, {"job": job, "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]})
    launched = result["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def test_dagster_dev_lists_the_graph_and_runs_a_partition(homes) -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "dg"), "dev", "-h", "127.0.0.1", "-p", str(port)],  # what `make dev` runs
        cwd=REPO, env={**homes, "PATH": f"{BIN}:{os.environ['PATH']}"}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=default_signals,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                graphql(port, "{ version }")
                break
            except OSError:
                assert process.poll() is None, "dagster dev exited"
                assert time.monotonic() < deadline, "dagster dev did not answer"
                time.sleep(1)
        nodes = {"/".join(n["assetKey"]["path"]) for n in graphql(port, ASSETS)["assetNodes"]}
        assert nodes == set(SNAPSHOT)

        assert wait_for(port, launch(port, "rollout_job")) == "SUCCESS"
        settled = last_complete_hour(datetime.now(timezone.utc), timedelta(seconds=DEFAULT_SETTLE_LAG_SECONDS))
        partition = settled.start.strftime("%Y-%m-%d-%H:00")
        run_id = launch(port, "traffic_analysis_job", {"dagster/partition": partition})
        assert wait_for(port, run_id) == "SUCCESS"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    started_waiting = time.monotonic()
    # dagster dev lets its code server finish in-flight calls (up to 60 s); stragglers of the
    # group it started are asked again to stop, and must all be gone within 90 s.
    deadline = time.monotonic() + 90
    nudged = time.monotonic()
    while (leftovers := subprocess.run(["pgrep", "-g", str(process.pid)], capture_output=True, text=True).stdout.split()):
        if time.monotonic() > deadline:
            detail = subprocess.run(["ps", "-o", "pid,stat,args", "-p", ",".join(leftovers)],
                                    capture_output=True, text=True).stdout
            os.killpg(process.pid, signal.SIGKILL)
            raise AssertionError(f"processes left behind after 90 s:\n{detail}")
        if time.monotonic() - nudged > 10:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            nudged = time.monotonic()
        time.sleep(0.5)
    print(f"process group empty {time.monotonic() - started_waiting:.1f} s after dagster dev exited")
