"""Drift a rollout must undo itself: security-group rules added outside the program.

Pulumi (and the emulated engine) track the rule resources they declared; a rule added by hand
to a group is invisible to an update, and ``pulumi refresh`` does not see it either, because
no resource of the stack owns it. After every rollout, each peering group keeps exactly its
declared rule resources and each default group none (the program declares them closed).
One function for both rollouts: the emulated engine and the Automation API runner.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
RULE_TYPES = ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
              "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")


def revoke_undeclared(ec2: Any, group_id: str, keep: Iterable[str] = (), *, ingress: bool = True) -> int:
    """Remove every rule of ``group_id`` whose ID is not in ``keep`` (egress only unless
    ``ingress``); returns how many were removed."""
    kept = frozenset(keep)
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]
    rules = [r for r in rules if r["SecurityGroupRuleId"] not in kept]
    egress_ids = [r["SecurityGroupRuleId"] for r in rules if r["IsEgress"]]
    ingress_ids = [r["SecurityGroupRuleId"] for r in rules if not r["IsEgress"]] if ingress else []
    if egress_ids:
        ec2.revoke_security_group_egress(GroupId=group_id, SecurityGroupRuleIds=egress_ids)
    if ingress_ids:
        ec2.revoke_security_group_ingress(GroupId=group_id, SecurityGroupRuleIds=ingress_ids)
    return len(egress_ids) + len(ingress_ids)


def declared_groups(resources: Iterable[Mapping[str, Any]]) -> dict[str, frozenset[str]]:
    """Group ID -> the rule IDs declared in it, from a stack's resources (each with ``type``,
    ``id`` and ``outputs``, as ``pulumi stack export`` lists them); default groups keep none."""
    resources = list(resources)
    groups = {r["id"]: set() for r in resources if r.get("type") in (SECURITY_GROUP, DEFAULT_SECURITY_GROUP) and r.get("id")}
    for rule in resources:
        if rule.get("type") in RULE_TYPES:
            group = (rule.get("outputs") or {}).get("securityGroupId")
            if group in groups and rule.get("id"):
                groups[group].add(rule["id"])
    return {group: frozenset(rules) for group, rules in groups.items()}


def repair_groups(ec2: Any, groups: Mapping[str, Iterable[str]]) -> int:
    """Each group keeps exactly its declared rules; returns how many undeclared ones went."""
    return sum(revoke_undeclared(ec2, group_id, keep) for group_id, keep in groups.items())
