"""`vpcpeer demo`: the main job on the embedded default, end to end.

Start the instance's embedded AWS, roll out through ``rollout_job``, inject the demo's
scenarios, analyse every hour of the last day that has not been analysed yet in one run of
``traffic_analysis_job`` (its ``flow_log_records`` step has the flow-log emulator write the
hours), and report every hour from the stored results. Both runs are launched as `dagster job
launch` launches them (vpcpeer_orchestration/launch.py) on the Dagster instance at
DAGSTER_HOME (default ``dagster_home/`` in the checkout), so ``dagster dev`` lists them on
the job pages and the timeline afterwards; a second demo re-analyses nothing and alerts nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from vpcpeer_orchestration.homes import REPO, dagster_home, prepare_dagster_home

# Where the launches' output (and their run workers' console) goes: the demo prints its own
# progress and one line per failure (failure_headline); each run's full log is in the UI.
LAUNCH_LOG = Path("logs") / "demo-launches.log"
# A run taking longer than this is stuck (a rollout takes under a minute, a 335-hour analysis
# a few minutes).
ROLLOUT_TIMEOUT_SECONDS = 900
ANALYSIS_TIMEOUT_SECONDS = 900
ANALYSIS_TIMEOUT_SECONDS_PER_HOUR = 10
# Errors that mean the embedded AWS stopped answering (botocore's names for them).
_ENDPOINT_GONE = ("EndpointConnectionError", "ConnectionClosedError", "ConnectTimeoutError", "ReadTimeoutError")
# Every registered scenario, each 4 hours apart starting 2 hours before the last complete
# hour, so normal hours sit between them (port-scan at -2, ..., reject-storm at -18).
SCENARIO_SPACING_HOURS = 4


def demo_scenarios(chosen: list[str] | None = None, last: datetime | None = None) -> dict[str, int]:
    """Scenario name -> hours before the last complete hour ``last``.

    ``chosen`` None is the default demo: every scenario whose detection needs no history, each
    ``SCENARIO_SPACING_HOURS`` apart from 2 hours back. A scenario with a placement of its own
    (the quiet-hour surge) goes there; the others keep their spacing.
    """
    from vpcpeer_orchestration.local.scenarios import SCENARIOS

    if last is None:
        last = _last_settled_hour()
    entries = [s for s in SCENARIOS.values() if not s.needs_history_days] if chosen is None \
        else [SCENARIOS[name] for name in dict.fromkeys(chosen)]
    offsets = {}
    for i, scenario in enumerate(entries):
        if scenario.placement:
            offsets[scenario.name] = int((last - scenario.placement(last)).total_seconds() // 3600)
        else:
            offsets[scenario.name] = 2 + SCENARIO_SPACING_HOURS * i
    return offsets


def _last_settled_hour() -> datetime:
    """The last hour whose flow logs have settled (the one the schedule would analyse now)."""
    from lambda_pkg.constants import DEFAULT_SETTLE_LAG_SECONDS
    from lambda_pkg.window import last_complete_hour

    return last_complete_hour(datetime.now(timezone.utc), timedelta(seconds=DEFAULT_SETTLE_LAG_SECONDS)).start


class DemoFailed(RuntimeError):
    """A step of the demo failed; the message says which."""


def failure_headline(events: list[Any], aws: Any) -> str:
    """One line for a failed run (its Dagster events): the innermost cause of its first step
    failure (not Dagster's wrapper), and the fix when the cause is the AWS endpoint having
    stopped answering."""
    error = next((e.event_specific_data.error for e in events if e.is_step_failure), None)
    if error is None:
        return "see the run in `dagster dev`"
    chain = [error]
    while chain[-1].cause is not None:
        chain.append(chain[-1].cause)
    root = next((e for e in reversed(chain) if not e.cls_name.startswith("Dagster")), chain[-1])
    # "botocore.exceptions.EndpointConnectionError: ..." -> "EndpointConnectionError: ..."
    text = re.sub(r"^[\w.]*\.(?=\w+:)", "", " ".join(root.message.split()))[:500]
    if root.cls_name in _ENDPOINT_GONE:
        if aws.managed:
            return (f"the embedded AWS stopped answering ({text}). Run the demo again: it starts the embedded "
                    f"AWS from its saved state in {aws.home} and analyses the hours not done yet")
        return f"the AWS endpoint stopped answering ({text}); start it again, then run the demo again"
    return text


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

    from vpcpeer_orchestration.local.server import LocalAws
    from vpcpeer_orchestration.resources import ENGINE_ENV, STACK_ENV, TARGET_ENV

    scenarios = demo_scenarios() if scenarios is None else scenarios
    home = prepare_dagster_home(home or dagster_home())
    # The settings the launched runs load the code location with.
    code_env = {TARGET_ENV: "embedded", STACK_ENV: stack, **({ENGINE_ENV: engine} if engine else {})}

    started = time.monotonic()
    aws = LocalAws.from_env(instance_root=home)
    # One demo per instance at a time: a second one waits, then finds the work done. The
    # instance is opened under the lock too: two processes creating a fresh instance's SQLite
    # schema at once fail with "table ... already exists".
    with aws.lock("demo", waiting=lambda: say("another `vpcpeer demo` is running on this instance; waiting for it ...")):
        instance = DagsterInstance.from_config(str(home))
        return _demo(instance, aws, home, hours, scenarios, stack, say, started, code_env)


def _demo(instance: Any, aws: Any, home: Path, hours: int, scenarios: dict[str, int], stack: str,
          say: Callable[[str], None], started: float, code_env: dict[str, str]) -> dict[str, Any]:
    from dagster import AssetKey
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from vpcpeer_orchestration.io import STORAGE_DIRNAME, LocalJsonIOManager
    from vpcpeer_orchestration.launch import launch, wait
    from vpcpeer_orchestration.local.alerts import received_alerts
    from vpcpeer_orchestration.local.stack import EmbeddedStack

    endpoint = aws.endpoint()
    say(f"[1/5] embedded AWS at {endpoint} (generation {aws.generation() or 'external'}, state in {aws.home})")

    # Launched as `dagster job launch` and the UI launch runs: they appear on the job pages and
    # the timeline of `dagster dev`.
    log = home / LAUNCH_LOG
    say("[2/5] rollout_job: package the analyzer, roll the stack out, check its posture ...")
    rollout = wait(instance, launch("rollout_job", home=home, log=log, env=code_env), ROLLOUT_TIMEOUT_SECONDS)
    if not rollout.success:
        raise DemoFailed(f"rollout_job failed (run {rollout.run_id}): {failure_headline(rollout.events, aws)}")
    checks = rollout.check_evaluations()
    failed = [c.check_name for c in checks if not c.passed]
    if failed:
        raise DemoFailed(f"posture checks failed after rollout: {failed}")
    say(f"      run {rollout.run_id}: {len(checks)} posture checks passed")

    embedded = EmbeddedStack(aws, stack)
    last = _last_settled_hour()
    emulator = embedded.flow_log_emulator()
    outside = [name for name, offset in scenarios.items() if offset >= hours]
    if outside:
        say(f"      not in the {hours} hour(s) analysed, so not injected: {', '.join(outside)} (use more --hours)")
    from vpcpeer_orchestration.local.scenarios import SCENARIOS

    for name, offset in scenarios.items():
        needed = SCENARIOS[name].needs_history_days * 24
        if offset < hours and hours - 1 - offset < needed:
            say(f"      {name} needs {needed // 24} days of history before its hour, and {hours - 1 - offset} hour(s) "
                f"of this demo come before it: it may only be learned (use --hours {needed + offset + 1})")
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
    runs = []
    for start_key, end_key in contiguous_ranges(missing, keys):
        tags = {ASSET_PARTITION_RANGE_START_TAG: start_key, ASSET_PARTITION_RANGE_END_TAG: end_key}
        analysis = wait(instance, launch("traffic_analysis_job", home=home, log=log, tags=tags, env=code_env),
                        ANALYSIS_TIMEOUT_SECONDS + ANALYSIS_TIMEOUT_SECONDS_PER_HOUR * len(missing))
        if not analysis.success:
            raise DemoFailed(f"traffic_analysis_job failed (run {analysis.run_id}): "
                             f"{failure_headline(analysis.events, aws)}")
        runs.append(analysis.run_id)

    alerts_sent, messages = 0, 0
    say("[5/5] report")
    say(f"      {'hour (UTC)':16s} {'requests A/B':>13s} {'expected A/B':>13s} {'rejects A/B':>12s}  anomalies")
    summary_hours = {}
    # The embedded target's store, read directly (the value loader rebuilds resources per value).
    store = LocalJsonIOManager(location=str(home / STORAGE_DIRNAME / "vpcpeer"))
    for key in keys:
        report = store.stored("traffic_analysis", key)
        anomalies = store.stored("traffic_anomalies", key)
        a, b = (report["vpcs"][label] for label in sorted(report["vpcs"]))
        kinds = sorted({f"{x['type']}({x['vpc']})" for x in anomalies})
        # Reports stored before learned baselines carry none: the constant was their expectation.
        expected = [vpc.get("expected_requests", report["thresholds"]["traffic_baseline"]) for vpc in (a, b)]
        say(f"      {key:16s} {a['total_requests']:>6d}/{b['total_requests']:<6d} "
            f"{expected[0]:>6.0f}/{expected[1]:<6.0f} "
            f"{a['rejected_connections']:>5d}/{b['rejected_connections']:<6d} {', '.join(kinds) or '-'}")
        summary_hours[key] = {"requests": [a["total_requests"], b["total_requests"]],
                              "expected_requests": expected, "anomalies": kinds}
        if key in missing:  # what this demo's runs sent
            sent = store.stored("anomaly_alerts", key)
            alerts_sent += sent["sent"]
            messages += len(sent["message_ids"])
    # A fresh view of the stack: a step may have restarted an embedded AWS that died mid-run,
    # on a new port, from its saved state.
    alerts = received_alerts(EmbeddedStack(aws, stack))
    endpoint = aws.endpoint()
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
