"""Sensors: analysis failures are alerted, posture drift and firing alarms become visible."""

from datetime import datetime, timezone

import dagster as dg

from infra.stack_files import StackNotRolledOut
from vpcpeer_orchestration.jobs import rollout_job, traffic_analysis_job
from vpcpeer_orchestration.resources import StackResource


class StackVanished(RuntimeError):
    """A stack Dagster rolled out has no outputs any more (its state was lost or destroyed)."""


@dg.run_failure_sensor(monitored_jobs=[traffic_analysis_job, rollout_job], name="analysis_failure_sensor",
                       description="Sends an SNS alert when an analysis or rollout run fails: a failed hour is "
                                   "never a quiet hour.")
def analysis_failure_sensor(context: dg.RunFailureSensorContext, stack: StackResource) -> None:
    run = context.dagster_run
    partition = run.tags.get("dagster/partition") or (
        f"{run.tags.get('dagster/asset_partition_range_start')}..{run.tags.get('dagster/asset_partition_range_end')}")
    message = (f"vpcpeer run {run.run_id} of {run.job_name} failed for {partition}.\n"
               f"Nothing was published for those hours.\n\n{context.failure_event.message or ''}")
    stack.client("sns").publish(TopicArn=stack.outputs()["sns_topic_arn"], Subject=f"vpcpeer: {run.job_name} failed",
                                Message=message[:250_000])
    stack.durable()


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
