"""Jobs: the rollout and the hourly analysis chain."""

import dagster as dg

STACK_ASSETS = ["peered_vpcs", "peering_security_groups", "flow_log_pipeline", "alerting", "analyzer_function",
                "monitoring_dashboard"]
ANALYSIS_ASSETS = ["traffic_analysis", "traffic_anomalies", "anomaly_alerts", "traffic_metrics"]

rollout_job = dg.define_asset_job(
    "rollout_job",
    selection=dg.AssetSelection.assets("lambda_package", *STACK_ASSETS),
    description="Build the analyzer package, roll the stack out and check its live posture.",
)

traffic_analysis_job = dg.define_asset_job(
    "traffic_analysis_job",
    selection=dg.AssetSelection.assets(*ANALYSIS_ASSETS),
    description="Analyse hourly flow logs, record anomalies, send new alerts and publish metrics.",
)
