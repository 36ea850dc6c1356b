"""The code location loads and keeps its asset keys, groups, owners, jobs and automation."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone

import dagster as dg

from vpcpeer_orchestration.definitions import defs

NET, TRAFFIC = "network", "traffic"
OWNERS = ["team:network-security"]
SNAPSHOT = {
    "lambda_package": ("analyzer", OWNERS),
    "peered_vpcs": (NET, OWNERS),
    "peering_security_groups": (NET, OWNERS),
    "flow_log_pipeline": (NET, OWNERS),
    "alerting": (NET, OWNERS),
    "analyzer_function": (NET, OWNERS),
    "monitoring_dashboard": (NET, OWNERS),
    "flow_log_records": (TRAFFIC, OWNERS),
    "traffic_analysis": (TRAFFIC, OWNERS),
    "traffic_anomalies": (TRAFFIC, OWNERS),
    "anomaly_alerts": (TRAFFIC, OWNERS),
    "traffic_metrics": (TRAFFIC, OWNERS),
}


def test_asset_keys_groups_and_owners_snapshot() -> None:
    graph = defs.resolve_asset_graph()
    found = {
        key.to_user_string(): (graph.get(key).group_name, list(graph.get(key).owners))
        for key in graph.get_all_asset_keys()
    }
    assert found == SNAPSHOT


def test_lineage_runs_from_package_to_alerts() -> None:
    graph = defs.resolve_asset_graph()
    parents = lambda key: {k.to_user_string() for k in graph.get(dg.AssetKey(key)).parent_keys}  # noqa: E731
    assert parents("analyzer_function") >= {"lambda_package", "flow_log_pipeline", "alerting"}
    assert parents("flow_log_records") == {"flow_log_pipeline"}
    assert parents("traffic_analysis") == {"flow_log_records"}
    assert parents("anomaly_alerts") == {"traffic_analysis", "traffic_anomalies"}
    assert parents("traffic_metrics") == {"traffic_analysis"}


def test_every_asset_has_a_description_and_kinds() -> None:
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description and len(node.description) > 40, key
        assert node.kinds, key


def test_analysis_assets_backfill_in_a_single_run() -> None:
    graph = defs.resolve_asset_graph()
    for key in ("traffic_analysis", "traffic_anomalies", "anomaly_alerts", "traffic_metrics"):
        node = graph.get(dg.AssetKey(key))
        assert node.backfill_policy == dg.BackfillPolicy.single_run(), key
        assert node.partitions_def.timezone == "UTC"


def test_checks_cover_posture_and_every_rule() -> None:
    graph = defs.resolve_asset_graph()
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert {("peered_vpcs", "peering_active"), ("flow_log_pipeline", "flow_logs_active"),
            ("peering_security_groups", "rules_match_declared_ports"),
            ("peering_security_groups", "default_groups_empty")} <= checks
    rules = {name for asset, name in checks if asset == "traffic_anomalies"}
    assert rules == {"no_traffic_spike", "no_port_scan", "no_external_traffic", "no_unexpected_port", "no_high_rejections"}


def test_schedule_analyses_the_hour_that_ended_after_the_settle_lag() -> None:
    schedule = defs.resolve_schedule_def("traffic_analysis_schedule")
    assert schedule.cron_schedule == "15 * * * *"
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 28, 10, 15, tzinfo=timezone.utc))
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-11-28-09:00"


def test_jobs_and_sensors_are_registered() -> None:
    assert {j.name for j in defs.resolve_all_job_defs()} >= {"rollout_job", "traffic_analysis_job"}
    assert {s.name for s in defs.sensors} == {"analysis_failure_sensor", "stack_drift_sensor", "alarm_state_sensor"}


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


def test_dagster_definitions_validate_passes() -> None:
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
                          cwd=repo, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Validation successful for code location vpcpeer" in done.stderr + done.stdout
