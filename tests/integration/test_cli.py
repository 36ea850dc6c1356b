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


def test_bad_numbers_and_dates_are_refused_by_the_parser_in_one_line() -> None:
    """Out-of-range values exit 2 with the reason, before anything starts (no embedded AWS,
    no traceback): --hours 0 and -1, a month-ahead or an offset-less --at, a negative scale."""
    cases = [
        (("demo", "--hours", "0"), "0 is out of range: use 1-335"),
        (("demo", "--hours", "400"), "400 is out of range: use 1-335"),
        (("demo", "--hours", "-1"), "'-1' is not a whole number"),
        (("local", "simulate", "--hours", "0"), "0 is out of range"),
        (("local", "simulate", "--scale", "-1"), "'-1' is not a plain number"),
        (("local", "simulate", "--scale", "nan"), "'nan' is not a plain number"),
        (("local", "simulate", "--scale", "0"), "0 is out of range"),
        (("local", "simulate", "--at", "notadate"), "'notadate' is not an ISO 8601 time"),
        (("local", "simulate", "--at", "2099-01-01T00:00:00Z"), "is not a complete past hour"),
        (("local", "simulate", "--at", "2020-01-01T00:00:00Z"), "refuses events older than 14 days"),
        (("local", "simulate", "--at", "2026-01-01T00:00:00"), "has no UTC offset"),
        (("analyze", "--files", "VPC-A=x", "--start", "a", "--end", "b", "--jobs", "0"), "0 is out of range"),
        (("runs", "wait", "r1", "--timeout", "-5"), "'-5' is not a plain number"),
    ]
    for args, fragment in cases:
        done = vpcpeer(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert fragment in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)


def test_runs_wait_without_dagster_home_says_what_to_set() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME" and not k.startswith("PULUMI_")}
    done = subprocess.run([sys.executable, "-m", "vpcpeer_orchestration.cli", "runs", "wait", "some-run"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "DAGSTER_HOME is not set" in done.stderr and "Traceback" not in done.stderr


def test_a_bad_window_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text("")
    done = vpcpeer("analyze", "--files", f"VPC-A={tmp_path / 'a.log'}", "--start", "yesterday",
                   "--end", "2026-01-01T11:00:00Z")
    assert done.returncode == 2 and done.stderr.startswith("vpcpeer") and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and "is not ISO 8601" in done.stderr


def test_a_preview_writes_nothing_outside_the_build_folder(tmp_path: Path) -> None:
    """`--set lambda_zip_path=...` names where a rollout reads the zip; a preview builds its own
    zip in build/ and must neither overwrite that path nor create its directories."""
    target = tmp_path / "not" / "here" / "precious.zip"
    done = vpcpeer("infra", "preview", "--json", "--set", f"lambda_zip_path={target}")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "not").exists()
    precious = tmp_path / "precious.zip"
    precious.write_bytes(b"keep me")
    done = vpcpeer("infra", "preview", "--json", "--set", f"lambda_zip_path={precious}")
    assert done.returncode == 0, done.stderr
    assert precious.read_bytes() == b"keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["precious.zip"]
