"""AWS resources the analyzer expects, created in moto for tests that do not roll the stack out."""

from __future__ import annotations

from typing import Any

from lambda_pkg import constants as c


def create_ledger_table(dynamodb: Any, name: str) -> str:
    """The delivery ledger table with the schema the stack declares (infra/components/alerting.py)."""
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": c.LEDGER_KEY, "AttributeType": "S"},
                              {"AttributeName": c.LEDGER_DUE, "AttributeType": "S"},
                              {"AttributeName": c.LEDGER_EXPIRES, "AttributeType": "N"}],
        KeySchema=[{"AttributeName": c.LEDGER_KEY, "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[{"IndexName": c.LEDGER_DUE_INDEX,
                                 "KeySchema": [{"AttributeName": c.LEDGER_DUE, "KeyType": "HASH"},
                                               {"AttributeName": c.LEDGER_EXPIRES, "KeyType": "RANGE"}],
                                 "Projection": {"ProjectionType": "ALL"}}],
    )
    return name


def create_flow_log(ec2: Any, iam: Any, logs: Any, cidr: str, log_group: str) -> str:
    """A VPC with an ACTIVE ALL-traffic flow log delivering to ``log_group``; returns the flow log id.

    The log group and the delivery role must exist, or moto (like AWS) reports the
    deliveries as failing.
    """
    if not logs.describe_log_groups(logGroupNamePrefix=log_group)["logGroups"]:
        logs.create_log_group(logGroupName=log_group)
    try:
        role = iam.get_role(RoleName="flow-logs-delivery")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="flow-logs-delivery", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    response = ec2.create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", TrafficType="ALL",
                                    LogDestinationType="cloud-watch-logs", LogGroupName=log_group,
                                    DeliverLogsPermissionArn=role)
    return response["FlowLogIds"][0]


def backdate_flow_logs(region: str, age_seconds: float, account: str = "123456789012") -> None:
    """In an in-process moto (``mock_aws``), make every flow log older: created before the windows tested."""
    from datetime import timedelta

    from moto.ec2.models import ec2_backends

    for flow_log in ec2_backends[account][region].flow_logs.values():
        flow_log.creation_time = flow_log.creation_time - timedelta(seconds=age_seconds)
