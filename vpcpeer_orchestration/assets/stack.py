"""The network stack as one rollout materialising the parts a user recognises."""

import json
from typing import Any

import dagster as dg

from vpcpeer_orchestration import posture
from vpcpeer_orchestration.assets.failures import permanent_failures
from vpcpeer_orchestration.assets.groups import NETWORK_GROUP, OWNERS
from vpcpeer_orchestration.assets.package import (
    LAMBDA_PACKAGE,
    PackageChanged,
    verified_package,
)
from vpcpeer_orchestration.continuity import GENERATION_KEY, refuse_if_lost
from vpcpeer_orchestration.resources import StackResource

KINDS = {"pulumi", "aws"}
PEERED_VPCS = dg.AssetKey("peered_vpcs")
FLOW_LOG_PIPELINE = dg.AssetKey("flow_log_pipeline")
ALERTING = dg.AssetKey("alerting")


def _spec(key: str, description: str, deps: list[Any], kinds: set[str] = frozenset()) -> dg.AssetSpec:
    return dg.AssetSpec(key, group_name=NETWORK_GROUP, kinds=KINDS | set(kinds), owners=OWNERS, deps=deps,
                        description=description)


STACK_SPECS = [
    _spec("peered_vpcs", "VPC-A and VPC-B: public and private subnets in two AZs, internet and NAT gateways, "
                         "and the peering with routes in every route table.", [], {"vpc"}),
    _spec("peering_security_groups", "One security group per VPC allowing only the declared ports across the "
                                     "peering; the default groups hold no rules.", [PEERED_VPCS]),
    _spec("flow_log_pipeline", "ALL-traffic VPC Flow Logs of both VPCs into KMS-encrypted log groups, with "
                               "metric filters.", [PEERED_VPCS], {"cloudwatch"}),
    _spec("alerting", "The encrypted alert topic, its subscription and policy, and the flow-log alarms.",
          [FLOW_LOG_PIPELINE], {"sns"}),
    _spec("analyzer_function", "The traffic-analyzer Lambda deployed from lambda_package, its role, DLQ and alarms.",
          [LAMBDA_PACKAGE, FLOW_LOG_PIPELINE, ALERTING], {"aws_lambda"}),
    _spec("monitoring_dashboard", "CloudWatch dashboard: flow-log metrics, the analyzer's metrics and its health.",
          ["analyzer_function"], {"cloudwatch"}),
]

CHECKS = [
    dg.AssetCheckSpec("peering_active", asset=PEERED_VPCS, blocking=True,
                      description="The peering connection is active."),
    dg.AssetCheckSpec("flow_logs_active", asset=FLOW_LOG_PIPELINE, blocking=True,
                      description="Both VPCs have an ACTIVE flow log capturing ALL traffic."),
    dg.AssetCheckSpec("rules_match_declared_ports", asset="peering_security_groups", blocking=True,
                      description="Live security-group rules equal the declared ports and peer CIDRs."),
    dg.AssetCheckSpec("default_groups_empty", asset="peering_security_groups", blocking=True,
                      description="Neither VPC's default security group has a rule."),
]

# A rollout step that fails transiently is run again whole (each AWS call already has
# botocore's retries); a rollout is idempotent, so a retry creates nothing twice.
RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def evaluate_posture(stack: StackResource, outputs: dict[str, Any]) -> list[dg.AssetCheckResult]:
    """Every posture check as an AssetCheckResult (shared by the rollout and the drift sensor)."""
    ec2, cfg = stack.client("ec2"), stack.config()
    findings = {
        (PEERED_VPCS, "peering_active"): posture.peering_active(ec2, outputs),
        (FLOW_LOG_PIPELINE, "flow_logs_active"): posture.flow_logs_active(ec2, outputs),
        (dg.AssetKey("peering_security_groups"), "rules_match_declared_ports"): posture.rules_match(ec2, outputs, cfg),
        (dg.AssetKey("peering_security_groups"), "default_groups_empty"): posture.default_groups_empty(ec2, outputs),
    }
    return [
        dg.AssetCheckResult(asset_key=asset, check_name=name, passed=passed,
                            metadata={k: dg.MetadataValue.json(v) for k, v in detail.items()})
        for (asset, name), (passed, detail) in findings.items()
    ]


@dg.multi_asset(specs=STACK_SPECS, check_specs=CHECKS, name="network_stack", retry_policy=RETRY,
                ins={"lambda_package": dg.AssetIn(LAMBDA_PACKAGE)},
                description="Roll out the Pulumi program (emulated locally, Automation API on AWS) with the zip "
                            "lambda_package built, then read the live posture back.")
@permanent_failures
def network_stack(context: dg.AssetExecutionContext, lambda_package: dict[str, Any], stack: StackResource):
    """One rollout materialises every part of the network, then reads the live posture back."""
    try:
        package = verified_package(lambda_package)
    except PackageChanged as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    generation = refuse_if_lost(context, stack, PEERED_VPCS, None, what="The stack",
                                refused="roll out a second stack beside records of the first")
    result = stack.rollout(package, log=context.log)
    outputs = json.loads(json.dumps(result.public_outputs(), default=str))
    context.log.info(f"rollout ({result.mode}): {dict(result.changes)}")
    for spec in STACK_SPECS:
        yield dg.MaterializeResult(
            asset_key=spec.key,
            metadata={
                "mode": result.mode,
                "stack": result.stack,
                "changes": dg.MetadataValue.json(dict(result.changes)),
                "resource_counts": dg.MetadataValue.json(result.resource_counts()),
                "outputs": dg.MetadataValue.json(outputs),
                "lambda_sha256": lambda_package["sha256"],
                **({GENERATION_KEY: generation} if generation else {}),
            },
        )
    yield from evaluate_posture(stack, result.outputs)
