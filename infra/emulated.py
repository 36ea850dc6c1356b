"""Emulated rollout: the Pulumi program under mocks that create every resource in the
local AWS emulator through boto3 and hand back the real IDs and ARNs.

State (logical resource -> ID, outputs, inputs) is kept inside the emulator itself (an S3
object), so it lives and dies with the emulator and every process sees the same one. A
second rollout finds each resource still present with the same inputs and creates
nothing; a resource whose inputs changed is replaced where the type supports it; a
resource the program no longer declares is deleted. A type the emulator cannot create is
an error naming the type, never a silent skip.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi

from infra.wire import unwrap_secrets

STATE_BUCKET = "vpcpeer-emulator-state"


class EmulatedRolloutError(RuntimeError):
    """A resource could not be created in the emulator; the message names it."""


class UnsupportedResourceType(EmulatedRolloutError):
    """The emulated rollout has no way to create this Pulumi type."""


def _tag_list(tags: dict[str, str] | None) -> list[dict[str, str]]:
    return [{"Key": k, "Value": str(v)} for k, v in sorted((tags or {}).items())]


def _int(value: Any) -> int | None:
    """Pulumi mock inputs arrive as floats (443.0)."""
    return None if value is None else int(value)


def _short(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:10]


@dataclass
class Context:
    """Clients and facts shared by the resource handlers."""

    clients: Callable[[str], Any]
    region: str
    account_id: str
    default_tags: dict[str, str] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        with self._lock:
            if service not in self._cache:
                self._cache[service] = self.clients(service.replace("lambda_", "lambda"))
            return self._cache[service]

    def tags(self, inputs: dict[str, Any]) -> dict[str, str]:
        return {**self.default_tags, **(inputs.get("tags") or {})}


Created = tuple[str, dict[str, Any]]


# --- EC2 ------------------------------------------------------------------------------

def _spec(kind: str, ctx: Context, inputs: dict[str, Any]) -> list[dict[str, Any]]:
    tags = ctx.tags(inputs)
    return [{"ResourceType": kind, "Tags": _tag_list(tags)}] if tags else []


def create_vpc(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    vpc = ctx.ec2.create_vpc(CidrBlock=i["cidrBlock"], TagSpecifications=_spec("vpc", ctx, i))["Vpc"]
    vpc_id = vpc["VpcId"]
    ctx.ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": bool(i.get("enableDnsSupport", True))})
    ctx.ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": bool(i.get("enableDnsHostnames", False))})
    groups = ctx.ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}])
    tables = ctx.ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}])
    return vpc_id, {
        "arn": f"arn:aws:ec2:{ctx.region}:{ctx.account_id}:vpc/{vpc_id}",
        "defaultSecurityGroupId": groups["SecurityGroups"][0]["GroupId"],
        "mainRouteTableId": tables["RouteTables"][0]["RouteTableId"] if tables["RouteTables"] else None,
    }


def create_subnet(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    subnet = ctx.ec2.create_subnet(VpcId=i["vpcId"], CidrBlock=i["cidrBlock"], AvailabilityZone=i["availabilityZone"],
                                   TagSpecifications=_spec("subnet", ctx, i))["Subnet"]
    return subnet["SubnetId"], {"arn": subnet.get("SubnetArn")}


def create_igw(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    igw = ctx.ec2.create_internet_gateway(TagSpecifications=_spec("internet-gateway", ctx, i))["InternetGateway"]
    ctx.ec2.attach_internet_gateway(InternetGatewayId=igw["InternetGatewayId"], VpcId=i["vpcId"])
    return igw["InternetGatewayId"], {}


def create_eip(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    eip = ctx.ec2.allocate_address(Domain="vpc", TagSpecifications=_spec("elastic-ip", ctx, i))
    return eip["AllocationId"], {"allocationId": eip["AllocationId"], "publicIp": eip["PublicIp"]}


def create_nat(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    nat = ctx.ec2.create_nat_gateway(SubnetId=i["subnetId"], AllocationId=i["allocationId"],
                                     TagSpecifications=_spec("natgateway", ctx, i))["NatGateway"]
    return nat["NatGatewayId"], {}


def create_route_table(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    table = ctx.ec2.create_route_table(VpcId=i["vpcId"], TagSpecifications=_spec("route-table", ctx, i))["RouteTable"]
    return table["RouteTableId"], {}


_ROUTE_TARGETS = (("gatewayId", "GatewayId"), ("natGatewayId", "NatGatewayId"), ("vpcPeeringConnectionId", "VpcPeeringConnectionId"))


def create_route(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    target = {api: i[key] for key, api in _ROUTE_TARGETS if i.get(key)}
    ctx.ec2.create_route(RouteTableId=i["routeTableId"], DestinationCidrBlock=i["destinationCidrBlock"], **target)
    return f"r-{i['routeTableId']}{_short(i['destinationCidrBlock'])}", {}


def create_rta(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    assoc = ctx.ec2.associate_route_table(SubnetId=i["subnetId"], RouteTableId=i["routeTableId"])
    return assoc["AssociationId"], {}


def create_peering(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    pcx = ctx.ec2.create_vpc_peering_connection(VpcId=i["vpcId"], PeerVpcId=i["peerVpcId"],
                                                TagSpecifications=_spec("vpc-peering-connection", ctx, i))["VpcPeeringConnection"]
    pcx_id = pcx["VpcPeeringConnectionId"]
    if i.get("autoAccept"):
        ctx.ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx_id)
    options = {}
    for side, api in (("requester", "RequesterPeeringConnectionOptions"), ("accepter", "AccepterPeeringConnectionOptions")):
        if (i.get(side) or {}).get("allowRemoteVpcDnsResolution"):
            options[api] = {"AllowDnsResolutionFromRemoteVpc": True}
    if options:
        ctx.ec2.modify_vpc_peering_connection_options(VpcPeeringConnectionId=pcx_id, **options)
    return pcx_id, {"acceptStatus": "active" if i.get("autoAccept") else "pending-acceptance"}


def create_security_group(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    group_name = i.get("name") or f"{name}-{_short(name, i['vpcId'])}"
    group_id = ctx.ec2.create_security_group(GroupName=group_name, Description=i.get("description") or "Managed by Pulumi",
                                             VpcId=i["vpcId"], TagSpecifications=_spec("security-group", ctx, i))["GroupId"]
    _revoke_all(ctx, group_id, ingress=False)  # like Pulumi/Terraform: drop AWS's default allow-all egress
    return group_id, {"arn": f"arn:aws:ec2:{ctx.region}:{ctx.account_id}:security-group/{group_id}", "name": group_name}


def _revoke_all(ctx: Context, group_id: str, *, ingress: bool = True) -> None:
    rules = ctx.ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]
    egress_ids = [r["SecurityGroupRuleId"] for r in rules if r["IsEgress"]]
    ingress_ids = [r["SecurityGroupRuleId"] for r in rules if not r["IsEgress"]]
    if egress_ids:
        ctx.ec2.revoke_security_group_egress(GroupId=group_id, SecurityGroupRuleIds=egress_ids)
    if ingress and ingress_ids:
        ctx.ec2.revoke_security_group_ingress(GroupId=group_id, SecurityGroupRuleIds=ingress_ids)


def create_default_sg(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    if i.get("ingress") or i.get("egress"):
        raise EmulatedRolloutError(f"{name}: the emulated rollout manages default security groups only with no rules")
    groups = ctx.ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [i["vpcId"]]}, {"Name": "group-name", "Values": ["default"]}])
    group_id = groups["SecurityGroups"][0]["GroupId"]
    _revoke_all(ctx, group_id)
    if ctx.tags(i):
        ctx.ec2.create_tags(Resources=[group_id], Tags=_tag_list(ctx.tags(i)))
    return group_id, {"name": "default"}


def _sg_rule(direction: str) -> Callable[[Context, str, dict[str, Any]], Created]:
    def create(ctx: Context, name: str, i: dict[str, Any]) -> Created:
        permission = {
            "IpProtocol": i["ipProtocol"], "FromPort": _int(i.get("fromPort")), "ToPort": _int(i.get("toPort")),
            "IpRanges": [{"CidrIp": i["cidrIpv4"], **({"Description": i["description"]} if i.get("description") else {})}],
        }
        call = ctx.ec2.authorize_security_group_ingress if direction == "ingress" else ctx.ec2.authorize_security_group_egress
        response = call(GroupId=i["securityGroupId"], IpPermissions=[permission])
        rule_id = response["SecurityGroupRules"][0]["SecurityGroupRuleId"]
        return rule_id, {"securityGroupRuleId": rule_id}
    return create


def create_flow_log(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    response = ctx.ec2.create_flow_logs(
        ResourceIds=[i["vpcId"]], ResourceType="VPC", TrafficType=i["trafficType"],
        LogDestinationType=i.get("logDestinationType", "cloud-watch-logs"), LogDestination=i["logDestination"],
        DeliverLogsPermissionArn=i["iamRoleArn"], MaxAggregationInterval=_int(i.get("maxAggregationInterval")) or 600,
        TagSpecifications=_spec("vpc-flow-log", ctx, i),
    )
    if response.get("Unsuccessful"):
        raise EmulatedRolloutError(f"{name}: CreateFlowLogs failed: {response['Unsuccessful']}")
    flow_id = response["FlowLogIds"][0]
    return flow_id, {"arn": f"arn:aws:ec2:{ctx.region}:{ctx.account_id}:vpc-flow-log/{flow_id}"}


# --- IAM, KMS ------------------------------------------------------------------------

def create_role(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    role_name = i.get("name") or f"{name}-{_short(name)}"
    role = ctx.iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=i["assumeRolePolicy"],
                               Description=i.get("description", ""), Tags=_tag_list(ctx.tags(i)))["Role"]
    return role_name, {"arn": role["Arn"], "name": role_name, "uniqueId": role["RoleId"]}


def create_role_policy(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    policy_name = i.get("name") or f"{name}-{_short(name)}"
    ctx.iam.put_role_policy(RoleName=i["role"], PolicyName=policy_name, PolicyDocument=i["policy"])
    return f"{i['role']}:{policy_name}", {"name": policy_name}


def create_key(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    key = ctx.kms.create_key(Description=i.get("description", ""), Policy=i["policy"],
                             Tags=[{"TagKey": t["Key"], "TagValue": t["Value"]} for t in _tag_list(ctx.tags(i))])["KeyMetadata"]
    if i.get("enableKeyRotation"):
        ctx.kms.enable_key_rotation(KeyId=key["KeyId"])
    return key["KeyId"], {"arn": key["Arn"], "keyId": key["KeyId"]}


def create_alias(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    ctx.kms.create_alias(AliasName=i["name"], TargetKeyId=i["targetKeyId"])
    return i["name"], {"arn": f"arn:aws:kms:{ctx.region}:{ctx.account_id}:{i['name']}"}


# --- Logs, CloudWatch, SNS, SQS, Lambda, EventBridge -----------------------------------

def create_log_group(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    group = i["name"]
    extra = {"kmsKeyId": i["kmsKeyId"]} if i.get("kmsKeyId") else {}
    ctx.logs.create_log_group(logGroupName=group, tags=ctx.tags(i), **extra)
    if i.get("retentionInDays"):
        ctx.logs.put_retention_policy(logGroupName=group, retentionInDays=_int(i["retentionInDays"]))
    return group, {"arn": f"arn:aws:logs:{ctx.region}:{ctx.account_id}:log-group:{group}", "name": group}


def create_metric_filter(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    t = i["metricTransformation"]
    transformation = {"metricName": t["name"], "metricNamespace": t["namespace"], "metricValue": t["value"]}
    if t.get("defaultValue") is not None:
        transformation["defaultValue"] = float(t["defaultValue"])
    if t.get("unit"):
        transformation["unit"] = t["unit"]
    ctx.logs.put_metric_filter(logGroupName=i["logGroupName"], filterName=i["name"], filterPattern=i["pattern"],
                               metricTransformations=[transformation])
    return i["name"], {}


def create_alarm(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    alarm = i.get("name") or f"{name}-{_short(name)}"
    args: dict[str, Any] = {
        "AlarmName": alarm, "AlarmDescription": i.get("alarmDescription", ""), "Namespace": i["namespace"],
        "MetricName": i["metricName"], "Statistic": i["statistic"], "ComparisonOperator": i["comparisonOperator"],
        "Threshold": float(i["threshold"]), "Period": _int(i["period"]), "EvaluationPeriods": _int(i["evaluationPeriods"]),
        "TreatMissingData": i.get("treatMissingData", "missing"), "AlarmActions": i.get("alarmActions") or [],
        "OKActions": i.get("okActions") or [], "Tags": _tag_list(ctx.tags(i)),
    }
    if i.get("dimensions"):
        args["Dimensions"] = [{"Name": k, "Value": v} for k, v in sorted(i["dimensions"].items())]
    ctx.cloudwatch.put_metric_alarm(**args)
    return alarm, {"arn": f"arn:aws:cloudwatch:{ctx.region}:{ctx.account_id}:alarm:{alarm}", "name": alarm}


def create_dashboard(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    ctx.cloudwatch.put_dashboard(DashboardName=i["dashboardName"], DashboardBody=i["dashboardBody"])
    return i["dashboardName"], {"dashboardArn": f"arn:aws:cloudwatch::{ctx.account_id}:dashboard/{i['dashboardName']}"}


def create_topic(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    attributes = {"KmsMasterKeyId": i["kmsMasterKeyId"]} if i.get("kmsMasterKeyId") else {}
    arn = ctx.sns.create_topic(Name=i.get("name") or f"{name}-{_short(name)}", Attributes=attributes,
                               Tags=_tag_list(ctx.tags(i)))["TopicArn"]
    return arn, {"arn": arn, "name": arn.rsplit(":", 1)[1]}


def create_topic_policy(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    ctx.sns.set_topic_attributes(TopicArn=i["arn"], AttributeName="Policy", AttributeValue=i["policy"])
    return i["arn"], {}


def create_subscription(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    arn = ctx.sns.subscribe(TopicArn=i["topic"], Protocol=i["protocol"], Endpoint=i["endpoint"],
                            ReturnSubscriptionArn=True)["SubscriptionArn"]
    return arn, {"arn": arn}


def create_queue(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    attributes = {}
    if i.get("messageRetentionSeconds"):
        attributes["MessageRetentionPeriod"] = str(_int(i["messageRetentionSeconds"]))
    if i.get("sqsManagedSseEnabled"):
        attributes["SqsManagedSseEnabled"] = "true"
    queue_name = i.get("name") or f"{name}-{_short(name)}"
    url = ctx.sqs.create_queue(QueueName=queue_name, Attributes=attributes, tags=ctx.tags(i))["QueueUrl"]
    arn = ctx.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, {"arn": arn, "url": url, "name": queue_name}


def _code_bytes(name: str, code: Any) -> bytes:
    """The zip behind a FileArchive input."""
    path = getattr(code, "path", None) or (code.get("archive") if isinstance(code, dict) else None)
    if not path:
        raise EmulatedRolloutError(f"{name}: the function code must be a FileArchive")
    with open(path, "rb") as handle:
        return handle.read()


def create_function(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    zip_bytes = _code_bytes(name, i["code"])
    args: dict[str, Any] = {
        "FunctionName": i["name"], "Runtime": i["runtime"], "Role": i["role"], "Handler": i["handler"],
        "Code": {"ZipFile": zip_bytes}, "Description": i.get("description", ""),
        "Timeout": _int(i.get("timeout")) or 3, "MemorySize": _int(i.get("memorySize")) or 128,
        "Environment": {"Variables": (i.get("environment") or {}).get("variables") or {}},
        "Tags": ctx.tags(i), "Publish": False,
    }
    if i.get("deadLetterConfig"):
        args["DeadLetterConfig"] = {"TargetArn": i["deadLetterConfig"]["targetArn"]}
    if i.get("tracingConfig"):
        args["TracingConfig"] = {"Mode": i["tracingConfig"]["mode"]}
    function = ctx.lambda_.create_function(**args)
    if i.get("reservedConcurrentExecutions") is not None:
        ctx.lambda_.put_function_concurrency(FunctionName=i["name"],
                                             ReservedConcurrentExecutions=_int(i["reservedConcurrentExecutions"]))
    return i["name"], {"arn": function["FunctionArn"], "name": i["name"], "invokeArn": function["FunctionArn"]}


def update_function(ctx: Context, name: str, resource_id: str, i: dict[str, Any]) -> dict[str, Any]:
    """In-place update of code and configuration, as Pulumi does for a changed function."""
    ctx.lambda_.update_function_code(FunctionName=resource_id, ZipFile=_code_bytes(name, i["code"]))
    args: dict[str, Any] = {
        "FunctionName": resource_id, "Runtime": i["runtime"], "Role": i["role"], "Handler": i["handler"],
        "Description": i.get("description", ""), "Timeout": _int(i.get("timeout")) or 3,
        "MemorySize": _int(i.get("memorySize")) or 128,
        "Environment": {"Variables": (i.get("environment") or {}).get("variables") or {}},
    }
    function = ctx.lambda_.update_function_configuration(**args)
    if i.get("reservedConcurrentExecutions") is not None:
        ctx.lambda_.put_function_concurrency(FunctionName=resource_id,
                                             ReservedConcurrentExecutions=_int(i["reservedConcurrentExecutions"]))
    return {"arn": function["FunctionArn"], "name": resource_id, "invokeArn": function["FunctionArn"]}


UPDATE: dict[str, Callable[[Context, str, str, dict[str, Any]], dict[str, Any]]] = {
    "aws:lambda/function:Function": update_function,
}


def create_permission(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    args = {"FunctionName": i["function"], "StatementId": i["statementId"], "Action": i["action"], "Principal": i["principal"]}
    if i.get("sourceArn"):
        args["SourceArn"] = i["sourceArn"]
    if i.get("sourceAccount"):
        args["SourceAccount"] = i["sourceAccount"]
    ctx.lambda_.add_permission(**args)
    return i["statementId"], {}


def create_event_rule(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    rule = i.get("name") or f"{name}-{_short(name)}"
    arn = ctx.events.put_rule(Name=rule, ScheduleExpression=i["scheduleExpression"], State=i.get("state", "ENABLED"),
                              Description=i.get("description", ""), Tags=_tag_list(ctx.tags(i)))["RuleArn"]
    return rule, {"arn": arn, "name": rule}


def create_event_target(ctx: Context, name: str, i: dict[str, Any]) -> Created:
    target = {"Id": i["targetId"], "Arn": i["arn"]}
    if i.get("input"):
        target["Input"] = i["input"]
    response = ctx.events.put_targets(Rule=i["rule"], Targets=[target])
    if response.get("FailedEntryCount"):
        raise EmulatedRolloutError(f"{name}: PutTargets failed: {response['FailedEntries']}")
    return f"{i['rule']}-{i['targetId']}", {}


CREATE: dict[str, Callable[[Context, str, dict[str, Any]], Created]] = {
    "aws:ec2/vpc:Vpc": create_vpc,
    "aws:ec2/subnet:Subnet": create_subnet,
    "aws:ec2/internetGateway:InternetGateway": create_igw,
    "aws:ec2/eip:Eip": create_eip,
    "aws:ec2/natGateway:NatGateway": create_nat,
    "aws:ec2/routeTable:RouteTable": create_route_table,
    "aws:ec2/route:Route": create_route,
    "aws:ec2/routeTableAssociation:RouteTableAssociation": create_rta,
    "aws:ec2/vpcPeeringConnection:VpcPeeringConnection": create_peering,
    "aws:ec2/securityGroup:SecurityGroup": create_security_group,
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": create_default_sg,
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": _sg_rule("ingress"),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": _sg_rule("egress"),
    "aws:ec2/flowLog:FlowLog": create_flow_log,
    "aws:iam/role:Role": create_role,
    "aws:iam/rolePolicy:RolePolicy": create_role_policy,
    "aws:kms/key:Key": create_key,
    "aws:kms/alias:Alias": create_alias,
    "aws:cloudwatch/logGroup:LogGroup": create_log_group,
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": create_metric_filter,
    "aws:cloudwatch/metricAlarm:MetricAlarm": create_alarm,
    "aws:cloudwatch/dashboard:Dashboard": create_dashboard,
    "aws:sns/topic:Topic": create_topic,
    "aws:sns/topicPolicy:TopicPolicy": create_topic_policy,
    "aws:sns/topicSubscription:TopicSubscription": create_subscription,
    "aws:sqs/queue:Queue": create_queue,
    "aws:lambda/function:Function": create_function,
    "aws:lambda/permission:Permission": create_permission,
    "aws:cloudwatch/eventRule:EventRule": create_event_rule,
    "aws:cloudwatch/eventTarget:EventTarget": create_event_target,
}


# --- existence checks (a recorded resource the emulator lost is created again) ----------

def _found(call: Callable[[], Any]) -> bool:
    from botocore.exceptions import ClientError

    try:
        result = call()
    except ClientError:
        return False
    return bool(result)


def exists(ctx: Context, token: str, resource_id: str) -> bool:
    """True if the resource recorded as ``resource_id`` is still in the emulator."""
    ec2 = ctx.ec2
    checks: dict[str, Callable[[], Any]] = {
        "aws:ec2/vpc:Vpc": lambda: ec2.describe_vpcs(VpcIds=[resource_id])["Vpcs"],
        "aws:ec2/subnet:Subnet": lambda: ec2.describe_subnets(SubnetIds=[resource_id])["Subnets"],
        "aws:ec2/internetGateway:InternetGateway": lambda: ec2.describe_internet_gateways(InternetGatewayIds=[resource_id])["InternetGateways"],
        "aws:ec2/eip:Eip": lambda: ec2.describe_addresses(AllocationIds=[resource_id])["Addresses"],
        "aws:ec2/natGateway:NatGateway": lambda: ec2.describe_nat_gateways(NatGatewayIds=[resource_id])["NatGateways"],
        "aws:ec2/routeTable:RouteTable": lambda: ec2.describe_route_tables(RouteTableIds=[resource_id])["RouteTables"],
        "aws:ec2/vpcPeeringConnection:VpcPeeringConnection": lambda: ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[resource_id])["VpcPeeringConnections"],
        "aws:ec2/securityGroup:SecurityGroup": lambda: ec2.describe_security_groups(GroupIds=[resource_id])["SecurityGroups"],
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": lambda: ec2.describe_security_groups(GroupIds=[resource_id])["SecurityGroups"],
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": lambda: ec2.describe_security_group_rules(SecurityGroupRuleIds=[resource_id])["SecurityGroupRules"],
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": lambda: ec2.describe_security_group_rules(SecurityGroupRuleIds=[resource_id])["SecurityGroupRules"],
        "aws:ec2/flowLog:FlowLog": lambda: ec2.describe_flow_logs(FlowLogIds=[resource_id])["FlowLogs"],
        "aws:iam/role:Role": lambda: ctx.iam.get_role(RoleName=resource_id),
        "aws:kms/key:Key": lambda: ctx.kms.describe_key(KeyId=resource_id),
        "aws:cloudwatch/logGroup:LogGroup": lambda: [g for g in ctx.logs.describe_log_groups(logGroupNamePrefix=resource_id)["logGroups"] if g["logGroupName"] == resource_id],
        "aws:cloudwatch/metricAlarm:MetricAlarm": lambda: ctx.cloudwatch.describe_alarms(AlarmNames=[resource_id])["MetricAlarms"],
        "aws:cloudwatch/dashboard:Dashboard": lambda: ctx.cloudwatch.get_dashboard(DashboardName=resource_id),
        "aws:sns/topic:Topic": lambda: ctx.sns.get_topic_attributes(TopicArn=resource_id),
        "aws:sqs/queue:Queue": lambda: ctx.sqs.get_queue_attributes(QueueUrl=resource_id),
        "aws:lambda/function:Function": lambda: ctx.lambda_.get_function(FunctionName=resource_id),
        "aws:cloudwatch/eventRule:EventRule": lambda: ctx.events.describe_rule(Name=resource_id),
    }
    check = checks.get(token)
    # Dependent sub-resources (routes, associations, policies, filters, ...) live and die
    # with their parents, which are checked; they are recreated with them.
    return True if check is None else _found(check)


# --- deletes (replacements and resources the program no longer declares) ---------------

def delete(ctx: Context, token: str, resource_id: str, inputs: dict[str, Any]) -> bool:
    """Delete a resource where the type supports it; False if it cannot be deleted here."""
    from botocore.exceptions import ClientError

    deleters: dict[str, Callable[[], Any]] = {
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": lambda: ctx.ec2.revoke_security_group_ingress(
            GroupId=inputs["securityGroupId"], SecurityGroupRuleIds=[resource_id]),
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": lambda: ctx.ec2.revoke_security_group_egress(
            GroupId=inputs["securityGroupId"], SecurityGroupRuleIds=[resource_id]),
        "aws:cloudwatch/metricAlarm:MetricAlarm": lambda: ctx.cloudwatch.delete_alarms(AlarmNames=[resource_id]),
        "aws:cloudwatch/dashboard:Dashboard": lambda: ctx.cloudwatch.delete_dashboards(DashboardNames=[resource_id]),
        "aws:cloudwatch/logMetricFilter:LogMetricFilter": lambda: ctx.logs.delete_metric_filter(
            logGroupName=inputs["logGroupName"], filterName=resource_id),
        "aws:ec2/route:Route": lambda: ctx.ec2.delete_route(RouteTableId=inputs["routeTableId"],
                                                            DestinationCidrBlock=inputs["destinationCidrBlock"]),
        "aws:sns/topicPolicy:TopicPolicy": lambda: None,
        "aws:iam/rolePolicy:RolePolicy": lambda: ctx.iam.delete_role_policy(
            RoleName=inputs["role"], PolicyName=resource_id.split(":", 1)[1]),
        "aws:cloudwatch/eventTarget:EventTarget": lambda: ctx.events.remove_targets(Rule=inputs["rule"], Ids=[inputs["targetId"]]),
    }
    action = deleters.get(token)
    if action is None:
        return False
    try:
        action()
    except ClientError:
        pass  # already gone
    return True


# Types whose "replacement" is an in-place overwrite (PUT semantics) rather than delete + create.
OVERWRITE_IN_PLACE = frozenset({
    "aws:sns/topicPolicy:TopicPolicy", "aws:iam/rolePolicy:RolePolicy", "aws:cloudwatch/metricAlarm:MetricAlarm",
    "aws:cloudwatch/dashboard:Dashboard", "aws:cloudwatch/logMetricFilter:LogMetricFilter",
    "aws:cloudwatch/eventTarget:EventTarget",
})


class StateStore:
    """The rollout's record of what it created, kept as an S3 object in the emulator."""

    def __init__(self, s3: Any, stack: str) -> None:
        self.s3 = s3
        self.key = f"stacks/{stack}/resources.json"

    def load(self) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            body = self.s3.get_object(Bucket=STATE_BUCKET, Key=self.key)["Body"].read()
        except ClientError:
            return {}
        return json.loads(body)

    def save(self, state: dict[str, Any]) -> None:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_bucket(Bucket=STATE_BUCKET)
        except ClientError:
            self.s3.create_bucket(Bucket=STATE_BUCKET)
        self.s3.put_object(Bucket=STATE_BUCKET, Key=self.key, Body=json.dumps(state, indent=1, sort_keys=True).encode())


def _comparable(inputs: dict[str, Any]) -> Any:
    """Inputs as JSON-comparable data (archives by path, secrets masked)."""
    return json.loads(json.dumps(unwrap_secrets(inputs, mask=True), sort_keys=True,
                                 default=lambda o: {"path": str(getattr(o, "path", o))}))


@dataclass
class Change:
    token: str
    name: str
    action: str  # create | same | update | replace | delete


class EmulatorMocks(pulumi.runtime.Mocks):
    """Pulumi mocks that make the program's resources real in the emulator."""

    def __init__(self, ctx: Context, previous: dict[str, Any], progress: Callable[[str], None] | None = None) -> None:
        self.ctx = ctx
        self.previous = previous
        self.current: dict[str, Any] = {}
        self.changes: list[Change] = []
        self.progress = progress
        self._lock = threading.Lock()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if not args.custom:
            return None, dict(args.inputs)
        token, name, inputs = args.typ, args.name, dict(args.inputs)
        key = f"{token}::{name}"
        if token.startswith("pulumi:providers:"):
            default_tags = inputs.get("defaultTags") or {}
            if isinstance(default_tags, str):  # provider config arrives JSON-encoded
                default_tags = json.loads(default_tags)
            tags = default_tags.get("tags") or {}
            self.ctx.default_tags.update(tags)
            return f"{name}-provider", inputs
        comparable = _comparable(inputs)
        recorded = self.previous.get(key)
        action = "create"
        if recorded and exists(self.ctx, token, recorded["id"]):
            if recorded["inputs"] == comparable:
                action = "same"
            elif token in UPDATE:
                action = "update"
            elif token in OVERWRITE_IN_PLACE or delete(self.ctx, token, recorded["id"], recorded["inputs"]):
                action = "replace"
            else:
                raise EmulatedRolloutError(
                    f"{token} {name!r} changed ({_diff_keys(recorded['inputs'], comparable)}) and cannot be replaced "
                    "in the emulator; reset it with `vpcpeer local down` and roll out again"
                )
        if action == "same":
            resource_id, extra = recorded["id"], recorded["extra"]
        elif action == "update":
            resource_id = recorded["id"]
            try:
                extra = UPDATE[token](self.ctx, name, resource_id, unwrap_secrets(inputs))
            except Exception as exc:  # noqa: BLE001 - re-raised with the resource named
                raise EmulatedRolloutError(f"updating {token} {name!r} in the emulator failed: {exc}") from exc
        else:
            creator = CREATE.get(token)
            if creator is None:
                raise UnsupportedResourceType(f"the emulated rollout cannot create {token} ({name})")
            try:
                resource_id, extra = creator(self.ctx, name, unwrap_secrets(inputs))
            except EmulatedRolloutError:
                raise
            except Exception as exc:  # noqa: BLE001 - re-raised with the resource named
                raise EmulatedRolloutError(f"creating {token} {name!r} in the emulator failed: {exc}") from exc
            extra = {k: v for k, v in extra.items() if v is not None}
        with self._lock:
            self.current[key] = {"id": resource_id, "extra": extra, "inputs": comparable}
            self.changes.append(Change(token, name, action))
        if self.progress and action != "same":
            self.progress(f"  {action:7s} {token.rsplit(':', 1)[1]:28s} {name}")
        return resource_id, {**inputs, **extra}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            identity = self.ctx.sts.get_caller_identity()
            return {"accountId": identity["Account"], "arn": identity["Arn"], "userId": identity["UserId"],
                    "id": identity["Account"]}, []
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws", "id": "aws"}, []
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            zones = self.ctx.ec2.describe_availability_zones(
                Filters=[{"Name": "state", "Values": [args.args.get("state") or "available"]}])["AvailabilityZones"]
            return {"names": [z["ZoneName"] for z in zones], "zoneIds": [z["ZoneId"] for z in zones],
                    "id": self.ctx.region, "groupNames": [self.ctx.region]}, []
        raise UnsupportedResourceType(f"the emulated rollout cannot answer data source {args.token}")

    def prune(self) -> list[Change]:
        """Delete what the previous rollout created and this program no longer declares."""
        removed = []
        for key, recorded in self.previous.items():
            if key in self.current:
                continue
            token, name = key.split("::", 1)
            if delete(self.ctx, token, recorded["id"], recorded["inputs"]):
                removed.append(Change(token, name, "delete"))
            else:
                self.current[key] = recorded  # keep tracking what could not be removed
        return removed


def _diff_keys(before: dict[str, Any], after: dict[str, Any]) -> str:
    keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return ", ".join(keys) or "inputs"
