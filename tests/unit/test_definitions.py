"""The code location loads and keeps its asset keys, groups, owners, jobs and automation."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone

import dagster as dg
import pytest

from vpcpeer_orchestration.definitions import build_definitions
from vpcpeer_orchestration.resources import InvalidTarget

defs = build_definitions("embedded")

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
    assert parents("traffic_metrics") == {"traffic_analysis", "anomaly_alerts"}  # alerts first, then metrics


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
    assert rules == {"no_traffic_spike", "no_port_scan", "no_external_traffic", "no_unexpected_port", "no_high_rejections",
                     "no_traffic_drop", "no_new_talker",
                     "no_flow_logs_silent"}


def test_schedule_analyses_the_hour_that_ended_after_the_settle_lag() -> None:
    schedule = defs.resolve_schedule_def("traffic_analysis_schedule")
    assert schedule.cron_schedule == "15 * * * *"
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 28, 10, 15, tzinfo=timezone.utc))
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-11-28-09:00"


def test_jobs_and_sensors_are_registered() -> None:
    assert {j.name for j in defs.resolve_all_job_defs()} >= {"rollout_job", "traffic_analysis_job"}
    assert {s.name for s in defs.sensors} == {"analysis_failure_sensor", "stack_drift_sensor", "alarm_state_sensor"}
    # Failure alerts and redeliveries must not depend on someone switching them on.
    status = {s.name: s.default_status for s in defs.sensors}
    assert status["analysis_failure_sensor"] == dg.DefaultSensorStatus.RUNNING


def test_the_steps_with_effects_share_a_concurrency_pool() -> None:
    graph = defs.resolve_asset_graph()
    pools = {key: graph.get(dg.AssetKey(key)).pools for key in ("anomaly_alerts", "traffic_metrics")}
    assert pools == {"anomaly_alerts": {"vpcpeer_analysis"}, "traffic_metrics": {"vpcpeer_analysis"}}


def test_lambda_package_materializes_with_its_hash(tmp_path) -> None:
    from vpcpeer_orchestration.assets.package import lambda_package_asset
    from vpcpeer_orchestration.io import LocalJsonIOManager

    result = dg.materialize([lambda_package_asset()],
                            resources={"reports_io_manager": LocalJsonIOManager(location=str(tmp_path))})
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert len(metadata["sha256"].value) == 64
    assert metadata["size_bytes"].value > 0
    value = result.asset_value("lambda_package")
    assert value["sha256"] == metadata["sha256"].value and value["path"].endswith("lambda_pkg.zip")


HEAVY = ("pulumi", "pulumi_aws", "moto", "boto3", "botocore", "dagster_aws")


def _probe(code: str, env: dict[str, str] | None = None) -> str:
    import os

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, **(env or {})})
    return done.stdout.strip()


def test_loading_the_code_location_imports_no_heavy_modules() -> None:
    probe = (
        "import sys, vpcpeer_orchestration.definitions as d; d.defs(); "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    assert _probe(probe) == ""


def test_importing_the_definitions_reads_only_the_partitions_start_and_installs_no_warnings_filter() -> None:
    """Every read of os.environ made directly by vpcpeer's own code is recorded with its key.
    The one read at import is where the hourly partitions start (an asset's partitions are
    fixed when it is declared): VPCPEER_PARTITIONS_START, else the instance's record of it."""
    probe = (
        "import os, sys, warnings, pathlib\n"

        "reads = []\n"
        "original = os._Environ.__getitem__\n"
        "def spy(self, key):\n"
        "    frame = sys._getframe(1)\n"
        "    while frame is not None and frame.f_globals.get('__name__') in ('os', '_collections_abc', 'collections.abc'):\n"
        "        frame = frame.f_back\n"
        "    name = frame.f_globals.get('__name__', '') if frame is not None else ''\n"
        "    if name.split('.')[0] in ('vpcpeer_orchestration', 'infra', 'lambda_pkg'):\n"
        "        reads.append((name, key))\n"
        "    return original(self, key)\n"
        "os._Environ.__getitem__ = spy\n"
        "import dagster\n"
        "before = list(warnings.filters)\n"
        "import vpcpeer_orchestration.definitions\n"
        "print(reads, list(warnings.filters) == before)\n"
    )
    assert _probe(probe, {"VPCPEER_TARGET": "embedded", "VPCPEER_STACK": "dev", "VPCPEER_PARTITIONS_START": "2026-10-01",
                          "DAGSTER_HOME": "/nonexistent"}) == \
        "[('vpcpeer_orchestration.partitions', 'VPCPEER_PARTITIONS_START')] True"


def test_the_aws_target_has_the_same_graph_with_flow_logs_written_by_aws() -> None:
    aws = build_definitions("aws")
    graph = aws.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == set(SNAPSHOT)
    assert not graph.get(dg.AssetKey("flow_log_records")).is_materializable
    assert graph.get(dg.AssetKey("flow_log_records")).group_name == TRAFFIC
    assert "flow_log_records" not in {n.name for n in aws.resolve_job_def("traffic_analysis_job").nodes}
    assert "flow_log_records" in {n.name for n in defs.resolve_job_def("traffic_analysis_job").nodes}
    resources = aws.resources
    assert type(resources["stack"]).__name__ == "PulumiStackResource"
    assert type(resources["analyzer"]).__name__ == "LambdaAnalyzerResource"


def test_the_aws_target_never_imports_the_emulator() -> None:
    probe = (
        "import sys; from vpcpeer_orchestration.definitions import build_definitions; build_definitions('aws'); "
        "print(sorted(m for m in sys.modules if m.startswith(('vpcpeer_orchestration.local', 'moto'))))"
    )
    assert _probe(probe) == "[]"


def test_an_unknown_target_is_refused_with_the_choices() -> None:
    import pytest

    with pytest.raises(InvalidTarget, match="VPCPEER_TARGET='gcp'.*embedded, aws"):
        build_definitions("gcp")


def test_jobs_select_by_group() -> None:
    rollout = {n.name for n in defs.resolve_job_def("rollout_job").nodes}
    assert rollout == {"lambda_package", "network_stack"}
    analysis = {n.name for n in defs.resolve_job_def("traffic_analysis_job").nodes}
    assert analysis == {"flow_log_records", "traffic_analysis", "traffic_anomalies", "anomaly_alerts", "traffic_metrics"}


def test_dagster_definitions_validate_passes() -> None:
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
                          cwd=repo, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Validation successful for code location vpcpeer" in done.stderr + done.stdout


def test_the_embedded_aws_modules_import_no_pulumi() -> None:
    modules = ["server", "stack", "alerts", "layout", "flowlogs", "scenarios"]
    probe = (f"import sys, importlib; [importlib.import_module('vpcpeer_orchestration.local.' + m) for m in {modules!r}]; "
             "print([m for m in ('pulumi', 'pulumi_aws', 'infra.runner', 'infra.emulation') if m in sys.modules])")
    assert _probe(probe) == "[]"


@pytest.mark.parametrize("damage", ["{not json", None])
def test_a_damaged_or_missing_stored_value_fails_once_naming_the_file_and_the_fix(tmp_path, damage) -> None:
    """A retry would read the same bytes: the step fails at once (no retry), and says which
    file and what to materialize, instead of a bare JSONDecodeError three times over."""
    from vpcpeer_orchestration.io import LocalJsonIOManager

    io = {"io_manager": LocalJsonIOManager(location=str(tmp_path))}
    attempts = []

    @dg.asset
    def upstream() -> dict:
        return {"ok": 1}

    @dg.asset(retry_policy=dg.RetryPolicy(max_retries=3))
    def downstream(upstream: dict) -> int:
        attempts.append(1)
        return upstream["ok"]

    assert dg.materialize([upstream], resources=io).success
    stored = tmp_path / "upstream" / "__value__.json"
    if damage is None:
        stored.unlink()
    else:
        stored.write_text(damage)
    result = dg.materialize([upstream, downstream], selection=[downstream], resources=io, raise_on_error=False)
    assert not result.success and attempts == []
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.error.message
    assert str(stored) in message and "materialize upstream again" in message
    assert ("damaged" if damage else "missing") in message
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
