"""The one clock: hourly analysis after the flow-log settle lag (DESIGN decision 4)."""

import dagster as dg

from vpcpeer_orchestration.jobs import traffic_analysis_job

# Flow logs arrive 5-10 minutes late: hour H is analysed at H+1:15.
SETTLE_MINUTE = 15

traffic_analysis_schedule = dg.build_schedule_from_partitioned_job(
    traffic_analysis_job, minute_of_hour=SETTLE_MINUTE, name="traffic_analysis_schedule",
    description="Every hour at :15 UTC, analyse the hour that just ended.",
)
