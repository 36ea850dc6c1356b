"""End-to-end tests start real processes in private homes and stop every one of them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def homes(tmp_path):
    """Private DAGSTER_HOME (with the checked-in dagster.yaml) and VPCPEER_HOME."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "VPCPEER_HOME": str(tmp_path / "vpcpeer_home")}
    env.pop("VPCPEER_AWS_ENDPOINT", None)
    yield env
    subprocess.run([str(BIN / "vpcpeer"), "local", "down"], env=env, capture_output=True, timeout=60)
    record = Path(env["VPCPEER_HOME"]) / "moto" / "server.json"
    assert not record.exists(), "the local AWS was left running"


def default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
