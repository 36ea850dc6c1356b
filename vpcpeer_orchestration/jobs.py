"""Jobs: the rollout and the hourly analysis chain, selected by asset group.

Both run their steps in the run worker's own process: each chain is a line (no two steps can
run at once), and a process per step would cost a Python start and a code-location load
(about 4 s here) per step, most of a small run's time. Isolation between runs is the run
launcher's (a process, an ECS task or a pod per run).
"""

import dagster as dg

from vpcpeer_orchestration.assets.groups import ANALYZER_GROUP, NETWORK_GROUP, TRAFFIC_GROUP

rollout_job = dg.define_asset_job(
    "rollout_job",
    selection=dg.AssetSelection.groups(ANALYZER_GROUP, NETWORK_GROUP),
    description="Build the analyzer package, roll the stack out and check its live posture.",
    executor_def=dg.in_process_executor,
)

# On the embedded target the group includes the flow-log emulator's flow_log_records; on
# AWS that asset is external (written by the service) and a job leaves it out.
traffic_analysis_job = dg.define_asset_job(
    "traffic_analysis_job",
    selection=dg.AssetSelection.groups(TRAFFIC_GROUP),
    description="Analyse hourly flow logs, detect anomalies, send new alerts and publish metrics.",
    executor_def=dg.in_process_executor,
    # A Logs Insights user: deploy/dagster.postgres.yaml caps how many such runs are in progress.
    tags={"vpcpeer/logs-insights": "reader"},
)
