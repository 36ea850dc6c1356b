"""IAM, KMS and SNS policy documents of the stack, as plain dicts.

Pure functions of ARNs and names, so the security properties (least privilege, confused-
deputy conditions, no stray ``Resource "*"``) are unit-testable without Pulumi or AWS.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lambda_pkg.constants import METRIC_NAMESPACE

Policy = dict[str, Any]

VERSION = "2012-10-17"

# Actions that accept no resource ARN (Service Authorization Reference), so ``Resource "*"``
# is the only way to grant them. Any ``*`` statement in this project's identity policies must
# stay within this set. logs:GetQueryResults is not here: it takes the log group, and the
# analyzer's grant names its two. logs:DescribeLogGroups lists groups (the flow-log service's
# delivery role uses it, as AWS documents that role); the analyzer never calls it.
NO_RESOURCE_ACTIONS = frozenset(
    {
        "ec2:DescribeFlowLogs",
        "logs:DescribeLogGroups",
        "logs:StopQuery",
        "cloudwatch:PutMetricData",
        "cloudwatch:GetMetricStatistics",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
)

KMS_USE_ACTIONS = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]


def _doc(*statements: Policy) -> Policy:
    return {"Version": VERSION, "Statement": list(statements)}


def _account_root(partition: str, account_id: str) -> str:
    return f"arn:{partition}:iam::{account_id}:root"


def log_group_arn(partition: str, region: str, account_id: str, name: str) -> str:
    """ARN of a log group by name (the form IAM and KMS encryption context use)."""
    return f"arn:{partition}:logs:{region}:{account_id}:log-group:{name}"


def flow_logs_trust_policy(partition: str, region: str, account_id: str) -> Policy:
    """Trust policy letting only this account's VPC flow logs assume the delivery role."""
    return _doc(
        {
            "Sid": "VpcFlowLogsAssume",
            "Effect": "Allow",
            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account_id},
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:ec2:{region}:{account_id}:vpc-flow-log/*"},
            },
        }
    )


def flow_logs_delivery_policy(log_group_arns: Sequence[str]) -> Policy:
    """Rights the flow-log service needs to write into the two flow-log groups, no more."""
    return _doc(
        {
            "Sid": "WriteFlowLogGroups",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": [f"{arn}:*" for arn in log_group_arns],
        },
        {
            "Sid": "DescribeLogGroups",
            "Effect": "Allow",
            "Action": ["logs:DescribeLogGroups"],
            "Resource": "*",
        },
    )


def lambda_trust_policy(account_id: str) -> Policy:
    """Trust policy for the analyzer's execution role, limited to this account."""
    return _doc(
        {
            "Sid": "LambdaAssume",
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        }
    )


def analyzer_policy(
    *,
    flow_log_group_arns: Sequence[str],
    own_log_group_arn: str,
    topic_arn: str,
    alerts_key_arn: str,
    dead_letter_queue_arn: str,
    ledger_table_arn: str,
) -> Policy:
    """Least-privilege rights of the traffic analyzer Lambda.

    Reads only the two flow-log groups, logs only to its own group, publishes only to the
    alert topic (through its KMS key), only metrics in the analyzer's namespace, and records
    deliveries only in the stack's alert ledger.
    """
    return _doc(
        {
            "Sid": "OwnLogGroup",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [f"{own_log_group_arn}:*"],
        },
        {
            "Sid": "QueryFlowLogs",
            "Effect": "Allow",
            "Action": ["logs:StartQuery", "logs:GetQueryResults", "logs:FilterLogEvents"],
            "Resource": [f"{arn}:*" for arn in flow_log_group_arns] + list(flow_log_group_arns),
        },
        {
            "Sid": "StopQueries",  # takes a query id only: no resource to name
            "Effect": "Allow",
            "Action": ["logs:StopQuery"],
            "Resource": "*",
        },
        {
            "Sid": "PublishAnalyzerMetrics",
            "Effect": "Allow",
            "Action": ["cloudwatch:PutMetricData"],
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}},
        },
        {
            # Its own earlier datapoints: the learned baseline's history and the check that an
            # hour's metrics are not published twice. The action takes no resource or namespace key.
            "Sid": "ReadAnalyzerMetrics",
            "Effect": "Allow",
            "Action": ["cloudwatch:GetMetricStatistics"],
            "Resource": "*",
        },
        {
            "Sid": "PublishAlerts",
            "Effect": "Allow",
            "Action": ["sns:Publish"],
            "Resource": [topic_arn],
        },
        {
            "Sid": "EncryptAlerts",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
            "Resource": [alerts_key_arn],
        },
        {
            "Sid": "FlowLogCoverage",
            "Effect": "Allow",
            "Action": ["ec2:DescribeFlowLogs"],
            "Resource": "*",
        },
        {
            "Sid": "AlertLedger",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"],
            "Resource": [ledger_table_arn, f"{ledger_table_arn}/index/*"],
        },
        {
            "Sid": "DeadLetters",
            "Effect": "Allow",
            "Action": ["sqs:SendMessage"],
            "Resource": [dead_letter_queue_arn],
        },
        {
            "Sid": "Tracing",
            "Effect": "Allow",
            "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
            "Resource": "*",
        },
    )


def logs_key_policy(partition: str, region: str, account_id: str) -> Policy:
    """Key policy for the log-group key: CloudWatch Logs may use it for this account's groups."""
    return _doc(
        {
            "Sid": "AccountAdministers",
            "Effect": "Allow",
            "Principal": {"AWS": _account_root(partition, account_id)},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "CloudWatchLogsEncrypts",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": KMS_USE_ACTIONS,
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": log_group_arn(partition, region, account_id, "*"),
                }
            },
        },
        {
            "Sid": "FlowLogsDeliver",
            "Effect": "Allow",
            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
            "Action": ["kms:GenerateDataKey*", "kms:Decrypt", "kms:DescribeKey"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account_id},
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:ec2:{region}:{account_id}:vpc-flow-log/*"},
            },
        },
    )


def alerts_key_policy(partition: str, region: str, account_id: str) -> Policy:
    """Key policy for the alert topic's key: CloudWatch alarms of this account may publish."""
    return _doc(
        {
            "Sid": "AccountAdministers",
            "Effect": "Allow",
            "Principal": {"AWS": _account_root(partition, account_id)},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "CloudWatchAlarmsPublish",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account_id},
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:*"},
            },
        },
    )


def alerts_topic_policy(*, topic_arn: str, partition: str, region: str, account_id: str) -> Policy:
    """Topic policy: only this account's CloudWatch alarms may publish; TLS is required.

    The analyzer publishes through its execution role, so no Lambda service statement is
    needed (the reference's one only widened the policy).
    """
    return _doc(
        {
            "Sid": "AccountOwns",
            "Effect": "Allow",
            "Principal": {"AWS": _account_root(partition, account_id)},
            "Action": [
                "SNS:GetTopicAttributes",
                "SNS:SetTopicAttributes",
                "SNS:Subscribe",
                "SNS:ListSubscriptionsByTopic",
                "SNS:Publish",
            ],
            "Resource": topic_arn,
        },
        {
            "Sid": "CloudWatchAlarmsPublish",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "SNS:Publish",
            "Resource": topic_arn,
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account_id},
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:*"},
            },
        },
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "SNS:Publish",
            "Resource": topic_arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    )
