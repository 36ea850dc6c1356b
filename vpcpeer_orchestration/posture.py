"""Live posture of the stack, read through boto3 and compared with what was declared."""

from __future__ import annotations

from typing import Any

from infra.config import StackConfig
from lambda_pkg.constants import VPC_A, VPC_B, VPC_SLUGS

Finding = tuple[bool, dict[str, Any]]


# A rule as posture compares it: direction, protocol, port range and CIDR. A rule widened to
# 443-65535 or switched from tcp to udp is drift, not "the declared 443".
Rule = tuple[str, str, int, int, str]
# Protocol names AWS may report by number.
_PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "-1": "all"}


def declared_rules(cfg: StackConfig) -> dict[str, set[Rule]]:
    """Every rule per VPC label, as the security-group component declares them."""
    result = {}
    for label, peer in ((VPC_A, VPC_B), (VPC_B, VPC_A)):
        peer_cidr = cfg.cidr(peer)
        result[label] = {("in", "tcp", p, p, peer_cidr) for p in cfg.allowed_ports(label)} | {
            ("out", "tcp", p, p, peer_cidr) for p in cfg.allowed_ports(peer)}
    return result


def actual_rules(ec2: Any, group_id: str) -> set[Rule]:
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]
    return {("out" if r["IsEgress"] else "in", _PROTOCOL_NAMES.get(str(r.get("IpProtocol")), str(r.get("IpProtocol"))),
             int(r.get("FromPort", -1)), int(r.get("ToPort", -1)),
             r.get("CidrIpv4") or r.get("CidrIpv6") or r.get("ReferencedGroupInfo", {}).get("GroupId") or "?")
            for r in rules}


def flow_logs_active(ec2: Any, outputs: dict[str, Any]) -> Finding:
    vpc_ids = [outputs["vpc_a_id"], outputs["vpc_b_id"]]
    logs = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": vpc_ids}])["FlowLogs"]
    status = {vpc: [(f.get("FlowLogStatus"), f.get("TrafficType")) for f in logs if f["ResourceId"] == vpc] for vpc in vpc_ids}
    passed = all(("ACTIVE", "ALL") in entries for entries in status.values())
    return passed, {"flow_logs": {k: [list(e) for e in v] for k, v in status.items()}}


def peering_active(ec2: Any, outputs: dict[str, Any]) -> Finding:
    found = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[outputs["peering_connection_id"]])
    codes = [p["Status"]["Code"] for p in found["VpcPeeringConnections"]]
    return codes == ["active"], {"status": codes}


def rules_match(ec2: Any, outputs: dict[str, Any], cfg: StackConfig) -> Finding:
    expected = declared_rules(cfg)
    groups = {label: outputs[f"{slug}_security_group_id"] for label, slug in VPC_SLUGS.items()}
    drift = {}
    for label, group in groups.items():
        actual = actual_rules(ec2, group)
        missing, extra = expected[label] - actual, actual - expected[label]
        if missing or extra:
            drift[label] = {"missing": sorted(map(list, missing)), "unexpected": sorted(map(list, extra))}
    return not drift, {"drift": drift}


def default_groups_empty(ec2: Any, outputs: dict[str, Any]) -> Finding:
    offending = {}
    for vpc in (outputs["vpc_a_id"], outputs["vpc_b_id"]):
        groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                       {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
        for group in groups:
            rules = actual_rules(ec2, group["GroupId"])
            if rules:
                offending[group["GroupId"]] = sorted(map(list, rules))
    return not offending, {"rules_in_default_groups": offending}
