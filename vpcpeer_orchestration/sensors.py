"""Sensors: analysis failures are alerted, posture drift and firing alarms become visible."""

from datetime import datetime, timedelta, timezone
from typing import Any

import dagster as dg

from infra.stack_files import StackNotRolledOut
from vpcpeer_orchestration.jobs import rollout_job, traffic_analysis_job
from vpcpeer_orchestration.resources import StackResource


class StackVanished(RuntimeError):
    """A stack Dagster rolled out has no outputs any more (its state was lost or destroyed)."""


# Failed runs of these jobs are alerted; the sensor looks back this far the first time it runs.
MONITORED_JOBS = frozenset({traffic_analysis_job.name, rollout_job.name})
FIRST_LOOK_BACK = timedelta(hours=24)
RUNS_PER_TICK = 50


def failure_alert(stack: str, run: dg.DagsterRun, errors: list[str]) -> Any:
    """The alert that ``run`` failed, with its hours and the errors its steps raised."""
    from lambda_pkg.delivery import Alert
    from lambda_pkg.ledger import Message, failure_id

    partition = run.tags.get("dagster/partition") or (
        f"{run.tags.get('dagster/asset_partition_range_start')}..{run.tags.get('dagster/asset_partition_range_end')}")
    ident = failure_id(stack, run.run_id)
    body = (f"vpcpeer run {run.run_id} of {run.job_name} failed for {partition}.\n"
            "Hours it did not finish are not quiet hours: they have no report, and no alert or metric of theirs "
            "was published after the failure. Re-run them once the cause is fixed; what was already sent is not "
            "sent again.\n\n" + "\n".join(errors) + f"\n\nAlert id: {ident}")
    return Alert(ident, Message(f"vpcpeer: {run.job_name} failed ({partition})", body[:250_000],
                                {"alert_id": ident, "stack": stack, "type": "run_failure", "run_id": run.run_id}))


def run_errors(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The error messages a failed run recorded, one per failed step (or the run's own)."""
    events = instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE})
    errors = []
    for entry in events:
        event = entry.dagster_event
        error = getattr(event.event_specific_data, "error", None) if event else None
        text = (error.message if error else entry.message or "").strip()
        errors.append(f"[{event.step_key or 'run'}] {text}" if event else text)
    return errors or ["(no error message recorded)"]


@dg.sensor(name="analysis_failure_sensor", minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Records an alert for each failed analysis or rollout run in the stack's delivery ledger "
                       "and delivers it, then delivers every alert still due (a publish that failed earlier, a "
                       "run that died between publish and mark). The ledger is not the topic: when the topic is "
                       "down, the failure alert waits in the ledger and goes out on a later tick.")
def analysis_failure_sensor(context: dg.SensorEvaluationContext, stack: StackResource):
    from lambda_pkg.delivery import Deliverer, Delivery

    since = float(context.cursor) if context.cursor else (datetime.now(timezone.utc) - FIRST_LOOK_BACK).timestamp()
    records = context.instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE],
                              updated_after=datetime.fromtimestamp(since, tz=timezone.utc)),
        order_by="update_timestamp", ascending=True, limit=RUNS_PER_TICK)
    try:
        outputs = stack.outputs()
    except StackNotRolledOut as exc:
        if records:
            context.update_cursor(str(records[-1].update_timestamp.timestamp()))
        return dg.SkipReason(f"no stack to alert through: {exc}")
    deliverer = Deliverer(stack.alert_ledger(), stack.client("sns"), outputs["sns_topic_arn"],
                          f"dagster-sensor:{context.sensor_name}")
    recorded = Delivery()
    for record in records:
        run = record.dagster_run
        if run.job_name in MONITORED_JOBS:
            # Recorded in the ledger before the cursor moves: a failure is never skipped.
            recorded = recorded.merge(deliverer.deliver([failure_alert(stack.stack, run, run_errors(context.instance,
                                                                                                    run.run_id))]))
        context.update_cursor(str(record.update_timestamp.timestamp()))
    drained = deliverer.drain(prefix=f"{stack.stack}/")
    stack.durable()
    total = recorded.merge(drained)
    return dg.SkipReason(f"{len(records)} failed run(s) seen; {len(total.sent)} alert(s) delivered, "
                         f"{len(total.failed)} still due (the topic refused them: retried next tick)")


@dg.sensor(name="stack_drift_sensor", minimum_interval_seconds=600, job=rollout_job,
           description="Reads the live posture (flow logs, peering, security-group rules, default groups) and "
                       "requests a rollout when it drifted from the declared stack.")
def stack_drift_sensor(context: dg.SensorEvaluationContext, stack: StackResource):
    from vpcpeer_orchestration.assets.stack import PEERED_VPCS, evaluate_posture

    try:
        outputs = stack.outputs()
    except StackNotRolledOut as exc:
        if context.instance.get_latest_materialization_event(PEERED_VPCS) is None:
            return dg.SkipReason(str(exc))
        # Dagster rolled it out before: a stack that vanished is an error, not "nothing to do".
        raise StackVanished(f"the stack was rolled out before (see peered_vpcs) but is gone now: {exc}") from exc
    failed = sorted(r.check_name for r in evaluate_posture(stack, outputs) if not r.passed)
    if not failed:
        return dg.SkipReason("live posture matches the declared stack")
    hour = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H")
    return dg.RunRequest(run_key=f"drift-{hour}-{'-'.join(failed)}", tags={"vpcpeer/drift": ",".join(failed)})


@dg.sensor(name="alarm_state_sensor", minimum_interval_seconds=300,
           description="Records the state of the stack's CloudWatch alarms on the alerting asset, so a firing "
                       "alarm shows in the asset's history.")
def alarm_state_sensor(context: dg.SensorEvaluationContext, stack: StackResource):
    prefix = f"{stack.config().prefix}-"
    alarms = stack.client("cloudwatch").describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]
    firing = sorted(a["AlarmName"] for a in alarms if a["StateValue"] == "ALARM")
    cursor = ",".join(firing)
    if cursor == (context.cursor or ""):
        return dg.SkipReason(f"{len(firing)} alarm(s) firing, unchanged")
    context.update_cursor(cursor)
    from vpcpeer_orchestration.assets.stack import ALERTING

    return dg.SensorResult(asset_events=[dg.AssetObservation(
        asset_key=ALERTING, metadata={"alarms_firing": dg.MetadataValue.json(firing), "alarms": len(alarms)})])
