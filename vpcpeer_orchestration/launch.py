"""Runs launched the way `dagster job launch` and the UI launch them, and waited for.

A run executed in-process (``execute_in_process``) is recorded without the code location it
came from, so the UI's job pages and the Overview timeline do not list it. The demo launches
its runs here instead: ``dagster job launch -w workspace.yaml`` loads the code location, and the
instance's run launcher starts a run worker process for it, exactly as for CI and for a run
started from the UI. The launch's own output (and the run worker's console) goes to a log file
in the instance, never to the user's terminal; the run's events are read back from the
instance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpcpeer_orchestration.homes import REPO

WORKSPACE = REPO / "workspace.yaml"
# Loading the workspace in a fresh process takes a few seconds; a launch that has not returned
# after this long is stuck.
LAUNCH_TIMEOUT_SECONDS = 300


class LaunchFailed(RuntimeError):
    """``dagster job launch`` refused or failed, or a run did not finish in time."""


@dataclass(frozen=True)
class FinishedRun:
    """A run that reached a terminal status, with its Dagster events from the instance."""

    run_id: str
    job_name: str
    status: str
    events: list[Any]

    @property
    def success(self) -> bool:
        return self.status == "SUCCESS"

    def check_evaluations(self) -> list[Any]:
        """The run's asset check evaluations (AssetCheckEvaluation objects)."""
        return [e.event_specific_data for e in self.events if e.event_type_value == "ASSET_CHECK_EVALUATION"]


def launch(job: str, *, home: Path, log: Path, tags: Mapping[str, str] | None = None,
           env: Mapping[str, str] | None = None) -> str:
    """Launch ``job`` on the instance at ``home`` as `dagster job launch` does; returns the run id.

    ``env`` adds variables for the code location (the VPCPEER_* settings it is loaded with).
    """
    run_id = str(uuid.uuid4())
    command = [str(Path(sys.executable).parent / "dagster"), "job", "launch", "-w", str(WORKSPACE), "-j", job,
               "--run-id", run_id]
    if tags:
        command += ["--tags", json.dumps(dict(tags))]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as output:
        output.write(f"\n== {' '.join(command)}\n".encode())
        output.flush()
        try:
            done = subprocess.run(command, cwd=REPO, env={**os.environ, **(env or {}), "DAGSTER_HOME": str(home)},
                                  stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  timeout=LAUNCH_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            raise LaunchFailed(f"`dagster job launch -j {job}` did not return within {LAUNCH_TIMEOUT_SECONDS} s "
                               f"(its output: {log})") from None
    if done.returncode:
        raise LaunchFailed(f"`dagster job launch -j {job}` failed with status {done.returncode}: "
                           f"{_last_line(log)} (its output: {log})")
    return run_id


def wait(instance: Any, run_id: str, timeout: float, *, waiting: Callable[[], None] | None = None) -> FinishedRun:
    """Wait until the run is finished; Ctrl-C terminates it rather than leave it running unseen."""
    from dagster import DagsterRunStatus

    terminal = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
    deadline = time.monotonic() + timeout
    try:
        while True:
            run = instance.get_run_by_id(run_id)
            if run is None:
                raise LaunchFailed(f"run {run_id} is not in the instance at {instance.root_directory}")
            if run.status in terminal:
                events = [e.dagster_event for e in instance.all_logs(run_id) if e.dagster_event is not None]
                return FinishedRun(run_id, run.job_name, run.status.value, events)
            if time.monotonic() > deadline:
                instance.run_launcher.terminate(run_id)
                raise LaunchFailed(f"run {run_id} of {run.job_name} did not finish within {timeout:.0f} s; "
                                   "it was terminated")
            if waiting:
                waiting()
            time.sleep(0.5)
    except KeyboardInterrupt:
        instance.run_launcher.terminate(run_id)
        raise


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else "no output"
