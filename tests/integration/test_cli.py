"""`vpcpeer infra preview` as a user runs it: a real subprocess, no cloud, no Pulumi CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.integration.test_preview import MINIMUM_COUNTS

REPO = Path(__file__).resolve().parents[2]


def vpcpeer(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    return subprocess.run(
        [sys.executable, "-m", "vpcpeer_orchestration.cli", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )


def test_preview_json_lists_every_resource_with_type_name_inputs() -> None:
    done = vpcpeer("infra", "preview", "--json")
    assert done.returncode == 0, done.stderr
    resources = json.loads(done.stdout)
    assert all(set(r) == {"type", "name", "inputs"} for r in resources)
    counts = Counter(r["type"].rsplit(":", 1)[1] for r in resources)
    assert all(counts[k] >= v for k, v in MINIMUM_COUNTS.items()), counts
    flow_logs = [r for r in resources if r["type"] == "aws:ec2/flowLog:FlowLog"]
    assert [r["inputs"]["trafficType"] for r in flow_logs] == ["ALL", "ALL"]
    assert resources == sorted(resources, key=lambda r: (r["type"], r["name"]))
    assert "alerts@example.com" not in done.stdout


def test_preview_human_output_has_counts_and_outputs() -> None:
    done = vpcpeer("infra", "preview", "--stack", "dev")
    assert done.returncode == 0, done.stderr
    assert "aws:ec2/natGateway:NatGateway" in done.stdout
    assert "peering_connection_id" in done.stdout
    assert "alert_email" in done.stdout and "[secret]" in done.stdout
    assert "alerts@example.com" not in done.stdout + done.stderr


def test_bad_config_exits_non_zero_with_the_key_and_fix() -> None:
    done = vpcpeer("infra", "preview", "--json", "--set", "vpc_b_cidr=10.0.0.0/16")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "vpcpeer:vpc_b_cidr" in done.stderr and "overlaps" in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_stack_is_reported() -> None:
    done = vpcpeer("infra", "preview", "--stack", "nope")
    assert done.returncode == 2
    assert "Pulumi.nope.yaml" in done.stderr and "dev" in done.stderr


def test_lambda_build_reports_a_stable_hash(tmp_path: Path) -> None:
    first = vpcpeer("lambda", "build", "--json", "--out", str(tmp_path / "a.zip"))
    second = vpcpeer("lambda", "build", "--json", "--out", str(tmp_path / "b.zip"))
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert a["sha256"] == b["sha256"] and "lambda_pkg/constants.py" in a["files"]
