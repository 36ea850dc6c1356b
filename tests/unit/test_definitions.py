"""The code location loads and its assets keep their keys, groups and owners."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg

from vpcpeer_orchestration.definitions import defs

SNAPSHOT = {
    "lambda_package": ("analyzer", ["team:network-security"]),
}


def test_asset_keys_groups_and_owners_snapshot() -> None:
    graph = defs.resolve_asset_graph()
    found = {
        key.to_user_string(): (graph.get(key).group_name, list(graph.get(key).owners))
        for key in graph.get_all_asset_keys()
    }
    assert found == SNAPSHOT


def test_lambda_package_materializes_with_its_hash() -> None:
    result = dg.materialize([defs.resolve_assets_def("lambda_package")])
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert len(metadata["sha256"].value) == 64
    assert metadata["size_bytes"].value > 0


def test_loading_the_code_location_imports_no_heavy_modules() -> None:
    probe = (
        "import sys, vpcpeer_orchestration.definitions as d; "
        "heavy = [m for m in ('pulumi', 'pulumi_aws', 'moto', 'boto3') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
