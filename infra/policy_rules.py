"""The stack's security properties as code: validators over the resources a plan declares.

Pure functions of ``(type token, name, inputs)`` triples, so the same rules run in pytest over
the offline preview (``vpcpeer infra preview``) and, through ``infra/policy_pack``, as a
Pulumi policy pack on ``pulumi up --policy-pack infra/policy_pack`` where the CLI exists.
Inputs are Pulumi's property names (camelCase); a policy document may be a JSON string.

The plan describes itself: the ports each VPC allows are the ones the analyzer is told
(``VPC_A_ALLOWED_PORTS`` / ``VPC_B_ALLOWED_PORTS`` in its environment), the CIDRs are the
VPCs', and the secret is whatever the plan marks secret; no outside configuration is needed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from infra.policies import NO_RESOURCE_ACTIONS
from lambda_pkg.constants import ENV_VPC_A_ALLOWED_PORTS, ENV_VPC_A_CIDR, ENV_VPC_B_ALLOWED_PORTS, ENV_VPC_B_CIDR

# Audit use keeps flow logs and function logs a year (CKV_AWS_338).
MIN_RETENTION_DAYS = 365
WORLD = ("0.0.0.0/0", "::/0")
SECRET_MARK = "[secret]"
_CUSTOMER_KEY = re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]+")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Resource:
    """One declared resource: its type token, logical name and inputs."""

    type: str
    name: str
    inputs: Mapping[str, Any]

    @property
    def kind(self) -> str:
        return self.type.rsplit(":", 1)[-1]


def _json(value: Any) -> Any:
    while isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _of(resources: Iterable[Resource], kind: str) -> list[Resource]:
    return [r for r in resources if r.kind == kind]


def _statements(document: Any) -> list[dict[str, Any]]:
    statements = (_json(document) or {}).get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _environment(resources: Iterable[Resource]) -> dict[str, str]:
    variables: dict[str, str] = {}
    for function in _of(resources, "Function"):
        variables.update((_json(function.inputs.get("environment")) or {}).get("variables") or {})
    return variables


# -- the rules: each returns the violations it finds ----------------------------------------


def flow_logs_capture_all(resources: list[Resource]) -> list[str]:
    """Every VPC has a flow log of ALL traffic (accepted and rejected)."""
    vpcs = _of(resources, "Vpc")
    logged = {log.inputs.get("vpcId") for log in _of(resources, "FlowLog") if log.inputs.get("trafficType") == "ALL"}
    missing = len(vpcs) - len(logged)
    return [f"{missing} of {len(vpcs)} VPC(s) have no flow log of ALL traffic"] if missing > 0 else []


def default_groups_closed(resources: list[Resource]) -> list[str]:
    """Every VPC's default security group is managed and has no rule."""
    groups = _of(resources, "DefaultSecurityGroup")
    found = [f"{g.name}: the default group allows traffic" for g in groups
             if g.inputs.get("ingress") or g.inputs.get("egress")]
    if len(groups) < len(_of(resources, "Vpc")):
        found.append(f"{len(_of(resources, 'Vpc')) - len(groups)} VPC(s) leave their default group unmanaged")
    return found


def peering_rules_exact(resources: list[Resource]) -> list[str]:
    """Rules only from or to the peer's CIDR, TCP, one declared port each, described."""
    env = _environment(resources)
    cidrs = {env.get(ENV_VPC_A_CIDR): "VPC-A", env.get(ENV_VPC_B_CIDR): "VPC-B"}
    ports = {"VPC-A": env.get(ENV_VPC_A_ALLOWED_PORTS, ""), "VPC-B": env.get(ENV_VPC_B_ALLOWED_PORTS, "")}
    allowed = {label: {int(p) for p in text.split(",") if p.strip().isdigit()} for label, text in ports.items()}
    other = {"VPC-A": "VPC-B", "VPC-B": "VPC-A"}
    found = []
    for rule in _of(resources, "SecurityGroupIngressRule") + _of(resources, "SecurityGroupEgressRule"):
        i = rule.inputs
        peer = cidrs.get(i.get("cidrIpv4"))
        if peer is None or i.get("cidrIpv6"):
            found.append(f"{rule.name}: {i.get('cidrIpv4') or i.get('cidrIpv6')} is neither VPC's CIDR")
            continue
        # Ingress from the peer enters the other VPC; egress to the peer enters the peer.
        entered = other[peer] if rule.kind == "SecurityGroupIngressRule" else peer
        low, high = i.get("fromPort"), i.get("toPort")
        if i.get("ipProtocol") != "tcp":
            found.append(f"{rule.name}: protocol {i.get('ipProtocol')!r}, not tcp")
        if low != high:
            found.append(f"{rule.name}: a port range {low}-{high}, not one port")
        elif low is None or int(low) not in allowed[entered]:
            port = low if low is None else int(low)  # mock inputs arrive as floats (443.0)
            found.append(f"{rule.name}: port {port} is not among the ports {entered} allows {sorted(allowed[entered])}")
        if not str(i.get("description") or "").strip():
            found.append(f"{rule.name}: no description")
    return found


def no_world_ingress(resources: list[Resource]) -> list[str]:
    """No ingress from 0.0.0.0/0 or ::/0, in rule resources or inline rules."""
    found = [f"{r.name}: ingress from {r.inputs.get('cidrIpv4') or r.inputs.get('cidrIpv6')}"
             for r in _of(resources, "SecurityGroupIngressRule")
             if r.inputs.get("cidrIpv4") in WORLD or r.inputs.get("cidrIpv6") in WORLD]
    for group in _of(resources, "SecurityGroup") + _of(resources, "DefaultSecurityGroup"):
        for rule in group.inputs.get("ingress") or []:
            if set(rule.get("cidrBlocks") or []) & set(WORLD) or set(rule.get("ipv6CidrBlocks") or []) & set(WORLD):
                found.append(f"{group.name}: inline ingress from the whole internet")
    return found


def customer_managed_keys(resources: list[Resource]) -> list[str]:
    """The topic, every log group, the function's environment and the ledger table use a
    customer-managed KMS key (not the AWS-owned default)."""
    checks = [("Topic", lambda i: i.get("kmsMasterKeyId")), ("LogGroup", lambda i: i.get("kmsKeyId")),
              ("Function", lambda i: i.get("kmsKeyArn")),
              ("Table", lambda i: (i.get("serverSideEncryption") or {}).get("kmsKeyArn"))]
    found = []
    for kind, key_of in checks:
        for resource in _of(resources, kind):
            key = key_of(resource.inputs)
            if not (isinstance(key, str) and _CUSTOMER_KEY.fullmatch(key)):
                found.append(f"{resource.name}: not encrypted with a customer-managed KMS key ({key!r})")
    return found


def log_retention(resources: list[Resource]) -> list[str]:
    """Log groups keep at least a year, and not forever (retention is set)."""
    return [f"{g.name}: keeps {g.inputs.get('retentionInDays')!r} days, under {MIN_RETENTION_DAYS}"
            for g in _of(resources, "LogGroup")
            if not isinstance(g.inputs.get("retentionInDays"), (int, float))
            or g.inputs["retentionInDays"] < MIN_RETENTION_DAYS]


def service_principals_conditioned(resources: list[Resource]) -> list[str]:
    """Every Allow to an AWS service principal (trust, key and topic policies) is bound by a
    condition to this account or a resource of it: no confused deputy."""
    documents = [(r, "assumeRolePolicy") for r in _of(resources, "Role")] + [
        (r, "policy") for r in _of(resources, "Key") + _of(resources, "TopicPolicy")]
    found = []
    for resource, key in documents:
        for statement in _statements(resource.inputs.get(key)):
            principal = statement.get("Principal")
            if statement.get("Effect") == "Allow" and isinstance(principal, dict) and "Service" in principal \
                    and not statement.get("Condition"):
                found.append(f"{resource.name}: {statement.get('Sid') or 'a statement'} lets {principal['Service']} in "
                             "without a source condition")
    return found


def no_star_resources(resources: list[Resource]) -> list[str]:
    """Identity policies grant '*' only for actions that take no resource."""
    found = []
    for policy in _of(resources, "RolePolicy") + _of(resources, "Policy"):
        for statement in _statements(policy.inputs.get("policy")):
            if statement.get("Effect") != "Allow" or "*" not in _listed(statement.get("Resource")):
                continue
            extra = sorted(set(_listed(statement.get("Action"))) - NO_RESOURCE_ACTIONS)
            if extra:
                found.append(f"{policy.name}: {', '.join(extra)} granted on '*' (each takes a resource)")
    return found


def lambda_not_public(resources: list[Resource]) -> list[str]:
    """No invoke permission for anyone ('*') or for a service without a source; no public URL."""
    found = []
    for permission in _of(resources, "Permission"):
        i = permission.inputs
        if i.get("principal") in ("*", None):
            found.append(f"{permission.name}: anyone may invoke the function")
        elif str(i.get("principal", "")).endswith(".amazonaws.com") and not (i.get("sourceArn") or i.get("sourceAccount")):
            found.append(f"{permission.name}: {i['principal']} may invoke it from any account")
    found += [f"{url.name}: a function URL without IAM auth" for url in _of(resources, "FunctionUrl")
              if url.inputs.get("authorizationType") != "AWS_IAM"]
    return found


def no_secrets_in_plain(resources: list[Resource]) -> list[str]:
    """The alert address (a secret) is nowhere in plain text: not in the function's environment,
    not in any input but the subscription's, which the plan must mark secret."""
    found = [f"{name}: the function's environment holds an email address" for name, value in _environment(resources).items()
             if _EMAIL.search(str(value))]
    for subscription in _of(resources, "TopicSubscription"):
        if subscription.inputs.get("protocol") == "email" and subscription.inputs.get("endpoint") != SECRET_MARK:
            found.append(f"{subscription.name}: the alert address is not marked secret")
    return found


def lambda_code_signed(resources: list[Resource]) -> list[str]:
    """Every function deploys only signed code (CKV_AWS_272): it names a code-signing
    configuration, every configuration enforces and allows a signing profile, and the code is the
    signing job's signed copy in S3, not a zip uploaded directly."""
    configs = _of(resources, "CodeSigningConfig")
    found = []
    for function in _of(resources, "Function"):
        i = function.inputs
        if not i.get("codeSigningConfigArn"):
            found.append(f"{function.name}: no code-signing configuration")
        if i.get("code") or not (i.get("s3Bucket") and i.get("s3Key")):
            found.append(f"{function.name}: deploys a zip directly, not the signed copy in S3")
    for config in configs:
        policies = config.inputs.get("policies") or {}
        if policies.get("untrustedArtifactOnDeployment") != "Enforce":
            found.append(f"{config.name}: unsigned code only warns (untrustedArtifactOnDeployment is not Enforce)")
        if not (config.inputs.get("allowedPublishers") or {}).get("signingProfileVersionArns"):
            found.append(f"{config.name}: allows no signing profile")
    if _of(resources, "Function") and not configs:
        found.append("the plan declares no code-signing configuration")
    return found


RULES: dict[str, Callable[[list[Resource]], list[str]]] = {
    rule.__name__: rule for rule in (
        flow_logs_capture_all, default_groups_closed, peering_rules_exact, no_world_ingress, customer_managed_keys,
        log_retention, service_principals_conditioned, no_star_resources, lambda_not_public, no_secrets_in_plain,
        lambda_code_signed)
}


def violations(resources: Iterable[Resource | Any]) -> dict[str, list[str]]:
    """Every rule over the plan: rule name -> what it found (empty lists left out)."""
    plan = [r if isinstance(r, Resource) else Resource(r.type, r.name, dict(r.inputs)) for r in resources]
    found = {name: rule(plan) for name, rule in RULES.items()}
    return {name: items for name, items in found.items() if items}
