"""The network stack as one rollout materialising the parts a user recognises."""

import json

import dagster as dg

from vpcpeer_orchestration import posture
from vpcpeer_orchestration.resources import AwsResource, StackResource

OWNERS = ["team:network-security"]
GROUP = "network"
KINDS = {"pulumi", "aws"}

STACK_SPECS = [
    dg.AssetSpec("peered_vpcs", group_name=GROUP, kinds=KINDS | {"vpc"}, owners=OWNERS,
                 description="VPC-A and VPC-B: public and private subnets in two AZs, internet and NAT gateways, "
                             "and the peering with routes in every route table."),
    dg.AssetSpec("peering_security_groups", group_name=GROUP, kinds=KINDS, owners=OWNERS, deps=["peered_vpcs"],
                 description="One security group per VPC allowing only the declared ports across the peering; "
                             "the default groups hold no rules."),
    dg.AssetSpec("flow_log_pipeline", group_name=GROUP, kinds=KINDS | {"cloudwatch"}, owners=OWNERS, deps=["peered_vpcs"],
                 description="ALL-traffic VPC Flow Logs of both VPCs into KMS-encrypted log groups, with metric filters."),
    dg.AssetSpec("alerting", group_name=GROUP, kinds=KINDS | {"sns"}, owners=OWNERS, deps=["flow_log_pipeline"],
                 description="The encrypted alert topic, its subscription and policy, and the flow-log alarms."),
    dg.AssetSpec("analyzer_function", group_name=GROUP, kinds=KINDS | {"aws_lambda"}, owners=OWNERS,
                 deps=["lambda_package", "flow_log_pipeline", "alerting"],
                 description="The traffic-analyzer Lambda deployed from lambda_package, its role, DLQ and alarms."),
    dg.AssetSpec("monitoring_dashboard", group_name=GROUP, kinds=KINDS | {"cloudwatch"}, owners=OWNERS,
                 deps=["analyzer_function"],
                 description="CloudWatch dashboard: flow-log metrics, the analyzer's metrics and its health."),
]

CHECKS = [
    dg.AssetCheckSpec("peering_active", asset="peered_vpcs", blocking=True,
                      description="The peering connection is active."),
    dg.AssetCheckSpec("flow_logs_active", asset="flow_log_pipeline", blocking=True,
                      description="Both VPCs have an ACTIVE flow log capturing ALL traffic."),
    dg.AssetCheckSpec("rules_match_declared_ports", asset="peering_security_groups", blocking=True,
                      description="Live security-group rules equal the declared ports and peer CIDRs."),
    dg.AssetCheckSpec("default_groups_empty", asset="peering_security_groups", blocking=True,
                      description="Neither VPC's default security group has a rule."),
]

RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def evaluate_posture(ec2, outputs, cfg) -> list[dg.AssetCheckResult]:
    """Every posture check as an AssetCheckResult (shared by the rollout and the drift sensor)."""
    findings = {
        ("peered_vpcs", "peering_active"): posture.peering_active(ec2, outputs),
        ("flow_log_pipeline", "flow_logs_active"): posture.flow_logs_active(ec2, outputs),
        ("peering_security_groups", "rules_match_declared_ports"): posture.rules_match(ec2, outputs, cfg),
        ("peering_security_groups", "default_groups_empty"): posture.default_groups_empty(ec2, outputs),
    }
    return [
        dg.AssetCheckResult(asset_key=asset, check_name=name, passed=passed,
                            metadata={k: dg.MetadataValue.json(v) for k, v in detail.items()})
        for (asset, name), (passed, detail) in findings.items()
    ]


@dg.multi_asset(specs=STACK_SPECS, check_specs=CHECKS, name="network_stack", retry_policy=RETRY,
                description="Roll out the Pulumi program (emulated locally, Automation API on AWS).")
def network_stack(context: dg.AssetExecutionContext, stack: StackResource, aws: AwsResource):
    """One rollout materialises every part of the network, then reads the live posture back."""
    result = stack.rollout(log=context.log)
    outputs = result.public_outputs()
    counts = result.resource_counts()
    context.log.info(f"rollout ({result.mode}): {dict(result.changes)}")
    for spec in STACK_SPECS:
        yield dg.MaterializeResult(
            asset_key=spec.key,
            metadata={
                "mode": result.mode,
                "stack": result.stack,
                "changes": dg.MetadataValue.json(dict(result.changes)),
                "resource_counts": dg.MetadataValue.json(counts),
                "outputs": dg.MetadataValue.json(json.loads(json.dumps(outputs, default=str))),
            },
        )
    cfg = stack.settings().validated()
    yield from evaluate_posture(aws.client("ec2"), result.outputs, cfg)
