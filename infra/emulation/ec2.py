"""EC2 and VPC types: VPCs, subnets, gateways, routes, peering, security groups, flow logs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from infra.emulation._aws import as_int, found, ignoring_missing, short_hash, tag_list, tag_spec
from infra.emulation.errors import EmulatedRolloutError
from infra.drift import RULE_TYPES, revoke_undeclared
from infra.emulation.registry import Created, Declared, ResourceType, register

if TYPE_CHECKING:
    from infra.emulation.engine import Context


def _default_group_id(ctx: Context, vpc_id: str) -> str:
    groups = ctx.ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}])
    return groups["SecurityGroups"][0]["GroupId"]


@register
class Vpc(ResourceType):
    token = "aws:ec2/vpc:Vpc"
    id_prefix = "vpc-"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        vpc_id = ctx.ec2.create_vpc(CidrBlock=i["cidrBlock"], TagSpecifications=tag_spec("vpc", ctx, i))["Vpc"]["VpcId"]
        ctx.ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": bool(i.get("enableDnsSupport", True))})
        ctx.ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": bool(i.get("enableDnsHostnames", False))})
        tables = ctx.ec2.describe_route_tables(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}])
        return vpc_id, {
            "arn": f"arn:aws:ec2:{ctx.region}:{ctx.account_id}:vpc/{vpc_id}",
            "defaultSecurityGroupId": _default_group_id(ctx, vpc_id),
            "mainRouteTableId": tables["RouteTables"][0]["RouteTableId"] if tables["RouteTables"] else None,
        }

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return found(lambda: ctx.ec2.describe_vpcs(VpcIds=[resource_id])["Vpcs"])


@register
class Subnet(ResourceType):
    token = "aws:ec2/subnet:Subnet"
    id_prefix = "subnet-"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        subnet = ctx.ec2.create_subnet(VpcId=i["vpcId"], CidrBlock=i["cidrBlock"], AvailabilityZone=i["availabilityZone"],
                                       TagSpecifications=tag_spec("subnet", ctx, i))["Subnet"]
        return subnet["SubnetId"], {"arn": subnet.get("SubnetArn")}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return found(lambda: ctx.ec2.describe_subnets(SubnetIds=[resource_id])["Subnets"])


@register
class InternetGateway(ResourceType):
    token = "aws:ec2/internetGateway:InternetGateway"
    id_prefix = "igw-"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        igw_id = ctx.ec2.create_internet_gateway(
            TagSpecifications=tag_spec("internet-gateway", ctx, i))["InternetGateway"]["InternetGatewayId"]
        ctx.ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=i["vpcId"])
        return igw_id, {}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return found(lambda: ctx.ec2.describe_internet_gateways(InternetGatewayIds=[resource_id])["InternetGateways"])


@register
class Eip(ResourceType):
    token = "aws:ec2/eip:Eip"
    id_prefix = "eipalloc-"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        eip = ctx.ec2.allocate_address(Domain="vpc", TagSpecifications=tag_spec("elastic-ip", ctx, i))
        return eip["AllocationId"], {"allocationId": eip["AllocationId"], "publicIp": eip["PublicIp"]}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return found(lambda: ctx.ec2.describe_addresses(AllocationIds=[resource_id])["Addresses"])


@register
class NatGateway(ResourceType):
    token = "aws:ec2/natGateway:NatGateway"
    id_prefix = "nat-"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        nat = ctx.ec2.create_nat_gateway(SubnetId=i["subnetId"], AllocationId=i["allocationId"],
                                         TagSpecifications=tag_spec("natgateway", ctx, i))["NatGateway"]
        return nat["NatGatewayId"], {}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return found(lambda: ctx.ec2.describe_nat_gateways(NatGatewayIds=[resource_id])["NatGateways"])


@register
class RouteTable(ResourceType):
    token = "aws:ec2/routeTable:RouteTable"
    id_prefix = "rtb-"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        table = ctx.ec2.create_route_table(VpcId=i["vpcId"], TagSpecifications=tag_spec("route-table", ctx, i))["RouteTable"]
        return table["RouteTableId"], {}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return found(lambda: ctx.ec2.describe_route_tables(RouteTableIds=[resource_id])["RouteTables"])


_ROUTE_TARGETS = (("gatewayId", "GatewayId"), ("natGatewayId", "NatGatewayId"),
                  ("vpcPeeringConnectionId", "VpcPeeringConnectionId"))


@register
class Route(ResourceType):
    """A route lives in its table (checked there); its ID is derived like the provider's."""

    token = "aws:ec2/route:Route"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        target = {api: i[key] for key, api in _ROUTE_TARGETS if i.get(key)}
        ctx.ec2.create_route(RouteTableId=i["routeTableId"], DestinationCidrBlock=i["destinationCidrBlock"], **target)
        return f"r-{i['routeTableId']}{short_hash(i['destinationCidrBlock'])}", {}

    def delete(self, ctx: Context, resource_id: str, inputs: dict[str, Any]) -> None:
        ignoring_missing(lambda: ctx.ec2.delete_route(RouteTableId=inputs["routeTableId"],
                                                      DestinationCidrBlock=inputs["destinationCidrBlock"]))


@register
class RouteTableAssociation(ResourceType):
    token = "aws:ec2/routeTableAssociation:RouteTableAssociation"
    id_prefix = "rtbassoc-"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        return ctx.ec2.associate_route_table(SubnetId=i["subnetId"], RouteTableId=i["routeTableId"])["AssociationId"], {}


@register
class VpcPeeringConnection(ResourceType):
    token = "aws:ec2/vpcPeeringConnection:VpcPeeringConnection"
    id_prefix = "pcx-"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        pcx_id = ctx.ec2.create_vpc_peering_connection(
            VpcId=i["vpcId"], PeerVpcId=i["peerVpcId"], TagSpecifications=tag_spec("vpc-peering-connection", ctx, i),
        )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
        if i.get("autoAccept"):
            ctx.ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx_id)
        options = {}
        for side, api in (("requester", "RequesterPeeringConnectionOptions"), ("accepter", "AccepterPeeringConnectionOptions")):
            if (i.get(side) or {}).get("allowRemoteVpcDnsResolution"):
                options[api] = {"AllowDnsResolutionFromRemoteVpc": True}
        if options:
            ctx.ec2.modify_vpc_peering_connection_options(VpcPeeringConnectionId=pcx_id, **options)
        return pcx_id, {"acceptStatus": "active" if i.get("autoAccept") else "pending-acceptance"}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return found(lambda: ctx.ec2.describe_vpc_peering_connections(
            VpcPeeringConnectionIds=[resource_id])["VpcPeeringConnections"])


def _group_exists(ctx: Context, group_id: str) -> bool:
    return found(lambda: ctx.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"])


@register
class SecurityGroup(ResourceType):
    token = "aws:ec2/securityGroup:SecurityGroup"
    id_prefix = "sg-"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        group_name = i.get("name") or f"{name}-{short_hash(name, i['vpcId'])}"
        group_id = ctx.ec2.create_security_group(
            GroupName=group_name, Description=i.get("description") or "Managed by Pulumi", VpcId=i["vpcId"],
            TagSpecifications=tag_spec("security-group", ctx, i),
        )["GroupId"]
        revoke_undeclared(ctx.ec2, group_id, ingress=False)  # like Pulumi/Terraform: drop AWS's default allow-all egress
        return group_id, {"arn": f"arn:aws:ec2:{ctx.region}:{ctx.account_id}:security-group/{group_id}", "name": group_name}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return _group_exists(ctx, resource_id)

    def repair(self, ctx: Context, resource_id: str, declared: Declared) -> int:
        """The group holds exactly its declared rule resources: one added by hand is removed."""
        keep = frozenset(rule_id for token in RULE_TYPES for rule_id, inputs in declared.get(token, ())
                         if inputs.get("securityGroupId") == resource_id)
        return revoke_undeclared(ctx.ec2, resource_id, keep)


@register
class DefaultSecurityGroup(ResourceType):
    """Adopts the VPC's default group and strips its rules (only the no-rules form is supported)."""

    token = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
    id_prefix = "sg-"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        if i.get("ingress") or i.get("egress"):
            raise EmulatedRolloutError(f"{name}: the emulated rollout manages default security groups only with no rules")
        group_id = _default_group_id(ctx, i["vpcId"])
        revoke_undeclared(ctx.ec2, group_id)
        if ctx.tags(i):
            ctx.ec2.create_tags(Resources=[group_id], Tags=tag_list(ctx.tags(i)))
        return group_id, {"name": "default"}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return _group_exists(ctx, resource_id)

    def repair(self, ctx: Context, resource_id: str, declared: Declared) -> int:
        """Declared with no rules: any rule found in it again is removed."""
        return revoke_undeclared(ctx.ec2, resource_id)


class _SecurityGroupRule(ResourceType):
    """One ingress or egress rule, as the ``aws.vpc`` rule resources declare it."""

    id_prefix = "sgr-"
    ingress: bool

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        permission = {
            "IpProtocol": i["ipProtocol"], "FromPort": as_int(i.get("fromPort")), "ToPort": as_int(i.get("toPort")),
            "IpRanges": [{"CidrIp": i["cidrIpv4"], **({"Description": i["description"]} if i.get("description") else {})}],
        }
        authorize = ctx.ec2.authorize_security_group_ingress if self.ingress else ctx.ec2.authorize_security_group_egress
        rule_id = authorize(GroupId=i["securityGroupId"], IpPermissions=[permission])["SecurityGroupRules"][0]["SecurityGroupRuleId"]
        return rule_id, {"securityGroupRuleId": rule_id}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return found(lambda: ctx.ec2.describe_security_group_rules(SecurityGroupRuleIds=[resource_id])["SecurityGroupRules"])

    def delete(self, ctx: Context, resource_id: str, inputs: dict[str, Any]) -> None:
        revoke = ctx.ec2.revoke_security_group_ingress if self.ingress else ctx.ec2.revoke_security_group_egress
        ignoring_missing(lambda: revoke(GroupId=inputs["securityGroupId"], SecurityGroupRuleIds=[resource_id]))


@register
class SecurityGroupIngressRule(_SecurityGroupRule):
    token = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
    ingress = True


@register
class SecurityGroupEgressRule(_SecurityGroupRule):
    token = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
    ingress = False


@register
class FlowLog(ResourceType):
    token = "aws:ec2/flowLog:FlowLog"
    id_prefix = "fl-"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        destination_type = i.get("logDestinationType", "cloud-watch-logs")
        # moto judges delivery by the group *name* (a destination ARN alone reads as a missing
        # group, "Access error"); AWS resolves the ARN itself. Both are given, as AWS reports them.
        group = ({"LogGroupName": i["logDestination"].split(":log-group:", 1)[1].removesuffix(":*")}
                 if destination_type == "cloud-watch-logs" and ":log-group:" in i["logDestination"] else {})
        response = ctx.ec2.create_flow_logs(
            ResourceIds=[i["vpcId"]], ResourceType="VPC", TrafficType=i["trafficType"],
            LogDestinationType=destination_type, LogDestination=i["logDestination"], **group,
            DeliverLogsPermissionArn=i["iamRoleArn"], MaxAggregationInterval=as_int(i.get("maxAggregationInterval")) or 600,
            TagSpecifications=tag_spec("vpc-flow-log", ctx, i),
        )
        if response.get("Unsuccessful"):
            raise EmulatedRolloutError(f"{name}: CreateFlowLogs failed: {response['Unsuccessful']}")
        flow_id = response["FlowLogIds"][0]
        return flow_id, {"arn": f"arn:aws:ec2:{ctx.region}:{ctx.account_id}:vpc-flow-log/{flow_id}"}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return found(lambda: ctx.ec2.describe_flow_logs(FlowLogIds=[resource_id])["FlowLogs"])
