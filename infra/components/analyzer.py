"""The traffic-analyzer Lambda: role, function, dead-letter queue, schedule and health alarms."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.components.signing import CodeSigning
from lambda_pkg import constants as c


@dataclass
class AnalyzerFunctionArgs:
    """Inputs of the analyzer function.

    ``environment`` is the handler's configuration (DESIGN "Contracts"); ``code_path`` and
    ``code_sha256_b64`` identify the reproducible zip built from ``lambda_pkg``. With
    ``signing`` the function deploys the signed copy of that zip instead, under its
    code-signing configuration.
    """

    prefix: str
    code_path: str
    code_sha256_b64: str
    environment: dict[str, pulumi.Input[str]]
    flow_log_group_arns: list[pulumi.Input[str]]
    topic_arn: pulumi.Input[str]
    alerts_key_arn: pulumi.Input[str]
    ledger_table_arn: pulumi.Input[str]
    logs_key_arn: pulumi.Input[str]
    schedule: str
    schedule_enabled: bool
    reserved_concurrency: int
    timeout_seconds: int
    memory_mb: int
    retention_days: int
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    region: str
    tags: dict[str, str]
    signing: CodeSigning | None = None


def _code(args: AnalyzerFunctionArgs) -> dict[str, Any]:
    """Where the function's code comes from: the signed copy in S3, or the zip itself."""
    if args.signing is None:
        return {"code": pulumi.FileArchive(args.code_path), "source_code_hash": args.code_sha256_b64}
    return {"s3_bucket": args.signing.signed_bucket, "s3_key": args.signing.signed_key,
            "code_signing_config_arn": args.signing.config.arn}


class AnalyzerFunction(pulumi.ComponentResource):
    """Hourly flow-log analyzer deployed from the ``lambda_pkg`` zip.

    The EventBridge rule exists for standalone use but is disabled by default: the
    Dagster schedule is the one clock, so alerts are never sent twice (DESIGN decision 4).
    """

    def __init__(self, name: str, args: AnalyzerFunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vpcpeer:analyzer:AnalyzerFunction", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.function_name = f"{args.prefix}-traffic-analyzer"

        self.log_group = aws.cloudwatch.LogGroup(
            "analyzer-logs",
            name=f"/aws/lambda/{self.function_name}",
            retention_in_days=args.retention_days,
            kms_key_id=args.logs_key_arn,
            tags={**args.tags, "Name": f"{self.function_name}-logs"},
            opts=child,
        )
        self.dead_letter_queue = aws.sqs.Queue(
            "analyzer-dlq",
            name=f"{args.prefix}-analyzer-dlq",
            message_retention_seconds=14 * 24 * 3600,
            sqs_managed_sse_enabled=True,
            tags={**args.tags, "Name": f"{args.prefix}-analyzer-dlq"},
            opts=child,
        )
        self.role = aws.iam.Role(
            "analyzer-role",
            name=f"{args.prefix}-analyzer",
            description="Execution role of the vpcpeer traffic analyzer",
            assume_role_policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account: json.dumps(policies.lambda_trust_policy(account))
            ),
            tags={**args.tags, "Name": f"{args.prefix}-analyzer"},
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            "analyzer-policy",
            role=self.role.id,
            policy=pulumi.Output.all(
                self.log_group.arn, args.topic_arn, args.alerts_key_arn, self.dead_letter_queue.arn,
                args.ledger_table_arn, *args.flow_log_group_arns,
            ).apply(
                lambda v: json.dumps(
                    policies.analyzer_policy(
                        own_log_group_arn=v[0], topic_arn=v[1], alerts_key_arn=v[2],
                        dead_letter_queue_arn=v[3], ledger_table_arn=v[4], flow_log_group_arns=v[5:],
                    )
                )
            ),
            opts=pulumi.ResourceOptions(parent=self.role),
        )
        self.function = aws.lambda_.Function(
            "traffic-analyzer",
            name=self.function_name,
            description="Hourly VPC flow-log traffic analysis and anomaly detection (vpcpeer)",
            runtime=c.LAMBDA_RUNTIME,
            handler=c.LAMBDA_HANDLER,
            **_code(args),
            role=self.role.arn,
            timeout=args.timeout_seconds,
            memory_size=args.memory_mb,
            reserved_concurrent_executions=args.reserved_concurrency,
            dead_letter_config=aws.lambda_.FunctionDeadLetterConfigArgs(target_arn=self.dead_letter_queue.arn),
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active"),
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=args.environment),
            # The environment names the topic and the ledger: encrypted at rest with the stack's
            # alerts key, which the execution role may already decrypt with (CKV_AWS_173).
            kms_key_arn=args.alerts_key_arn,
            tags={**args.tags, "Name": self.function_name},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_group, policy]),
        )
        self.schedule_rule = aws.cloudwatch.EventRule(
            "analyzer-schedule",
            name=f"{args.prefix}-analyzer-schedule",
            description="Standalone hourly trigger; disabled while Dagster drives the analysis",
            schedule_expression=args.schedule,
            state="ENABLED" if args.schedule_enabled else "DISABLED",
            tags={**args.tags, "Name": f"{args.prefix}-analyzer-schedule"},
            opts=child,
        )
        rule_child = pulumi.ResourceOptions(parent=self.schedule_rule)
        aws.lambda_.Permission(
            "analyzer-allow-eventbridge",
            statement_id="AllowScheduleRule",
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal="events.amazonaws.com",
            source_arn=self.schedule_rule.arn,
            source_account=args.account_id,
            opts=rule_child,
        )
        aws.cloudwatch.EventTarget(
            "analyzer-schedule-target",
            rule=self.schedule_rule.name,
            target_id="traffic-analyzer",
            arn=self.function.arn,
            input=json.dumps({"source": "eventbridge-schedule"}),
            opts=rule_child,
        )
        alarm_common = dict(
            alarm_actions=[args.topic_arn],
            ok_actions=[args.topic_arn],
            evaluation_periods=1,
            period=3600,
            statistic="Sum",
            comparison_operator="GreaterThanThreshold",
            threshold=0,
            treat_missing_data="notBreaching",
        )
        errors = aws.cloudwatch.MetricAlarm(
            "analyzer-errors",
            name=f"{args.prefix}-analyzer-errors",
            alarm_description="The traffic analyzer failed: no analysis was published for that hour",
            namespace="AWS/Lambda",
            metric_name="Errors",
            dimensions={"FunctionName": self.function.name},
            tags={**args.tags, "Name": f"{args.prefix}-analyzer-errors"},
            opts=child,
            **alarm_common,
        )
        dead_letters = aws.cloudwatch.MetricAlarm(
            "analyzer-dead-letters",
            name=f"{args.prefix}-analyzer-dead-letters",
            alarm_description="Asynchronous analyzer invocations failed every retry and landed in the DLQ",
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": self.dead_letter_queue.name},
            tags={**args.tags, "Name": f"{args.prefix}-analyzer-dead-letters"},
            opts=child,
            **{**alarm_common, "statistic": "Maximum", "period": 300},
        )
        self.alarms = [errors, dead_letters]
        self.register_outputs({"function_arn": self.function.arn, "function_name": self.function.name})
