"""Names shared by the analyzer, the Pulumi program and the tests.

Every metric namespace, flow-log field name and default port lives here once; the infra
program imports this module so the IAM namespace condition, the dashboard and the
analyzer can never drift apart.
"""

from __future__ import annotations

# CloudWatch namespace of the analyzer's own custom metrics (one dimension: ``VPC``).
METRIC_NAMESPACE = "VPCPeer/Traffic"

# Namespace prefix of the metrics that the log metric filters derive from raw flow logs.
# One namespace per VPC, because metric-filter dimensions can only come from log fields.
FLOW_LOG_METRIC_NAMESPACE_PREFIX = "VPCPeer/FlowLogs"

VPC_A, VPC_B = VPC_LABELS = ("VPC-A", "VPC-B")
# How each VPC is spelled in stack outputs, metadata keys and variable names ("vpc_a_id").
VPC_SLUGS = {VPC_A: "vpc_a", VPC_B: "vpc_b"}

# The analyzer's per-VPC custom metrics: name -> (report field it publishes, CloudWatch unit).
CUSTOM_METRICS = {
    "TotalRequests": ("total_requests", "Count"),
    "UniqueSourceIPs": ("unique_sources", "Count"),
    "RejectedConnections": ("rejected_connections", "Count"),
    "ExternalTraffic": ("external_traffic_count", "Count"),
    "TotalBytes": ("total_bytes", "Bytes"),
}

# Metrics produced by the log metric filters (one of each per VPC).
FILTER_METRIC_TRAFFIC = "TrafficVolume"
FILTER_METRIC_REJECTED = "RejectedConnections"

# Default (version 2) VPC flow-log record fields, in order, as the flow-log format names them.
FLOW_LOG_V2_FIELDS = (
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
)

# The same fields as CloudWatch Logs Insights discovers them (camelCase).
INSIGHTS_FIELDS = {
    "version": "version",
    "account-id": "accountId",
    "interface-id": "interfaceId",
    "srcaddr": "srcAddr",
    "dstaddr": "dstAddr",
    "srcport": "srcPort",
    "dstport": "dstPort",
    "protocol": "protocol",
    "packets": "packets",
    "bytes": "bytes",
    "start": "start",
    "end": "end",
    "action": "action",
    "log-status": "logStatus",
}

# Ports allowed *into* each VPC from its peer, as the reference's security groups allow.
DEFAULT_ALLOWED_PORTS = {
    VPC_A: (443, 8080),
    VPC_B: (443, 3306),
}

# Reference defaults for the analyzer's thresholds.
DEFAULT_TRAFFIC_BASELINE = 417  # requests per hour (~10,000 per day)
DEFAULT_ANOMALY_THRESHOLD_PERCENT = 20.0

# The traffic baseline: "learned" from the analyzer's own published metrics for the same hour of
# day (of the week, once enough weeks are there), or the reference's "static" constant.
BASELINE_LEARNED, BASELINE_STATIC = BASELINE_MODES = ("learned", "static")
DEFAULT_BASELINE = BASELINE_LEARNED
ENV_BASELINE = "BASELINE"
DEFAULT_BASELINE_DAYS = 28  # how far back the history is read
DEFAULT_BASELINE_MIN_DAYS = 3  # same-hour samples needed before the band replaces the constant
# A host or service port not seen across the peering for this many days is a new talker (0: off).
DEFAULT_TALKER_DAYS = 7
ENV_TALKER_DAYS = "TALKER_DAYS"
# Logs Insights queries still running this long after the first started are stopped; well
# inside the function's 300 s timeout, so a slow hour fails cleanly instead of being killed.
DEFAULT_QUERY_DEADLINE_SECONDS = 240
# Logs Insights queries one analysis keeps running at once (INSIGHTS_MAX_CONCURRENT_QUERIES):
# the account's quota (30 concurrent queries in the StartQuery reference, 100 in newer
# accounts) is shared with dashboards and people, and one analysis must not take it all.
DEFAULT_INSIGHTS_MAX_CONCURRENT_QUERIES = 4
MAX_INSIGHTS_CONCURRENT_QUERIES = 30
ENV_INSIGHTS_MAX_CONCURRENT_QUERIES = "INSIGHTS_MAX_CONCURRENT_QUERIES"
# Flow logs reach CloudWatch 5-10 minutes after their aggregation interval: a window is
# analysed only once it ended this long ago (the Dagster schedule runs at :15 for the hour).
DEFAULT_SETTLE_LAG_SECONDS = 600
# A delivery claimed this long ago and not marked sent belongs to a run that died: another
# may take it over (ALERT_CLAIM_SECONDS; longer than any publish, shorter than an hour).
DEFAULT_ALERT_CLAIM_SECONDS = 300

# Environment variables the Lambda handler reads (DESIGN "Contracts").
ENV_VPC_A_LOG_GROUP = "VPC_A_LOG_GROUP"
ENV_VPC_B_LOG_GROUP = "VPC_B_LOG_GROUP"
ENV_VPC_A_CIDR = "VPC_A_CIDR"
ENV_VPC_B_CIDR = "VPC_B_CIDR"
ENV_SNS_TOPIC_ARN = "SNS_TOPIC_ARN"
ENV_TRAFFIC_BASELINE = "TRAFFIC_BASELINE"
ENV_ANOMALY_THRESHOLD = "ANOMALY_THRESHOLD"
ENV_ANALYZER_ENGINE = "ANALYZER_ENGINE"
ENV_VPC_A_ALLOWED_PORTS = "VPC_A_ALLOWED_PORTS"
ENV_VPC_B_ALLOWED_PORTS = "VPC_B_ALLOWED_PORTS"
# The stack the function belongs to (part of every alert id) and its delivery ledger.
ENV_STACK_NAME = "STACK_NAME"
ENV_ALERT_LEDGER_TABLE = "ALERT_LEDGER_TABLE"
# The delivery ledger table's schema (infra/components/alerting.py declares it,
# lambda_pkg/ledger.py reads and writes it): the key, the sparse index of alerts still to
# deliver (hash: the "due" marker, range: the claim's expiry) and the TTL attribute.
LEDGER_KEY = "id"
LEDGER_DUE_INDEX = "due-index"
LEDGER_DUE = "due"
LEDGER_EXPIRES = "expires_at"
LEDGER_PURGE = "purge_at"
ENV_SETTLE_LAG_SECONDS = "SETTLE_LAG_SECONDS"

ANALYZER_ENGINES = ("insights", "raw")

# A number in configuration: ASCII digits and one decimal point. float() would also take nan
# (every comparison false), inf (a rule switched off), 1_000, +5 and other scripts' digits.
PLAIN_NUMBER_PATTERN = r"[0-9]+(\.[0-9]+)?"

# Entry point of the deployed function, relative to the zip root.
LAMBDA_HANDLER = "lambda_pkg.handler.lambda_handler"
LAMBDA_RUNTIME = "python3.12"

# Retries of every AWS call, in one layer: botocore's "standard" mode retries throttling and
# transient errors with jittered backoff, up to this many attempts in all (the first
# included). Nothing above it loops again; Dagster's retry policy re-runs whole steps.
AWS_RETRY_MODE = "standard"
AWS_MAX_ATTEMPTS = 5
