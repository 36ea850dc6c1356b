"""The network stack as one rollout materialising the parts a user recognises."""

import json
from pathlib import Path
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
from vpcpeer_orchestration.partitions import record_first_rollout
from vpcpeer_orchestration.resources import FlowLogSourceResource, StackResource

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


def asset_facts(outputs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What each network asset shows in the UI: its own resources, from the stack outputs."""
    from lambda_pkg.constants import VPC_SLUGS

    vpcs = {label: {field: outputs.get(f"{slug}_{field}") for field in ("id", "cidr", "public_subnet_ids",
                                                                        "private_subnet_ids")}
            for label, slug in VPC_SLUGS.items()}
    (a, a_slug), (b, b_slug) = VPC_SLUGS.items()
    # Each VPC's declared ingress ports, allowed from the other VPC's CIDR.
    ingress = [(a, outputs.get(f"{a_slug}_allowed_ports") or [], vpcs[b]["cidr"]),
               (b, outputs.get(f"{b_slug}_allowed_ports") or [], vpcs[a]["cidr"])]
    facts = {
        "peered_vpcs": {
            **{f"{slug}_id": outputs.get(f"{slug}_id") for slug in VPC_SLUGS.values()},
            **{f"{slug}_cidr": outputs.get(f"{slug}_cidr") for slug in VPC_SLUGS.values()},
            "peering_connection_id": outputs.get("peering_connection_id"),
            "vpcs": dg.MetadataValue.json(vpcs),
        },
        "peering_security_groups": {
            **{f"{slug}_security_group_id": outputs.get(f"{slug}_security_group_id") for slug in VPC_SLUGS.values()},
            "rules": dg.MetadataValue.table(
                [dg.TableRecord({"vpc": label, "direction": "ingress", "protocol": "tcp", "port": port,
                                 "peer_cidr": peer_cidr})
                 for label, ports, peer_cidr in ingress for port in ports],
                schema=dg.TableSchema(columns=[dg.TableColumn(n, t) for n, t in (
                    ("vpc", "string"), ("direction", "string"), ("protocol", "string"), ("port", "int"),
                    ("peer_cidr", "string"))])),
        },
        "flow_log_pipeline": {
            **{f"{slug}_flow_log_id": outputs.get(f"{slug}_flow_log_id") for slug in VPC_SLUGS.values()},
            **{f"{slug}_log_group_name": outputs.get(f"{slug}_log_group_name") for slug in VPC_SLUGS.values()},
        },
        "alerting": {
            "sns_topic_arn": outputs.get("sns_topic_arn"),
            "alert_ledger_table_name": outputs.get("alert_ledger_table_name"),
            "alarms": dg.MetadataValue.json(outputs.get("alarm_names") or []),
        },
        "analyzer_function": {
            "lambda_function_arn": outputs.get("lambda_function_arn"),
            "lambda_code_sha256": outputs.get("lambda_code_sha256"),
            "lambda_dead_letter_queue_arn": outputs.get("lambda_dead_letter_queue_arn"),
            "lambda_code_signing_config_arn": outputs.get("lambda_code_signing_config_arn") or "none (code_signing: off)",
        },
        "monitoring_dashboard": {
            "dashboard_url": dg.MetadataValue.url(outputs["dashboard_url"]) if outputs.get("dashboard_url")
            else "none (create_dashboard: false)",
        },
    }
    return {asset: {k: v for k, v in values.items() if v is not None} for asset, values in facts.items()}


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
def network_stack(context: dg.AssetExecutionContext, lambda_package: dict[str, Any], stack: StackResource,
                  flow_logs: FlowLogSourceResource):
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
    start = record_first_rollout(flow_logs.first_hour_at_rollout(), home=Path(context.instance.root_directory))
    if start:
        context.log.info(f"first rollout in this instance: hourly partitions start at {start} UTC from the next "
                         "load of the code location")
    facts = asset_facts(outputs)
    for spec in STACK_SPECS:
        yield dg.MaterializeResult(
            asset_key=spec.key,
            metadata={
                **facts[spec.key.to_user_string()],
                "mode": result.mode,
                "stack": result.stack,
                # The rollout as a whole, once: on the first asset of the stack.
                **({"changes": dg.MetadataValue.json(dict(result.changes)),
                    "resource_counts": dg.MetadataValue.json(result.resource_counts())}
                   if spec.key == PEERED_VPCS else {}),
                **({"lambda_sha256": lambda_package["sha256"]} if spec.key.to_user_string() == "analyzer_function"
                   else {}),
                **({GENERATION_KEY: generation} if generation else {}),
            },
        )
    yield from evaluate_posture(stack, result.outputs)
