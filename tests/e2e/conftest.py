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


def private_env(dagster_home: Path) -> dict[str, str]:
    """An environment whose Dagster instance (and so embedded AWS) is ``dagster_home``'s."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    for name in ("VPCPEER_HOME", "VPCPEER_AWS_ENDPOINT"):
        env.pop(name, None)
    return env


def stop_embedded_aws(env: dict[str, str]) -> None:
    subprocess.run([str(BIN / "vpcpeer"), "local", "down"], env=env, capture_output=True, timeout=120)
    record = Path(env["DAGSTER_HOME"]) / "embedded-aws" / "server.json"
    assert not record.exists(), "the embedded AWS was left running"


@pytest.fixture
def homes(tmp_path):
    """A private DAGSTER_HOME (with the checked-in dagster.yaml); its embedded AWS lives under it."""
    env = private_env(tmp_path / "dagster_home")
    yield env
    stop_embedded_aws(env)


def default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
