"""`vpcpeer demo`: the main job on the embedded default, end to end.

Start the instance's embedded AWS, roll out through ``rollout_job``, inject the demo's
scenarios, analyse every hour of the last day that has not been analysed yet in one run of
``traffic_analysis_job`` (its ``flow_log_records`` step has the flow-log emulator write the
hours), and report every hour from the stored results. Runs are recorded in the Dagster
instance at DAGSTER_HOME (default ``dagster_home/`` in the checkout), so ``dagster dev``
shows the same history afterwards; a second demo re-analyses nothing and alerts nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from vpcpeer_orchestration.homes import REPO, dagster_home, prepare_dagster_home

# The demo prints its own progress; Dagster's per-step log lines stay in the run's log.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# Every registered scenario, each 4 hours apart starting 2 hours before the last complete
# hour, so normal hours sit between them (port-scan at -2, ..., reject-storm at -18).
SCENARIO_SPACING_HOURS = 4


def demo_scenarios() -> dict[str, int]:
    """Scenario name -> hours before the last complete hour."""
    from vpcpeer_orchestration.local.scenarios import names

    return {name: 2 + SCENARIO_SPACING_HOURS * i for i, name in enumerate(names())}


class DemoFailed(RuntimeError):
    """A step of the demo failed; the message says which."""


def contiguous_ranges(keys: list[str], ordered: list[str]) -> list[tuple[str, str]]:
    """Runs of consecutive keys (in ``ordered``'s order) as (first, last) pairs."""
    wanted, ranges, current = set(keys), [], None
    for key in ordered:
        if key in wanted:
            current = (current[0], key) if current else (key, key)
        elif current:
            ranges.append(current)
            current = None
    if current:
        ranges.append(current)
    return ranges


def run_demo(hours: int = 24, scenarios: dict[str, int] | None = None, stack: str = "dev",
             say: Callable[[str], None] = print, home: Path | None = None, engine: str | None = None) -> dict[str, Any]:
    """Run the demo; returns a summary (raises DemoFailed on any failed step)."""
    from dagster import DagsterInstance

    from vpcpeer_orchestration.definitions import build_definitions, settings_from_environment
    from vpcpeer_orchestration.local.server import LocalAws
    from vpcpeer_orchestration.resources import ENGINE_ENV, STACK_ENV

    scenarios = demo_scenarios() if scenarios is None else scenarios
    home = prepare_dagster_home(home or dagster_home())
    defs = build_definitions("embedded", {**settings_from_environment(), STACK_ENV: stack,
                                          **({ENGINE_ENV: engine} if engine else {})})

    started = time.monotonic()
    aws = LocalAws.from_env(instance_root=home)
    # One demo per instance at a time: a second one waits, then finds the work done. The
    # instance is opened under the lock too: two processes creating a fresh instance's SQLite
    # schema at once fail with "table ... already exists".
    with aws.lock("demo", waiting=lambda: say("another `vpcpeer demo` is running on this instance; waiting for it ...")):
        instance = DagsterInstance.from_config(str(home))
        return _demo(defs, instance, aws, home, hours, scenarios, stack, say, started)


def _demo(defs: Any, instance: Any, aws: Any, home: Path, hours: int, scenarios: dict[str, int], stack: str,
          say: Callable[[str], None], started: float) -> dict[str, Any]:
    from dagster import AssetKey
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from lambda_pkg.constants import DEFAULT_SETTLE_LAG_SECONDS
    from lambda_pkg.window import last_complete_hour
    from vpcpeer_orchestration.local.alerts import received_alerts
    from vpcpeer_orchestration.local.stack import EmbeddedStack

    endpoint = aws.endpoint()
    say(f"[1/5] embedded AWS at {endpoint} (generation {aws.generation() or 'external'}, state in {aws.home})")

    say("[2/5] rollout_job: package the analyzer, roll the stack out, check its posture ...")
    rollout = defs.resolve_job_def("rollout_job").execute_in_process(instance=instance, raise_on_error=False,
                                                                     run_config=QUIET)
    if not rollout.success:
        failure = next((e.event_specific_data.error.message for e in rollout.all_events if e.is_step_failure), "")
        raise DemoFailed(f"rollout_job failed (run {rollout.run_id}): {failure.strip() or 'see `dagster dev`'}")
    checks = rollout.get_asset_check_evaluations()
    failed = [c.check_name for c in checks if not c.passed]
    if failed:
        raise DemoFailed(f"posture checks failed after rollout: {failed}")
    say(f"      run {rollout.run_id}: {len(checks)} posture checks passed")

    embedded = EmbeddedStack(aws, stack)
    # The last hour whose flow logs have settled (the one the schedule would analyse now).
    last = last_complete_hour(datetime.now(timezone.utc), timedelta(seconds=DEFAULT_SETTLE_LAG_SECONDS)).start
    emulator = embedded.flow_log_emulator()
    injected = {name: emulator.inject(name, last - timedelta(hours=offset))
                for name, offset in scenarios.items() if offset < hours}
    aws.flush()
    say(f"[3/5] flow-log emulator: scenarios {', '.join(scenarios) or 'none'} "
        f"({sum(1 for n in injected.values() if n)} new, {sum(injected.values())} records)")

    first = last - timedelta(hours=hours - 1)
    keys = [(first + timedelta(hours=i)).strftime("%Y-%m-%d-%H:00") for i in range(hours)]
    analysed = instance.get_materialized_partitions(AssetKey("traffic_analysis"))
    missing = [k for k in keys if k not in analysed]
    say(f"[4/5] traffic_analysis_job: {hours} hourly partitions {keys[0]} .. {keys[-1]}, "
        f"{len(missing)} not analysed yet ...")
    alerts_sent, messages, runs = 0, 0, []
    for start_key, end_key in contiguous_ranges(missing, keys):
        analysis = defs.resolve_job_def("traffic_analysis_job").execute_in_process(
            instance=instance, raise_on_error=False, run_config=QUIET,
            tags={ASSET_PARTITION_RANGE_START_TAG: start_key, ASSET_PARTITION_RANGE_END_TAG: end_key},
        )
        if not analysis.success:
            failure = next((e.event_specific_data.error.message for e in analysis.all_events if e.is_step_failure), "")
            raise DemoFailed(f"traffic_analysis_job failed (run {analysis.run_id}): {failure.strip()[:2000]}")
        runs.append(analysis.run_id)
        sent = analysis.asset_value("anomaly_alerts")
        sent = sent if start_key != end_key else {start_key: sent}
        alerts_sent += sum(v["sent"] for v in sent.values())
        messages += sum(len(v["message_ids"]) for v in sent.values())

    say("[5/5] report")
    say(f"      {'hour (UTC)':16s} {'requests A/B':>13s} {'rejects A/B':>12s}  anomalies")
    summary_hours = {}
    with defs.get_asset_value_loader(instance=instance) as loader:  # resources set up once for all hours
        for key in keys:
            report = loader.load_asset_value("traffic_analysis", partition_key=key)
            anomalies = loader.load_asset_value("traffic_anomalies", partition_key=key)
            a, b = (report["vpcs"][label] for label in sorted(report["vpcs"]))
            kinds = sorted({f"{x['type']}({x['vpc']})" for x in anomalies})
            say(f"      {key:16s} {a['total_requests']:>6d}/{b['total_requests']:<6d} "
                f"{a['rejected_connections']:>5d}/{b['rejected_connections']:<6d} {', '.join(kinds) or '-'}")
            summary_hours[key] = {"requests": [a["total_requests"], b["total_requests"]],
                                  "expected_requests": report["thresholds"]["traffic_baseline"], "anomalies": kinds}
    alerts = received_alerts(embedded)
    aws.flush()
    say(f"      this run analysed {len(missing)} hour(s) and alerted {alerts_sent} new anomalies in {messages} "
        f"message(s), one per anomaly (hours analysed before are not analysed or alerted again); alerts in the local inbox: {len(alerts)}")
    for alert in alerts[-5:]:
        say(f"        - {alert['subject']}")
    say(f"\nDagster instance: {home}\n  see the same history in the UI:  DAGSTER_HOME={home} "
        f"{REPO / '.venv/bin/dagster'} dev -w {REPO / 'workspace.yaml'}\n"
        f"The embedded AWS keeps running at {endpoint} for the UI (state in {aws.home}); stop it with "
        f"`vpcpeer local down`, discard it with `vpcpeer local down --purge`.\n"
        f"done in {time.monotonic() - started:.0f} s")
    return {"rollout_run": rollout.run_id, "analysis_runs": runs, "hours": summary_hours,
            "hours_analysed": len(missing), "alerts_sent": alerts_sent, "alert_messages": messages,
            "alerts_received": len(alerts), "dagster_home": str(home), "embedded_aws_home": str(aws.home),
            "generation": aws.generation()}
