"""The scenario registry: light to import, one entry per scenario, documented as the README says."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lambda_pkg.constants import VPC_LABELS
from lambda_pkg.detect import ANOMALY_SEVERITY
from vpcpeer_orchestration.local import scenarios

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("boto3", "botocore", "pulumi", "pulumi_aws", "moto", "dagster")


@pytest.mark.parametrize("module", ["scenarios", "traffic_model"])
def test_the_pure_modules_import_nothing_heavy(module: str) -> None:
    code = (f"import sys, vpcpeer_orchestration.local.{module}; "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("module", ["flowlogs", "topology"])
def test_the_adapters_import_no_pulumi(module: str) -> None:
    code = (f"import sys, vpcpeer_orchestration.local.{module}; "
            "print([m for m in ('pulumi', 'infra', 'infra.emulation', 'moto') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_names_are_the_registry_keys_in_order_and_unique() -> None:
    assert scenarios.names() == ("port-scan", "traffic-spike", "external-source", "unexpected-port", "reject-storm",
                                "quiet-hour-surge", "new-talker")
    assert len(set(scenarios.names())) == len(scenarios.names())
    assert all(scenarios.SCENARIOS[name].name == name for name in scenarios.names())


def test_a_name_registered_twice_is_refused() -> None:
    entry = scenarios.get("port-scan")
    with pytest.raises(ValueError, match="'port-scan' is registered twice"):
        scenarios.index([entry, dataclasses.replace(entry, description="another")])


@pytest.mark.parametrize("name", scenarios.names())
def test_every_entry_is_documented_with_the_anomalies_it_causes(name: str) -> None:
    entry = scenarios.get(name)
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", entry.name)
    assert entry.description.strip() and entry.reported.strip()
    assert entry.anomalies, "every scenario must cause at least one anomaly"
    for kind, vpc in entry.anomalies:
        assert kind in ANOMALY_SEVERITY and vpc in VPC_LABELS
        assert kind in entry.reported


def _readme_table() -> dict[str, tuple[str, str]]:
    text = (REPO / "README.md").read_text()
    text = text[text.index("| scenario | what is written |"):]
    text = text[:text.index("\n\n")]  # the scenarios table only
    rows = re.findall(r"^\| `([a-z-]+)` \| (.+?) \| (.+?) \|$", text, flags=re.MULTILINE)
    return {name: (written, reported.replace("`", "")) for name, written, reported in rows}


def test_the_readme_table_shows_every_scenario_as_registered() -> None:
    table = _readme_table()
    assert list(table) == list(scenarios.names())
    for name, (written, reported) in table.items():
        assert (written, reported) == (scenarios.get(name).description, scenarios.get(name).reported), name
