"""The one Definitions object of the vpcpeer code location, assembled explicitly.

``defs`` is loaded lazily (``@dg.definitions``): importing this module builds nothing and
reads only where the hourly partitions start (``partitions.py``: an asset's partitions are
fixed when it is declared). When Dagster loads the code location,
``VPCPEER_TARGET`` picks the target's resources (and, on the embedded target, the
flow-log emulator's asset) once; settings reach the resources as ``dg.EnvVar``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg

from vpcpeer_orchestration.assets.package import lambda_package_asset
from vpcpeer_orchestration.assets.stack import network_stack
from vpcpeer_orchestration.assets.traffic import (
    anomaly_alerts,
    flow_log_records_written_by_aws,
    traffic_analysis,
    traffic_anomalies,
    traffic_metrics,
)
from vpcpeer_orchestration.jobs import rollout_job, traffic_analysis_job
from vpcpeer_orchestration.resources import TARGET_ENV, TARGETS, InvalidTarget
from vpcpeer_orchestration.schedules import traffic_analysis_schedule
from vpcpeer_orchestration.sensors import alarm_state_sensor, analysis_failure_sensor, stack_drift_sensor


def build_definitions(target: str = "embedded", settings: Mapping[str, Any] | None = None) -> dg.Definitions:
    """Definitions for ``target`` (embedded | aws); ``settings`` maps VPCPEER_* names to values or dg.EnvVars."""
    settings = dict(settings or {})
    if target == "embedded":
        from vpcpeer_orchestration.assets.emulator import flow_log_records_emulated
        from vpcpeer_orchestration.resources.embedded import resources

        flow_log_records = flow_log_records_emulated
    elif target == "aws":
        from vpcpeer_orchestration.resources.aws import resources

        flow_log_records = flow_log_records_written_by_aws
    else:
        raise InvalidTarget(target)
    return dg.Definitions(
        assets=[lambda_package_asset(), network_stack, flow_log_records, traffic_analysis, traffic_anomalies,
                anomaly_alerts, traffic_metrics],
        jobs=[rollout_job, traffic_analysis_job],
        schedules=[traffic_analysis_schedule],
        sensors=[analysis_failure_sensor, stack_drift_sensor, alarm_state_sensor],
        resources=resources(settings),
    )


def settings_from_environment() -> dict[str, dg.EnvVar]:
    """Every VPCPEER_* variable set, as a dg.EnvVar (resolved when a run starts, shown in the UI)."""
    return {name: dg.EnvVar(name) for name, value in os.environ.items() if name.startswith("VPCPEER_") and value}


@dg.definitions
def defs() -> dg.Definitions:
    """The code location as Dagster loads it: the target named by VPCPEER_TARGET (default embedded)."""
    return build_definitions(os.environ.get(TARGET_ENV) or TARGETS[0], settings_from_environment())
