"""Assets of the embedded target only: the flow-log emulator plays the VPC Flow Logs service."""

import dagster as dg

from vpcpeer_orchestration.assets.failures import permanent_failures
from vpcpeer_orchestration.assets.stack import FLOW_LOG_PIPELINE
from vpcpeer_orchestration.assets.traffic import (
    FLOW_LOG_RECORDS,
    FLOW_LOG_RECORDS_DESCRIPTION,
    hourly_asset,
    windows,
)
from vpcpeer_orchestration.resources.embedded import EmulatedFlowLogsResource


@hourly_asset(
    key=FLOW_LOG_RECORDS, deps=[FLOW_LOG_PIPELINE], kinds={"aws", "cloudwatch"},
    description=FLOW_LOG_RECORDS_DESCRIPTION + "On the embedded target the flow-log emulator writes them, once per "
                "hour, into the embedded AWS (as the service would); hours older than CloudWatch accepts are skipped.",
)
@permanent_failures
def flow_log_records_emulated(context: dg.AssetExecutionContext, flow_logs: EmulatedFlowLogsResource) -> None:
    """Write each complete hour of the run that has no records yet."""
    hours = windows(context)
    written = flow_logs.write_hours([start for _, start, _ in hours])
    context.log.info(f"flow-log emulator wrote {sum(written.values())} records for {len(written)} new hour(s)")
    for key, start, _ in hours:
        context.add_asset_metadata({"records_written": written.get(start.isoformat(), 0)}, partition_key=key)
