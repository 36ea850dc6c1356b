"""Security groups that allow only the declared ports across the peering."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass
class PeeringSecurityGroupsArgs:
    """Per-direction ports: ``*_allowed_ports`` are the TCP ports allowed *into* that VPC."""

    vpc_a_id: pulumi.Input[str]
    vpc_b_id: pulumi.Input[str]
    vpc_a_cidr: str
    vpc_b_cidr: str
    vpc_a_allowed_ports: tuple[int, ...]
    vpc_b_allowed_ports: tuple[int, ...]
    tags: dict[str, str]


class PeeringSecurityGroups(pulumi.ComponentResource):
    """One group per VPC with a described rule per port and direction.

    Ingress into VPC-A comes from VPC-B's CIDR on VPC-A's ports; egress from VPC-A goes to
    VPC-B's CIDR on the ports VPC-B accepts (and symmetrically), so each side opens exactly
    what the other will let in. Security groups are stateful: replies need no rule.
    """

    def __init__(self, name: str, args: PeeringSecurityGroupsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vpcpeer:security:PeeringSecurityGroups", name, None, opts)
        sides = {
            "VPC-A": (args.vpc_a_id, args.vpc_a_cidr, args.vpc_a_allowed_ports, "VPC-B", args.vpc_b_cidr, args.vpc_b_allowed_ports),
            "VPC-B": (args.vpc_b_id, args.vpc_b_cidr, args.vpc_b_allowed_ports, "VPC-A", args.vpc_a_cidr, args.vpc_a_allowed_ports),
        }
        self.groups: dict[str, aws.ec2.SecurityGroup] = {}
        for label, (vpc_id, _cidr, inbound, peer, peer_cidr, outbound) in sides.items():
            slug = label.lower()
            group = aws.ec2.SecurityGroup(
                f"{slug}-peering-sg",
                vpc_id=vpc_id,
                # Stable text: a group's description cannot change without replacing the group,
                # so the ports live in the rules' descriptions, not here.
                description=f"{label}: traffic across the peering with {peer}; one described rule per allowed port",
                revoke_rules_on_delete=True,
                tags={**args.tags, "Name": f"{slug}-peering-sg", "VPC": label},
                opts=pulumi.ResourceOptions(parent=self),
            )
            rule_opts = pulumi.ResourceOptions(parent=group)
            for port in inbound:
                aws.vpc.SecurityGroupIngressRule(
                    f"{slug}-in-{port}-from-{peer.lower()}",
                    security_group_id=group.id,
                    cidr_ipv4=peer_cidr,
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    description=f"TCP {port} into {label} from {peer} ({peer_cidr}) over the peering",
                    tags={**args.tags, "Name": f"{slug}-in-{port}"},
                    opts=rule_opts,
                )
            for port in outbound:
                aws.vpc.SecurityGroupEgressRule(
                    f"{slug}-out-{port}-to-{peer.lower()}",
                    security_group_id=group.id,
                    cidr_ipv4=peer_cidr,
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    description=f"TCP {port} from {label} to {peer} ({peer_cidr}), allowed into {peer}",
                    tags={**args.tags, "Name": f"{slug}-out-{port}"},
                    opts=rule_opts,
                )
            self.groups[label] = group
        self.register_outputs({label: g.id for label, g in self.groups.items()})
