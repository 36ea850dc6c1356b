"""`vpcpeer demo`: the main job on the embedded default, end to end.

Start the local AWS, roll out through ``rollout_job``, write the last day of flow logs with
scenarios, analyse every hour of it in one run of ``traffic_analysis_job``, and report.
Runs are recorded in the Dagster instance at DAGSTER_HOME (default ``dagster_home/`` in
the repository), so ``dagster dev`` shows the same history afterwards.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DAGSTER_HOME = REPO / "dagster_home"
# Scenario -> hours before the last complete hour, so normal hours sit between them.
# The demo prints its own progress; Dagster's per-step log lines stay in the run's log.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
DEMO_SCENARIOS = {"port-scan": 2, "traffic-spike": 6, "external-source": 10, "unexpected-port": 14, "reject-storm": 18}


class DemoFailed(RuntimeError):
    """A step of the demo failed; the message says which."""


def dagster_home() -> Path:
    """DAGSTER_HOME, defaulting to the repository's dagster_home/ with its checked-in dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(DEFAULT_DAGSTER_HOME / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def run_demo(hours: int = 24, scenarios: dict[str, int] | None = None, stack: str = "dev",
             say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the demo; returns a summary (raises DemoFailed on any failed step)."""
    from dagster import DagsterInstance
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from vpcpeer_orchestration.local import server
    from vpcpeer_orchestration.local.alerts import received_alerts
    from vpcpeer_orchestration.local.flowlogs import FlowLogEmulator, floor_hour
    from vpcpeer_orchestration.local.stack import service_ports, stack_outputs

    scenarios = DEMO_SCENARIOS if scenarios is None else scenarios
    home = dagster_home()
    os.environ.setdefault("VPCPEER_STACK", stack)
    from vpcpeer_orchestration.definitions import defs

    started = time.monotonic()
    instance = DagsterInstance.get()
    say(f"[1/5] local AWS at {server.endpoint()}")

    say("[2/5] rollout_job: package the analyzer, roll the stack out, check its posture ...")
    rollout = defs.resolve_job_def("rollout_job").execute_in_process(instance=instance, raise_on_error=False,
                                                                               run_config=QUIET)
    if not rollout.success:
        raise DemoFailed(f"rollout_job failed (run {rollout.run_id}); see `dagster dev` or the log above")
    checks = rollout.get_asset_check_evaluations()
    failed = [c.check_name for c in checks if not c.passed]
    if failed:
        raise DemoFailed(f"posture checks failed after rollout: {failed}")
    say(f"      run {rollout.run_id}: {len(checks)} posture checks passed")

    endpoint = server.endpoint()
    outputs = stack_outputs(stack, endpoint)
    emulator = FlowLogEmulator(lambda s: server.client(s, endpoint), service_ports=service_ports(outputs))
    last = floor_hour(datetime.now(timezone.utc)) - timedelta(hours=1)
    say(f"[3/5] flow-log emulator: last {hours} hours, scenarios {', '.join(scenarios) or 'none'} ...")
    written = emulator.backfill(hours)
    for name, offset in scenarios.items():
        if offset < hours:
            emulator.inject(name, last - timedelta(hours=offset))
    say(f"      wrote {sum(written.values())} records for {len(written)} new hour(s)")

    first = last - timedelta(hours=hours - 1)
    keys = (first.strftime("%Y-%m-%d-%H:00"), last.strftime("%Y-%m-%d-%H:00"))
    say(f"[4/5] traffic_analysis_job: {hours} hourly partitions {keys[0]} .. {keys[1]} in one run ...")
    analysis = defs.resolve_job_def("traffic_analysis_job").execute_in_process(
        instance=instance, raise_on_error=False, run_config=QUIET,
        tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[1]},
    )
    if not analysis.success:
        raise DemoFailed(f"traffic_analysis_job failed (run {analysis.run_id})")
    reports = analysis.asset_value("traffic_analysis")
    alerts_run = analysis.asset_value("anomaly_alerts")
    reports = reports if hours > 1 else {keys[0]: reports}
    alerts_run = alerts_run if hours > 1 else {keys[0]: alerts_run}

    say("[5/5] report")
    say(f"      {'hour (UTC)':16s} {'requests A/B':>13s} {'rejects A/B':>12s}  anomalies")
    summary_hours = {}
    for key in sorted(reports):
        report = reports[key]
        a, b = report["vpcs"]["VPC-A"], report["vpcs"]["VPC-B"]
        kinds = sorted({f"{x['type']}({x['vpc']})" for x in report["anomalies"]})
        say(f"      {key:16s} {a['total_requests']:>6d}/{b['total_requests']:<6d} "
            f"{a['rejected_connections']:>5d}/{b['rejected_connections']:<6d} {', '.join(kinds) or '-'}")
        summary_hours[key] = {"requests": [a["total_requests"], b["total_requests"]], "anomalies": kinds,
                              "alerts_sent": alerts_run[key]["sent"]}
    alerts = received_alerts(stack, endpoint)
    sent_now = sum(v["sent"] for v in alerts_run.values())
    messages = sum(1 for v in alerts_run.values() if v["message_id"])
    say(f"      this run alerted {sent_now} new anomalies in {messages} message(s) "
        f"(already-alerted hours are not sent again); alerts in the local inbox: {len(alerts)}")
    for alert in alerts[-5:]:
        say(f"        - {alert['subject']}")
    say(f"\nDagster instance: {home}\n  see the same history in the UI:  DAGSTER_HOME={home} "
        f"{REPO / '.venv/bin/dagster'} dev -w {REPO / 'workspace.yaml'}\n"
        f"The local AWS keeps running at {endpoint} for the UI; stop it with `vpcpeer local down`.\n"
        f"done in {time.monotonic() - started:.0f} s")
    return {"rollout_run": rollout.run_id, "analysis_run": analysis.run_id, "hours": summary_hours,
            "alerts_sent": sent_now, "alert_messages": messages, "alerts_received": len(alerts), "dagster_home": str(home)}
