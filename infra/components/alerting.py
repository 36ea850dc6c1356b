"""The alert topic (KMS-encrypted), its subscription and policy, and the flow-log alarms."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.dashboard import filter_metric_namespace
from lambda_pkg import constants as c
from lambda_pkg.constants import FILTER_METRIC_REJECTED, FILTER_METRIC_TRAFFIC, VPC_LABELS

ALARM_PERIOD_SECONDS = 300
# A flow-log group that receives nothing for this long means the pipeline is broken.
SILENCE_PERIOD_SECONDS = 600
SILENCE_EVALUATION_PERIODS = 3


@dataclass
class AlertingArgs:
    """Inputs of the alerting component; ``alert_email`` should be a secret Output."""

    prefix: str
    alert_email: pulumi.Input[str]
    traffic_volume_threshold: int
    rejected_connections_threshold: int
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    region: str
    tags: dict[str, str]


class Alerting(pulumi.ComponentResource):
    """SNS topic + email subscription, and alarms that publish to it.

    Every alarm states how it treats missing data: volume and reject alarms stay quiet
    when there is no traffic, while a silence alarm per VPC fires when its flow logs stop
    arriving, so a dead pipeline never looks like a quiet hour.
    """

    def __init__(self, name: str, args: AlertingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vpcpeer:alerting:Alerting", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ids = pulumi.Output.all(args.partition, args.account_id)

        self.key = aws.kms.Key(
            "alerts-key",
            description=f"{args.prefix}: encrypts the alert topic",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=ids.apply(lambda v: json.dumps(policies.alerts_key_policy(v[0], args.region, v[1]))),
            tags={**args.tags, "Name": f"{args.prefix}-alerts"},
            opts=child,
        )
        aws.kms.Alias("alerts-key-alias", name=f"alias/{args.prefix}-alerts", target_key_id=self.key.key_id, opts=child)

        self.topic = aws.sns.Topic(
            "alerts",
            name=f"{args.prefix}-alerts",
            kms_master_key_id=self.key.arn,
            tags={**args.tags, "Name": f"{args.prefix}-alerts"},
            opts=child,
        )
        topic_child = pulumi.ResourceOptions(parent=self.topic)
        aws.sns.TopicPolicy(
            "alerts-policy",
            arn=self.topic.arn,
            policy=pulumi.Output.all(self.topic.arn, args.partition, args.account_id).apply(
                lambda v: json.dumps(
                    policies.alerts_topic_policy(topic_arn=v[0], partition=v[1], region=args.region, account_id=v[2])
                )
            ),
            opts=topic_child,
        )
        aws.sns.TopicSubscription(
            "alerts-email",
            topic=self.topic.arn,
            protocol="email",
            endpoint=args.alert_email,
            opts=topic_child,
        )
        # The delivery ledger shared by the Lambda and Dagster (lambda_pkg/ledger.py): one
        # record per alert, claimed before publishing and marked after. Pending alerts carry
        # "due", so the sparse index lists exactly what still has to go out.
        self.ledger = aws.dynamodb.Table(
            "alert-ledger",
            name=f"{args.prefix}-alert-ledger",
            billing_mode="PAY_PER_REQUEST",
            hash_key=c.LEDGER_KEY,
            attributes=[
                aws.dynamodb.TableAttributeArgs(name=c.LEDGER_KEY, type="S"),
                aws.dynamodb.TableAttributeArgs(name=c.LEDGER_DUE, type="S"),
                aws.dynamodb.TableAttributeArgs(name=c.LEDGER_EXPIRES, type="N"),
            ],
            global_secondary_indexes=[aws.dynamodb.TableGlobalSecondaryIndexArgs(
                name=c.LEDGER_DUE_INDEX, projection_type="ALL",
                key_schemas=[
                    aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(attribute_name=c.LEDGER_DUE, key_type="HASH"),
                    aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(attribute_name=c.LEDGER_EXPIRES, key_type="RANGE"),
                ])],
            ttl=aws.dynamodb.TableTtlArgs(attribute_name=c.LEDGER_PURGE, enabled=True),
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True, kms_key_arn=self.key.arn),
            tags={**args.tags, "Name": f"{args.prefix}-alert-ledger"},
            opts=child,
        )

        self.alarms: list[aws.cloudwatch.MetricAlarm] = []
        for vpc in VPC_LABELS:
            slug = vpc.lower()
            namespace = filter_metric_namespace(vpc)
            self._alarm(
                f"{slug}-high-traffic-volume", args,
                description=f"{vpc}: more than {args.traffic_volume_threshold} flow records in 5 minutes",
                namespace=namespace, metric=FILTER_METRIC_TRAFFIC, statistic="Sum",
                comparison="GreaterThanThreshold", threshold=args.traffic_volume_threshold,
                period=ALARM_PERIOD_SECONDS, evaluation_periods=1, missing="notBreaching", vpc=vpc,
            )
            self._alarm(
                f"{slug}-high-rejected-connections", args,
                description=f"{vpc}: more than {args.rejected_connections_threshold} rejected flows in 5 minutes",
                namespace=namespace, metric=FILTER_METRIC_REJECTED, statistic="Sum",
                comparison="GreaterThanThreshold", threshold=args.rejected_connections_threshold,
                period=ALARM_PERIOD_SECONDS, evaluation_periods=1, missing="notBreaching", vpc=vpc,
            )
            self._alarm(
                f"{slug}-flow-logs-silent", args,
                description=(
                    f"{vpc}: no flow-log records for {SILENCE_PERIOD_SECONDS * SILENCE_EVALUATION_PERIODS // 60} "
                    "minutes; the flow-log pipeline is broken or the VPC is idle"
                ),
                namespace=namespace, metric=FILTER_METRIC_TRAFFIC, statistic="SampleCount",
                comparison="LessThanThreshold", threshold=1,
                period=SILENCE_PERIOD_SECONDS, evaluation_periods=SILENCE_EVALUATION_PERIODS,
                missing="breaching", vpc=vpc,
            )
        self.register_outputs({"topic_arn": self.topic.arn, "ledger_table_name": self.ledger.name})

    def _alarm(self, name: str, args: AlertingArgs, *, description: str, namespace: str, metric: str,
               statistic: str, comparison: str, threshold: int, period: int, evaluation_periods: int,
               missing: str, vpc: str) -> None:
        self.alarms.append(
            aws.cloudwatch.MetricAlarm(
                name,
                name=f"{args.prefix}-{name}",
                alarm_description=description,
                namespace=namespace,
                metric_name=metric,
                statistic=statistic,
                comparison_operator=comparison,
                threshold=threshold,
                period=period,
                evaluation_periods=evaluation_periods,
                treat_missing_data=missing,
                alarm_actions=[self.topic.arn],
                ok_actions=[self.topic.arn],
                tags={**args.tags, "Name": f"{args.prefix}-{name}", "VPC": vpc},
                opts=pulumi.ResourceOptions(parent=self),
            )
        )
