"""Flow logs for both VPCs into encrypted CloudWatch log groups, and their metric filters."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.dashboard import filter_metric_namespace
from infra.config import flow_log_group_name
from lambda_pkg.constants import FILTER_METRIC_REJECTED, FILTER_METRIC_TRAFFIC, VPC_LABELS

# Space-delimited pattern over the default v2 record; ``log_status=OK`` keeps NODATA and
# SKIPDATA rows (no traffic) out of the counts, which the reference's filters included.
_V2_PATTERN = (
    "[version, account_id, interface_id, srcaddr, dstaddr, srcport, dstport, protocol, "
    "packets, bytes, start, end, action{action}, log_status=OK]"
)
TRAFFIC_PATTERN = _V2_PATTERN.format(action="")
REJECTED_PATTERN = _V2_PATTERN.format(action="=REJECT")


@dataclass
class FlowLogMonitoringArgs:
    """Inputs of the flow-log pipeline."""

    prefix: str
    vpc_ids: dict[str, pulumi.Input[str]]
    retention_days: int
    aggregation_seconds: int
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    region: str
    tags: dict[str, str]


class FlowLogMonitoring(pulumi.ComponentResource):
    """ALL-traffic flow logs of both VPCs, a KMS key for the logs, and metric filters."""

    def __init__(self, name: str, args: FlowLogMonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vpcpeer:monitoring:FlowLogMonitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ids = pulumi.Output.all(args.partition, args.account_id)

        self.logs_key = aws.kms.Key(
            "logs-key",
            description=f"{args.prefix}: encrypts the flow-log and analyzer log groups",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=ids.apply(lambda v: json.dumps(policies.logs_key_policy(v[0], args.region, v[1]))),
            tags={**args.tags, "Name": f"{args.prefix}-logs"},
            opts=child,
        )
        aws.kms.Alias("logs-key-alias", name=f"alias/{args.prefix}-logs", target_key_id=self.logs_key.key_id, opts=child)

        self.log_groups: dict[str, aws.cloudwatch.LogGroup] = {}
        for vpc in VPC_LABELS:
            self.log_groups[vpc] = aws.cloudwatch.LogGroup(
                f"{vpc.lower()}-flow-logs",
                name=flow_log_group_name(args.prefix, vpc),
                retention_in_days=args.retention_days,
                kms_key_id=self.logs_key.arn,
                tags={**args.tags, "Name": f"{vpc.lower()}-flow-logs", "VPC": vpc},
                opts=child,
            )

        self.role = aws.iam.Role(
            "flow-logs-role",
            name=f"{args.prefix}-flow-logs",
            description="Lets VPC Flow Logs of this account deliver into the vpcpeer log groups",
            assume_role_policy=ids.apply(lambda v: json.dumps(policies.flow_logs_trust_policy(v[0], args.region, v[1]))),
            tags={**args.tags, "Name": f"{args.prefix}-flow-logs"},
            opts=child,
        )
        aws.iam.RolePolicy(
            "flow-logs-delivery",
            role=self.role.id,
            policy=pulumi.Output.all(*[g.arn for g in self.log_groups.values()]).apply(
                lambda arns: json.dumps(policies.flow_logs_delivery_policy(arns))
            ),
            opts=pulumi.ResourceOptions(parent=self.role),
        )

        self.flow_logs: dict[str, aws.ec2.FlowLog] = {}
        for vpc in VPC_LABELS:
            slug = vpc.lower()
            group = self.log_groups[vpc]
            self.flow_logs[vpc] = aws.ec2.FlowLog(
                f"{slug}-flow-log",
                vpc_id=args.vpc_ids[vpc],
                traffic_type="ALL",
                log_destination_type="cloud-watch-logs",
                log_destination=group.arn,
                iam_role_arn=self.role.arn,
                max_aggregation_interval=args.aggregation_seconds,
                tags={**args.tags, "Name": f"{slug}-flow-log", "VPC": vpc},
                opts=child,
            )
            for metric, pattern in ((FILTER_METRIC_TRAFFIC, TRAFFIC_PATTERN), (FILTER_METRIC_REJECTED, REJECTED_PATTERN)):
                aws.cloudwatch.LogMetricFilter(
                    f"{slug}-{metric.lower()}",
                    name=f"{args.prefix}-{slug}-{metric}",
                    log_group_name=group.name,
                    pattern=pattern,
                    metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
                        name=metric,
                        namespace=filter_metric_namespace(vpc),
                        value="1",
                        default_value="0",
                        unit="Count",
                    ),
                    opts=pulumi.ResourceOptions(parent=group),
                )
        self.register_outputs(
            {
                "log_group_names": {v: g.name for v, g in self.log_groups.items()},
                "flow_log_ids": {v: f.id for v, f in self.flow_logs.items()},
            }
        )
