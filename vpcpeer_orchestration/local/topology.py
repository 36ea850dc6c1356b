"""What the flow-log emulator reads from the local AWS: the flow-logged VPCs and their rules.

A thin adapter over an EC2 client (injected; nothing is imported from boto3): it turns
flow logs, VPCs, subnets and security-group rules into the traffic model's ``VpcSide``s.
Rules are read at call time, so a rule changed by hand shows in the next hours written.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from lambda_pkg.constants import DEFAULT_ALLOWED_PORTS
from vpcpeer_orchestration.local.traffic_model import Rule, VpcSide, hosts_in_subnet

# Tags the stack puts on its VPCs and subnets (infra/components/network.py).
LABEL_TAG = "VPC"
SUBNET_TYPE_TAG = "Type"
PUBLIC_SUBNET = "Public"
# The group every VPC gets; workloads carry the stack's own groups instead.
DEFAULT_GROUP_NAME = "default"


def _tags(resource: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def _log_group(flow_log: Mapping[str, Any]) -> str:
    """The flow log's log group name, from the name or else from the destination ARN."""
    return flow_log.get("LogGroupName") or flow_log.get("LogDestination", "").split(":log-group:")[-1]


def read_topology(ec2: Any, service_ports: Mapping[str, tuple[int, ...]] | None = None,
                  vpc_ids: Iterable[str] | None = None) -> list[VpcSide]:
    """The VPCs in the emulator, with hosts and the rules of their peering groups, by label.

    ``vpc_ids`` names the VPCs (a stack's); without it, every flow-logged VPC. A VPC whose
    flow log is gone keeps its hosts (its peer still talks to them) but has no log group,
    so nothing is written for it. ``service_ports`` maps a VPC label to the ports its
    workloads serve (default: the reference's allowed ports); a VPC without the ``VPC`` tag
    is labelled by its id.
    """
    ports = service_ports or DEFAULT_ALLOWED_PORTS
    groups = {f["ResourceId"]: _log_group(f) for f in ec2.describe_flow_logs()["FlowLogs"]
              if f.get("FlowLogStatus", "ACTIVE") == "ACTIVE"}
    sides = []
    for vpc_id in sorted(vpc_ids if vpc_ids is not None else groups):
        group = groups.get(vpc_id) or None
        vpcs = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
        if not vpcs:
            continue
        vpc = vpcs[0]
        label = _tags(vpc).get(LABEL_TAG, vpc_id)
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
        private: list[str] = []
        public: list[str] = []
        for subnet in sorted(subnets, key=lambda s: s["CidrBlock"]):
            is_public = _tags(subnet).get(SUBNET_TYPE_TAG) == PUBLIC_SUBNET
            (public if is_public else private).append(subnet["CidrBlock"])
        sides.append(VpcSide(
            label=label, vpc_id=vpc_id, cidr=ipaddress.ip_network(vpc["CidrBlock"]), log_group=group,
            private_hosts=[h for cidr in private for h in hosts_in_subnet(cidr, label)],
            public_hosts=[h for cidr in public for h in hosts_in_subnet(cidr, label)],
            service_ports=tuple(ports.get(label, ())),
            rules=read_rules(ec2, vpc_id),
        ))
    return sorted(sides, key=lambda s: s.label)


def read_rules(ec2: Any, vpc_id: str) -> list[Rule]:
    """The IPv4 rules of the VPC's non-default security groups (the ones workloads carry)."""
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]
    ids = [g["GroupId"] for g in groups if g["GroupName"] != DEFAULT_GROUP_NAME]
    if not ids:
        return []
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": ids}])["SecurityGroupRules"]
    return [
        Rule(r["IsEgress"], str(r.get("IpProtocol", "-1")), int(r.get("FromPort", -1)), int(r.get("ToPort", -1)),
             ipaddress.ip_network(r["CidrIpv4"]))
        for r in rules if r.get("CidrIpv4")
    ]
