"""Policy documents: least privilege and confused-deputy conditions, checked without Pulumi."""

from __future__ import annotations

from typing import Any

import pytest

from infra import policies
from lambda_pkg.constants import METRIC_NAMESPACE

ACCOUNT, REGION, PARTITION = "111122223333", "eu-west-1", "aws"
FLOW_GROUPS = [policies.log_group_arn(PARTITION, REGION, ACCOUNT, f"/aws/vpc/flowlogs/x/{v}") for v in ("vpc-a", "vpc-b")]
OWN_GROUP = policies.log_group_arn(PARTITION, REGION, ACCOUNT, "/aws/lambda/x-traffic-analyzer")


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def _resources(statement: dict[str, Any]) -> list[str]:
    resource = statement["Resource"]
    return [resource] if isinstance(resource, str) else list(resource)


def analyzer() -> dict[str, Any]:
    return policies.analyzer_policy(
        flow_log_group_arns=FLOW_GROUPS, own_log_group_arn=OWN_GROUP,
        topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT}:x-alerts",
        alerts_key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/abc",
        ledger_table_arn=f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/vpcpeer-test-alert-ledger",
        dead_letter_queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:x-dlq",
    )


IDENTITY_POLICIES = {
    "analyzer": analyzer(),
    "flow_logs_delivery": policies.flow_logs_delivery_policy(FLOW_GROUPS),
}

RESOURCE_POLICIES = {
    "flow_logs_trust": policies.flow_logs_trust_policy(PARTITION, REGION, ACCOUNT),
    "lambda_trust": policies.lambda_trust_policy(ACCOUNT),
    "logs_key": policies.logs_key_policy(PARTITION, REGION, ACCOUNT),
    "alerts_key": policies.alerts_key_policy(PARTITION, REGION, ACCOUNT),
    "alerts_topic": policies.alerts_topic_policy(
        topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT}:x-alerts", partition=PARTITION, region=REGION, account_id=ACCOUNT
    ),
}


@pytest.mark.parametrize("name", sorted(IDENTITY_POLICIES))
def test_wildcard_resources_only_for_actions_that_take_no_resource(name: str) -> None:
    for statement in IDENTITY_POLICIES[name]["Statement"]:
        if "*" in _resources(statement):
            assert set(_actions(statement)) <= policies.NO_RESOURCE_ACTIONS, statement


@pytest.mark.parametrize("name", sorted(IDENTITY_POLICIES))
def test_no_action_wildcards_in_identity_policies(name: str) -> None:
    for statement in IDENTITY_POLICIES[name]["Statement"]:
        assert all("*" not in a.split(":", 1)[1] or a.endswith("GenerateDataKey*") for a in _actions(statement)), statement


def test_metric_publishing_is_limited_to_the_analyzer_namespace() -> None:
    [statement] = [s for s in analyzer()["Statement"] if "cloudwatch:PutMetricData" in _actions(s)]
    assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}}


def test_stop_query_is_granted_so_deadlines_can_cancel_queries() -> None:
    granted = {a for s in analyzer()["Statement"] for a in _actions(s)}
    assert {"logs:StartQuery", "logs:GetQueryResults", "logs:StopQuery", "logs:FilterLogEvents"} <= granted


def test_analyzer_logs_only_into_its_own_group() -> None:
    writers = [s for s in analyzer()["Statement"] if "logs:PutLogEvents" in _actions(s)]
    assert [r for s in writers for r in _resources(s)] == [f"{OWN_GROUP}:*"]
    assert not any("logs:CreateLogGroup" in _actions(s) for s in analyzer()["Statement"])


def test_flow_log_queries_are_limited_to_the_two_flow_log_groups() -> None:
    for action in ("logs:StartQuery", "logs:GetQueryResults", "logs:FilterLogEvents"):
        [statement] = [s for s in analyzer()["Statement"] if action in _actions(s)]
        assert {r.removesuffix(":*") for r in _resources(statement)} == set(FLOW_GROUPS), action


def test_the_analyzer_is_granted_no_action_it_never_calls() -> None:
    granted = {a for s in analyzer()["Statement"] for a in _actions(s)}
    assert "logs:DescribeLogGroups" not in granted


@pytest.mark.parametrize("name", sorted(RESOURCE_POLICIES))
def test_every_service_principal_is_bound_to_this_account(name: str) -> None:
    for statement in RESOURCE_POLICIES[name]["Statement"]:
        principal = statement.get("Principal")
        if not isinstance(principal, dict) or "Service" not in principal or statement["Effect"] != "Allow":
            continue
        conditions = statement.get("Condition", {})
        flat = {k: v for block in conditions.values() for k, v in block.items()}
        if "aws:SourceAccount" in flat:
            assert flat["aws:SourceAccount"] == ACCOUNT
        if "aws:SourceArn" in flat:
            assert f":{ACCOUNT}:" in flat["aws:SourceArn"]
        # CloudWatch Logs identifies the calling log group through the encryption context.
        context = flat.get("kms:EncryptionContext:aws:logs:arn")
        assert "aws:SourceAccount" in flat or "aws:SourceArn" in flat or (context and f":{ACCOUNT}:" in context), statement


def test_topic_policy_has_no_lambda_service_statement_and_requires_tls() -> None:
    statements = RESOURCE_POLICIES["alerts_topic"]["Statement"]
    services = {s["Principal"].get("Service") for s in statements if isinstance(s["Principal"], dict)}
    assert "lambda.amazonaws.com" not in services
    [deny] = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_cloudwatch_alarms_may_use_the_alerts_key() -> None:
    statements = RESOURCE_POLICIES["alerts_key"]["Statement"]
    [cw] = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert {"kms:GenerateDataKey*", "kms:Decrypt"} <= set(_actions(cw))


def test_logs_key_serves_cloudwatch_logs_in_the_region_and_the_flow_log_service() -> None:
    principals = {s["Principal"].get("Service") for s in RESOURCE_POLICIES["logs_key"]["Statement"]}
    assert {f"logs.{REGION}.amazonaws.com", "vpc-flow-logs.amazonaws.com"} <= principals
