"""The one Definitions object of the vpcpeer code location, assembled explicitly."""

import dagster as dg

from vpcpeer_orchestration.assets.package import lambda_package_asset
from vpcpeer_orchestration.assets.stack import network_stack
from vpcpeer_orchestration.assets.traffic import (
    anomaly_alerts,
    flow_log_records,
    traffic_analysis,
    traffic_anomalies,
    traffic_metrics,
)
from vpcpeer_orchestration.io import PartitionedJsonIOManager
from vpcpeer_orchestration.jobs import rollout_job, traffic_analysis_job
from vpcpeer_orchestration.resources import build_resources
from vpcpeer_orchestration.schedules import traffic_analysis_schedule
from vpcpeer_orchestration.sensors import alarm_state_sensor, analysis_failure_sensor, stack_drift_sensor

defs = dg.Definitions(
    assets=[lambda_package_asset(), network_stack, flow_log_records, traffic_analysis, traffic_anomalies,
            anomaly_alerts, traffic_metrics],
    jobs=[rollout_job, traffic_analysis_job],
    schedules=[traffic_analysis_schedule],
    sensors=[analysis_failure_sensor, stack_drift_sensor, alarm_state_sensor],
    resources={"reports_io_manager": PartitionedJsonIOManager(), **build_resources()},
)
