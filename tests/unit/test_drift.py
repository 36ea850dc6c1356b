"""Which rules a rollout keeps: read from a stack export as `pulumi stack export` writes it."""

from __future__ import annotations

from infra.drift import DEFAULT_SECURITY_GROUP, RULE_TYPES, SECURITY_GROUP, declared_groups


def test_each_group_keeps_its_own_declared_rules_and_default_groups_none() -> None:
    ingress, egress = RULE_TYPES
    exported = [
        {"urn": "u1", "type": SECURITY_GROUP, "id": "sg-a", "outputs": {}},
        {"urn": "u2", "type": SECURITY_GROUP, "id": "sg-b", "outputs": {}},
        {"urn": "u3", "type": DEFAULT_SECURITY_GROUP, "id": "sg-default", "outputs": {}},
        {"urn": "u4", "type": ingress, "id": "sgr-1", "outputs": {"securityGroupId": "sg-a"}},
        {"urn": "u5", "type": egress, "id": "sgr-2", "outputs": {"securityGroupId": "sg-a"}},
        {"urn": "u6", "type": ingress, "id": "sgr-3", "outputs": {"securityGroupId": "sg-b"}},
        {"urn": "u7", "type": ingress, "id": "sgr-9", "outputs": {"securityGroupId": "sg-elsewhere"}},
        {"urn": "u8", "type": "pulumi:providers:aws", "id": "p"},
    ]
    assert declared_groups(exported) == {"sg-a": {"sgr-1", "sgr-2"}, "sg-b": {"sgr-3"}, "sg-default": frozenset()}
