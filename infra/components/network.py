"""Two VPCs with public/private subnets, NAT, and the peering between them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config import SubnetPlan, subnet_plan


@dataclass
class VpcNetworkArgs:
    """Inputs of one VPC: its label ("VPC-A"), CIDR, the two AZs and NAT layout."""

    label: str
    cidr: str
    availability_zones: pulumi.Input[Sequence[str]]
    single_nat_gateway: bool
    tags: dict[str, str]


class VpcNetwork(pulumi.ComponentResource):
    """One VPC: 2 public + 2 private /24 subnets, IGW, NAT per AZ, route tables.

    The default security group is taken over with no rules, so nothing launched without
    an explicit group can talk to anything.
    """

    def __init__(self, name: str, args: VpcNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vpcpeer:network:VpcNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        plan: SubnetPlan = subnet_plan(args.cidr)
        azs = pulumi.Output.from_input(args.availability_zones)

        def tags(suffix: str, **extra: str) -> dict[str, str]:
            return {**args.tags, "Name": f"{name}-{suffix}", "VPC": args.label, **extra}

        self.vpc = aws.ec2.Vpc(
            name,
            cidr_block=args.cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=tags("vpc"),
            opts=child,
        )
        vpc_child = pulumi.ResourceOptions(parent=self.vpc)

        self.default_security_group = aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=self.vpc.id,
            ingress=[],
            egress=[],
            tags=tags("default-sg-locked"),
            opts=vpc_child,
        )

        self.public_subnets: list[aws.ec2.Subnet] = []
        self.private_subnets: list[aws.ec2.Subnet] = []
        for kind, cidrs, bucket in (("public", plan.public, self.public_subnets), ("private", plan.private, self.private_subnets)):
            for i, cidr in enumerate(cidrs):
                bucket.append(
                    aws.ec2.Subnet(
                        f"{name}-{kind}-{i + 1}",
                        vpc_id=self.vpc.id,
                        cidr_block=cidr,
                        availability_zone=azs.apply(lambda zones, i=i: zones[i]),
                        map_public_ip_on_launch=False,
                        tags=tags(f"{kind}-{i + 1}", Type=kind.capitalize()),
                        opts=vpc_child,
                    )
                )

        self.internet_gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=self.vpc.id, tags=tags("igw"), opts=vpc_child
        )

        nat_count = 1 if args.single_nat_gateway else len(self.public_subnets)
        self.nat_gateways: list[aws.ec2.NatGateway] = []
        for i in range(nat_count):
            eip = aws.ec2.Eip(
                f"{name}-nat-eip-{i + 1}",
                domain="vpc",
                tags=tags(f"nat-eip-{i + 1}"),
                opts=pulumi.ResourceOptions(parent=self.vpc, depends_on=[self.internet_gateway]),
            )
            self.nat_gateways.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{i + 1}",
                    allocation_id=eip.id,
                    subnet_id=self.public_subnets[i].id,
                    tags=tags(f"nat-{i + 1}"),
                    opts=pulumi.ResourceOptions(parent=self.vpc, depends_on=[self.internet_gateway]),
                )
            )

        self.public_route_table = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=self.vpc.id, tags=tags("public-rt", Type="Public"), opts=vpc_child
        )
        aws.ec2.Route(
            f"{name}-public-internet",
            route_table_id=self.public_route_table.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=self.internet_gateway.id,
            opts=pulumi.ResourceOptions(parent=self.public_route_table),
        )
        for i, subnet in enumerate(self.public_subnets):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{i + 1}-rta",
                subnet_id=subnet.id,
                route_table_id=self.public_route_table.id,
                opts=pulumi.ResourceOptions(parent=self.public_route_table),
            )

        self.private_route_tables: list[aws.ec2.RouteTable] = []
        for i, subnet in enumerate(self.private_subnets):
            table = aws.ec2.RouteTable(
                f"{name}-private-rt-{i + 1}",
                vpc_id=self.vpc.id,
                tags=tags(f"private-rt-{i + 1}", Type="Private"),
                opts=vpc_child,
            )
            table_child = pulumi.ResourceOptions(parent=table)
            aws.ec2.Route(
                f"{name}-private-{i + 1}-nat",
                route_table_id=table.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=self.nat_gateways[min(i, nat_count - 1)].id,
                opts=table_child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i + 1}-rta", subnet_id=subnet.id, route_table_id=table.id, opts=table_child
            )
            self.private_route_tables.append(table)

        # Every route table (public first), keyed by logical name: each gets a peering route.
        self.route_tables: dict[str, aws.ec2.RouteTable] = {
            f"{name}-public-rt": self.public_route_table,
            **{f"{name}-private-rt-{i + 1}": t for i, t in enumerate(self.private_route_tables)},
        }
        self.register_outputs(
            {
                "vpc_id": self.vpc.id,
                "public_subnet_ids": [s.id for s in self.public_subnets],
                "private_subnet_ids": [s.id for s in self.private_subnets],
            }
        )


@dataclass
class PeeredNetworkArgs:
    """Inputs of the peered pair."""

    vpc_a_cidr: str
    vpc_b_cidr: str
    availability_zones: pulumi.Input[Sequence[str]]
    single_nat_gateway: bool
    tags: dict[str, str]


class PeeredNetwork(pulumi.ComponentResource):
    """VPC-A and VPC-B, peered with remote DNS resolution and routes in every table."""

    def __init__(self, name: str, args: PeeredNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vpcpeer:network:PeeredNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.vpc_a = VpcNetwork(
            "vpc-a",
            VpcNetworkArgs("VPC-A", args.vpc_a_cidr, args.availability_zones, args.single_nat_gateway, args.tags),
            child,
        )
        self.vpc_b = VpcNetwork(
            "vpc-b",
            VpcNetworkArgs("VPC-B", args.vpc_b_cidr, args.availability_zones, args.single_nat_gateway, args.tags),
            child,
        )
        self.peering = aws.ec2.VpcPeeringConnection(
            "vpc-a-to-vpc-b",
            vpc_id=self.vpc_a.vpc.id,
            peer_vpc_id=self.vpc_b.vpc.id,
            auto_accept=True,
            requester=aws.ec2.VpcPeeringConnectionRequesterArgs(allow_remote_vpc_dns_resolution=True),
            accepter=aws.ec2.VpcPeeringConnectionAccepterArgs(allow_remote_vpc_dns_resolution=True),
            tags={**args.tags, "Name": "vpc-a-to-vpc-b", "Side": "Requester"},
            opts=child,
        )
        for network, peer_cidr in ((self.vpc_a, args.vpc_b_cidr), (self.vpc_b, args.vpc_a_cidr)):
            for table_name, table in network.route_tables.items():
                aws.ec2.Route(
                    f"{table_name}-to-peer",
                    route_table_id=table.id,
                    destination_cidr_block=peer_cidr,
                    vpc_peering_connection_id=self.peering.id,
                    opts=pulumi.ResourceOptions(parent=table),
                )
        self.register_outputs({"peering_connection_id": self.peering.id})
