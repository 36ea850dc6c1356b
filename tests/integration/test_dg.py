"""`dg` (Dagster 1.13's command line) works from the repository root on the same code location as
workspace.yaml and `dagster job launch`, and says nothing about being deprecated or misconfigured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DG = Path(sys.executable).parent / "dg"


def dg(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    env.pop("VIRTUAL_ENV", None)  # as run after the quick start, without activating the venv
    return subprocess.run([str(DG), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_dg_checks_and_lists_the_code_location(tmp_path) -> None:
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    checked = dg("check", "defs", home=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    output = checked.stdout + checked.stderr
    assert "All definitions loaded successfully" in output
    assert "arning" not in output and "deprecat" not in output.lower() and "supersede" not in output.lower()

    listed = dg("list", "defs", "--json", home=tmp_path)
    assert listed.returncode == 0, listed.stderr
    defs = json.loads(listed.stdout)
    assert sorted(j["name"] for j in defs["jobs"]) == ["rollout_job", "traffic_analysis_job"]
    assert [s["name"] for s in defs["schedules"]] == ["traffic_analysis_schedule"]
    assert {a["asset_key"] for a in defs["assets"]} >= {"traffic_analysis", "traffic_anomalies", "peered_vpcs"}
