"""The whole vpcpeer stack, declared from a validated StackConfig.

``build_stack`` reads no configuration and touches no environment: the Pulumi entry
point, the preview runner and (later) the emulated rollout all call it the same way.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.alerting import Alerting, AlertingArgs
from infra.components.analyzer import AnalyzerFunction, AnalyzerFunctionArgs
from infra.components.dashboard import MonitoringDashboard, MonitoringDashboardArgs
from infra.components.monitoring import FlowLogMonitoring, FlowLogMonitoringArgs
from infra.components.network import PeeredNetwork, PeeredNetworkArgs
from infra.components.security import PeeringSecurityGroups, PeeringSecurityGroupsArgs
from infra.components.signing import CodeSigning, CodeSigningArgs
from infra.config import AVAILABILITY_ZONE_COUNT, CODE_SIGNING_ENFORCE, InvalidStackConfig, StackConfig
from infra.stack_files import INFRA_DIR
from lambda_pkg import constants as c



class NotEnoughAvailabilityZones(RuntimeError):
    """The region offers fewer available AZs than the two the stack spreads over."""


def resolve_code_path(cfg: StackConfig) -> Path:
    """Absolute path of the Lambda zip; relative paths are taken from ``infra/``."""
    path = Path(cfg.lambda_zip_path)
    return path if path.is_absolute() else (INFRA_DIR / path).resolve()


def code_sha256_b64(path: Path) -> str:
    """Base64 SHA-256 of the zip, the form Lambda reports as CodeSha256."""
    if not path.is_file():
        raise InvalidStackConfig(
            "lambda_zip_path", f"{path} does not exist",
            "Build the analyzer package first: `vpcpeer lambda build` (or `make lambda`).",
        )
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def _two_zones(names: list[str]) -> list[str]:
    if len(names) < AVAILABILITY_ZONE_COUNT:
        raise NotEnoughAvailabilityZones(
            f"the region offers {len(names)} available AZ(s) ({names}); vpcpeer needs {AVAILABILITY_ZONE_COUNT}. "
            "Choose another aws:region."
        )
    return sorted(names)[:AVAILABILITY_ZONE_COUNT]


def build_stack(cfg: StackConfig) -> dict[str, Any]:
    """Declare every resource of the stack and return the stack outputs (not yet exported)."""
    code_path = resolve_code_path(cfg)
    code_hash = code_sha256_b64(code_path)
    tags: dict[str, str] = {}  # common tags come from the provider's default_tags

    provider = aws.Provider(
        "aws",
        region=cfg.region,
        default_tags=aws.ProviderDefaultTagsArgs(tags=cfg.common_tags),
    )
    opts = pulumi.ResourceOptions(provider=provider)
    invoke = pulumi.InvokeOutputOptions(provider=provider)
    identity = aws.get_caller_identity_output(opts=invoke)
    partition = aws.get_partition_output(opts=invoke).partition
    zones = aws.get_availability_zones_output(state="available", opts=invoke).names.apply(_two_zones)

    network = PeeredNetwork(
        "network",
        PeeredNetworkArgs(cfg.vpc_a_cidr, cfg.vpc_b_cidr, zones, cfg.single_nat_gateway, tags),
        opts,
    )
    security = PeeringSecurityGroups(
        "security",
        PeeringSecurityGroupsArgs(
            vpc_a_id=network.vpc_a.vpc.id, vpc_b_id=network.vpc_b.vpc.id,
            vpc_a_cidr=cfg.vpc_a_cidr, vpc_b_cidr=cfg.vpc_b_cidr,
            vpc_a_allowed_ports=cfg.vpc_a_allowed_ports, vpc_b_allowed_ports=cfg.vpc_b_allowed_ports,
            tags=tags,
        ),
        opts,
    )
    monitoring = FlowLogMonitoring(
        "flow-logs",
        FlowLogMonitoringArgs(
            prefix=cfg.prefix,
            vpc_ids={c.VPC_A: network.vpc_a.vpc.id, c.VPC_B: network.vpc_b.vpc.id},
            retention_days=cfg.retention_days,
            aggregation_seconds=cfg.flow_log_aggregation_seconds,
            account_id=identity.account_id, partition=partition, region=cfg.region, tags=tags,
        ),
        opts,
    )
    alerting = Alerting(
        "alerting",
        AlertingArgs(
            prefix=cfg.prefix,
            alert_email=pulumi.Output.secret(cfg.alert_email),
            traffic_volume_threshold=cfg.traffic_volume_threshold,
            rejected_connections_threshold=cfg.rejected_connections_threshold,
            account_id=identity.account_id, partition=partition, region=cfg.region, tags=tags,
        ),
        opts,
    )
    groups = monitoring.log_groups
    signing = None
    if cfg.code_signing == CODE_SIGNING_ENFORCE:
        signing = CodeSigning(
            "code-signing",
            CodeSigningArgs(prefix=cfg.prefix, code_path=str(code_path), key_arn=alerting.key.arn, tags=tags),
            opts,
        )
    analyzer = AnalyzerFunction(
        "analyzer",
        AnalyzerFunctionArgs(
            prefix=cfg.prefix,
            code_path=str(code_path),
            code_sha256_b64=code_hash,
            environment=cfg.analyzer_environment(
                topic_arn=alerting.topic.arn, ledger_table=alerting.ledger.name,
                log_groups={vpc: group.name for vpc, group in groups.items()}),
            flow_log_group_arns=[g.arn for g in groups.values()],
            topic_arn=alerting.topic.arn,
            alerts_key_arn=alerting.key.arn,
            ledger_table_arn=alerting.ledger.arn,
            logs_key_arn=monitoring.logs_key.arn,
            schedule=cfg.lambda_schedule,
            schedule_enabled=cfg.analyzer_schedule_enabled,
            reserved_concurrency=cfg.lambda_reserved_concurrency,
            timeout_seconds=cfg.lambda_timeout_seconds,
            memory_mb=cfg.lambda_memory_mb,
            retention_days=cfg.retention_days,
            account_id=identity.account_id, partition=partition, region=cfg.region, tags=tags,
            signing=signing,
        ),
        opts,
    )
    dashboard_url: Any = None
    if cfg.create_dashboard:
        dashboard = MonitoringDashboard(
            "dashboard",
            MonitoringDashboardArgs(
                prefix=cfg.prefix, region=cfg.region, function_name=analyzer.function.name,
                log_group_names={v: g.name for v, g in groups.items()},
            ),
            opts,
        )
        dashboard_url = dashboard.url

    return {
        "region": cfg.region,
        "vpc_a_id": network.vpc_a.vpc.id,
        "vpc_b_id": network.vpc_b.vpc.id,
        "vpc_a_cidr": network.vpc_a.vpc.cidr_block,
        "vpc_b_cidr": network.vpc_b.vpc.cidr_block,
        "vpc_a_public_subnet_ids": [s.id for s in network.vpc_a.public_subnets],
        "vpc_a_private_subnet_ids": [s.id for s in network.vpc_a.private_subnets],
        "vpc_b_public_subnet_ids": [s.id for s in network.vpc_b.public_subnets],
        "vpc_b_private_subnet_ids": [s.id for s in network.vpc_b.private_subnets],
        "peering_connection_id": network.peering.id,
        **{f"{slug}_security_group_id": security.groups[label].id for label, slug in c.VPC_SLUGS.items()},
        **{f"{slug}_allowed_ports": list(cfg.allowed_ports(label)) for label, slug in c.VPC_SLUGS.items()},
        **{f"{slug}_flow_log_id": monitoring.flow_logs[label].id for label, slug in c.VPC_SLUGS.items()},
        **{f"{slug}_log_group_name": groups[label].name for label, slug in c.VPC_SLUGS.items()},
        **{f"{slug}_log_group_arn": groups[label].arn for label, slug in c.VPC_SLUGS.items()},
        "lambda_function_arn": analyzer.function.arn,
        "lambda_function_name": analyzer.function.name,
        "lambda_dead_letter_queue_arn": analyzer.dead_letter_queue.arn,
        "lambda_code_sha256": code_hash,
        "lambda_code_signing_config_arn": signing.config.arn if signing else None,
        "sns_topic_arn": alerting.topic.arn,
        "alarm_names": [alarm.name for alarm in [*alerting.alarms, *analyzer.alarms]],
        "alert_ledger_table_name": alerting.ledger.name,
        "dashboard_url": dashboard_url,
        "alert_email": pulumi.Output.secret(cfg.alert_email),
    }
