"""The Pulumi program evaluated with Pulumi's mocks: every resource, and every security fix.

These tests read the inputs exactly as the provider would receive them (camelCase keys,
numbers as floats), so they check the real program, not a description of it.
"""

from __future__ import annotations

import ipaddress
import json
from collections import Counter

import pytest

from infra import policies
from infra.config import InvalidStackConfig
from lambda_pkg import constants as c
from tests.conftest import Plan, plan

# Acceptance minimums for the default stack (issue: Foundation).
MINIMUM_COUNTS = {
    "Vpc": 2, "Subnet": 8, "InternetGateway": 2, "Eip": 4, "NatGateway": 4, "RouteTable": 6,
    "Route": 12, "RouteTableAssociation": 8, "VpcPeeringConnection": 1, "SecurityGroup": 2,
    "SecurityGroupIngressRule": 4, "SecurityGroupEgressRule": 4, "DefaultSecurityGroup": 2,
    "FlowLog": 2, "LogGroup": 3, "LogMetricFilter": 4, "MetricAlarm": 4, "Topic": 1,
    "TopicSubscription": 1, "TopicPolicy": 1, "Function": 1, "Permission": 1, "EventRule": 1,
    "EventTarget": 1, "Dashboard": 1, "Key": 1,
}
EXACT_COUNTS = {k: v for k, v in MINIMUM_COUNTS.items() if k not in ("MetricAlarm", "Key")}


def _counts(p: Plan) -> Counter[str]:
    return Counter(r.type.rsplit(":", 1)[1] for r in p.resources)


def test_default_stack_declares_every_part_of_the_reference(default: Plan) -> None:
    counts = _counts(default)
    for kind, minimum in MINIMUM_COUNTS.items():
        assert counts[kind] >= minimum, f"{kind}: {counts[kind]} < {minimum}"
    for kind, exact in EXACT_COUNTS.items():
        assert counts[kind] == exact, f"{kind}: {counts[kind]} != {exact}"


def test_inputs_arrive_as_the_provider_sees_them(default: Plan) -> None:
    rule = default.one("SecurityGroupIngressRule", "vpc-a-in-443-from-vpc-b")
    assert rule.inputs["fromPort"] == 443.0 and isinstance(rule.inputs["fromPort"], float)


def test_vpcs_have_dns_and_the_configured_cidrs(default: Plan) -> None:
    vpcs = {r.name: r.inputs for r in default.of("Vpc")}
    assert vpcs["vpc-a"]["cidrBlock"] == "10.0.0.0/16"
    assert vpcs["vpc-b"]["cidrBlock"] == "10.1.0.0/16"
    for inputs in vpcs.values():
        assert inputs["enableDnsSupport"] is True and inputs["enableDnsHostnames"] is True


def test_subnets_are_24s_inside_their_vpc_across_two_azs(default: Plan) -> None:
    vpc_ids = {r.name: default.result.outputs[f"{r.name.replace('-', '_')}_id"] for r in default.of("Vpc")}
    cidrs = {"vpc-a": "10.0.0.0/16", "vpc-b": "10.1.0.0/16"}
    for subnet in default.of("Subnet"):
        vpc = subnet.name[:5]
        assert subnet.inputs["vpcId"] == vpc_ids[vpc]
        net = ipaddress.ip_network(subnet.inputs["cidrBlock"])
        assert net.prefixlen == 24 and net.subnet_of(ipaddress.ip_network(cidrs[vpc]))
        assert subnet.inputs["mapPublicIpOnLaunch"] is False
    zones = {s.inputs["availabilityZone"] for s in default.of("Subnet")}
    assert zones == {"us-east-1a", "us-east-1b"}


def test_every_route_table_routes_to_the_peer_and_out(default: Plan) -> None:
    outputs = default.result.outputs
    routes = default.of("Route")
    peering = [r for r in routes if "vpcPeeringConnectionId" in r.inputs]
    assert len(peering) == 6
    assert {r.inputs["vpcPeeringConnectionId"] for r in peering} == {outputs["peering_connection_id"]}
    tables = {t.name: t for t in default.of("RouteTable")}
    by_table = {r.inputs["routeTableId"]: r for r in peering}
    assert len(by_table) == 6  # one peering route in each of the 6 tables
    for name in tables:
        peer_cidr = "10.1.0.0/16" if name.startswith("vpc-a") else "10.0.0.0/16"
        route = next(r for r in peering if r.name == f"{name}-to-peer")
        assert route.inputs["destinationCidrBlock"] == peer_cidr
    internet = [r for r in routes if "gatewayId" in r.inputs]
    nat = [r for r in routes if "natGatewayId" in r.inputs]
    assert len(internet) == 2 and len(nat) == 4
    assert all(r.inputs["destinationCidrBlock"] == "0.0.0.0/0" for r in internet + nat)
    assert len({r.inputs["natGatewayId"] for r in nat}) == 4  # one NAT per AZ per VPC


def test_peering_accepts_itself_with_remote_dns(default: Plan) -> None:
    [pcx] = default.of("VpcPeeringConnection")
    assert pcx.inputs["autoAccept"] is True
    assert pcx.inputs["vpcId"] == default.result.outputs["vpc_a_id"]
    assert pcx.inputs["peerVpcId"] == default.result.outputs["vpc_b_id"]
    for side in ("accepter", "requester"):
        assert pcx.inputs[side]["allowRemoteVpcDnsResolution"] is True


def _rules(p: Plan) -> set[tuple[str, str, int, str]]:
    groups = {p.result.outputs["vpc_a_security_group_id"]: "VPC-A", p.result.outputs["vpc_b_security_group_id"]: "VPC-B"}
    found = set()
    for kind, direction in (("SecurityGroupIngressRule", "in"), ("SecurityGroupEgressRule", "out")):
        for rule in p.of(kind):
            i = rule.inputs
            assert i["ipProtocol"] == "tcp"
            assert i["fromPort"] == i["toPort"]
            assert i["description"].strip(), f"{rule.name} has no description"
            found.add((groups[i["securityGroupId"]], direction, int(i["fromPort"]), i["cidrIpv4"]))
    return found


def test_security_groups_open_exactly_the_declared_ports_per_direction(default: Plan) -> None:
    a, b = "10.0.0.0/16", "10.1.0.0/16"
    assert _rules(default) == {
        ("VPC-A", "in", 443, b), ("VPC-A", "in", 8080, b),
        ("VPC-B", "in", 443, a), ("VPC-B", "in", 3306, a),
        # each side may send exactly what the other lets in
        ("VPC-A", "out", 443, b), ("VPC-A", "out", 3306, b),
        ("VPC-B", "out", 443, a), ("VPC-B", "out", 8080, a),
    }
    assert not default.of("SecurityGroup")[0].inputs.get("ingress")  # no inline rules


def test_configured_ports_drive_the_rules() -> None:
    custom = Plan(plan({"vpc_a_allowed_ports": "22,9000", "vpc_b_allowed_ports": "5432"}))
    rules = _rules(custom)
    assert {(v, d, port) for v, d, port, _ in rules} == {
        ("VPC-A", "in", 22), ("VPC-A", "in", 9000), ("VPC-B", "in", 5432),
        ("VPC-A", "out", 5432), ("VPC-B", "out", 22), ("VPC-B", "out", 9000),
    }
    env = custom.of("Function")[0].inputs["environment"]["variables"]
    assert env[c.ENV_VPC_A_ALLOWED_PORTS] == "22,9000" and env[c.ENV_VPC_B_ALLOWED_PORTS] == "5432"
    assert custom.result.outputs["vpc_a_allowed_ports"] == [22, 9000]


def test_default_security_groups_are_managed_with_no_rules(default: Plan) -> None:
    groups = default.of("DefaultSecurityGroup")
    assert {g.inputs["vpcId"] for g in groups} == {default.result.outputs["vpc_a_id"], default.result.outputs["vpc_b_id"]}
    for group in groups:
        assert group.inputs.get("ingress", []) == [] and group.inputs.get("egress", []) == []


def test_flow_logs_capture_all_traffic_into_encrypted_groups(default: Plan) -> None:
    outputs = default.result.outputs
    logs = {r.inputs["vpcId"]: r.inputs for r in default.of("FlowLog")}
    assert logs[outputs["vpc_a_id"]]["logDestination"] == outputs["vpc_a_log_group_arn"]
    assert logs[outputs["vpc_b_id"]]["logDestination"] == outputs["vpc_b_log_group_arn"]
    role_arns = {r.inputs["iamRoleArn"] for r in default.of("FlowLog")}
    flow_role = default.one("Role", "flow-logs-role")
    assert role_arns == {f"arn:aws:iam::123456789012:role/{flow_role.inputs['name']}"}
    for inputs in logs.values():
        assert inputs["trafficType"] == "ALL"
        assert inputs["logDestinationType"] == "cloud-watch-logs"
    for group in default.of("LogGroup"):
        assert group.inputs["retentionInDays"] == 365
        assert group.inputs["kmsKeyId"].startswith("arn:aws:kms:us-east-1:123456789012:key/")


def test_flow_log_role_trust_is_bound_to_this_account(default: Plan) -> None:
    trust = Plan.policy(default.one("Role", "flow-logs-role"), "assumeRolePolicy")
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    delivery = Plan.policy(default.one("RolePolicy", "flow-logs-delivery"))
    write = next(s for s in delivery["Statement"] if "logs:PutLogEvents" in s["Action"])
    outputs = default.result.outputs
    assert sorted(write["Resource"]) == sorted(f"{outputs[k]}:*" for k in ("vpc_a_log_group_arn", "vpc_b_log_group_arn"))


def test_identity_policies_use_wildcards_only_where_aws_requires(default: Plan) -> None:
    for policy in default.of("RolePolicy"):
        for statement in Plan.policy(policy)["Statement"]:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if "*" in resources:
                assert set(statement["Action"]) <= policies.NO_RESOURCE_ACTIONS, (policy.name, statement)


def test_analyzer_rights_are_scoped(default: Plan) -> None:
    doc = Plan.policy(default.one("RolePolicy", "analyzer-policy"))
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    function_name = default.result.outputs["lambda_function_name"]
    assert by_sid["OwnLogGroup"]["Resource"] == [
        f"arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/{function_name}:*"
    ]
    assert by_sid["PublishAnalyzerMetrics"]["Condition"]["StringEquals"]["cloudwatch:namespace"] == c.METRIC_NAMESPACE
    assert by_sid["PublishAlerts"]["Resource"] == [default.result.outputs["sns_topic_arn"]]
    assert by_sid["StopQueries"]["Action"] == ["logs:StopQuery"]
    # GetQueryResults takes the log group: granted on the two flow-log groups, never on "*".
    assert "logs:GetQueryResults" in by_sid["QueryFlowLogs"]["Action"] and "*" not in by_sid["QueryFlowLogs"]["Resource"]
    assert not any("logs:DescribeLogGroups" in s["Action"] for s in doc["Statement"])  # the code never calls it
    trust = Plan.policy(default.one("Role", "analyzer-role"), "assumeRolePolicy")
    assert trust["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


def test_kms_keys_are_customer_managed_rotated_and_serve_cloudwatch(default: Plan) -> None:
    keys = {k.name: k for k in default.of("Key")}
    assert set(keys) == {"logs-key", "alerts-key"}
    for key in keys.values():
        assert key.inputs["enableKeyRotation"] is True
    logs_principals = {s["Principal"].get("Service") for s in Plan.policy(keys["logs-key"])["Statement"]}
    alerts_principals = {s["Principal"].get("Service") for s in Plan.policy(keys["alerts-key"])["Statement"]}
    assert {"logs.us-east-1.amazonaws.com", "vpc-flow-logs.amazonaws.com"} <= logs_principals
    assert "cloudwatch.amazonaws.com" in alerts_principals
    [topic] = default.of("Topic")
    assert topic.inputs["kmsMasterKeyId"].startswith("arn:aws:kms:")
    [function] = default.of("Function")
    assert function.inputs["kmsKeyArn"] == topic.inputs["kmsMasterKeyId"]  # the environment is encrypted too


def test_topic_policy_binds_cloudwatch_to_this_account(default: Plan) -> None:
    doc = Plan.policy(default.of("TopicPolicy")[0])
    services = [s for s in doc["Statement"] if isinstance(s["Principal"], dict) and "Service" in s["Principal"]]
    assert [s["Principal"]["Service"] for s in services] == ["cloudwatch.amazonaws.com"]
    condition = services[0]["Condition"]
    assert condition["StringEquals"]["aws:SourceAccount"] == "123456789012"
    assert condition["ArnLike"]["aws:SourceArn"].startswith("arn:aws:cloudwatch:us-east-1:123456789012:alarm:")


def test_alert_email_is_a_secret_everywhere(default: Plan) -> None:
    [subscription] = default.of("TopicSubscription")
    assert subscription.inputs["protocol"] == "email"
    assert subscription.inputs["endpoint"] == "[secret]"
    assert "alert_email" in default.result.secret_outputs
    assert default.result.public_outputs()["alert_email"] == "[secret]"
    dumped = json.dumps([r.to_json() for r in default.resources])
    assert "alerts@example.com" not in dumped


def test_metric_filters_ignore_nodata_rows(default: Plan) -> None:
    filters = default.of("LogMetricFilter")
    assert len(filters) == 4
    for f in filters:
        assert "log_status=OK" in f.inputs["pattern"]
        transform = f.inputs["metricTransformation"]
        assert transform["namespace"].startswith(c.FLOW_LOG_METRIC_NAMESPACE_PREFIX + "/VPC-")
    rejected = [f for f in filters if f.inputs["metricTransformation"]["name"] == c.FILTER_METRIC_REJECTED]
    assert len(rejected) == 2 and all("action=REJECT" in f.inputs["pattern"] for f in rejected)


def test_every_alarm_says_how_it_treats_missing_data(default: Plan) -> None:
    alarms = default.of("MetricAlarm")
    topic = default.result.outputs["sns_topic_arn"]
    for alarm in alarms:
        assert alarm.inputs["treatMissingData"] in ("breaching", "notBreaching"), alarm.name
        assert alarm.inputs["alarmActions"] == [topic]
    silent = [a for a in alarms if a.name.endswith("flow-logs-silent")]
    assert len(silent) == 2 and all(a.inputs["treatMissingData"] == "breaching" for a in silent)
    analyzer = default.one("MetricAlarm", "analyzer-errors")
    assert analyzer.inputs["dimensions"] == {"FunctionName": default.result.outputs["lambda_function_name"]}


def test_analyzer_function_is_hardened_and_configured(default: Plan) -> None:
    [fn] = default.of("Function")
    i = fn.inputs
    outputs = default.result.outputs
    assert i["runtime"] == "python3.12" and i["handler"] == c.LAMBDA_HANDLER
    assert i["deadLetterConfig"]["targetArn"] == outputs["lambda_dead_letter_queue_arn"]
    assert i["reservedConcurrentExecutions"] >= 1
    assert i["tracingConfig"]["mode"] == "Active"
    job = default.one("SigningJob", "analyzer-signing-job")
    signed = job.inputs["destination"]["s3"]
    assert "code" not in i and i["s3Bucket"] == signed["bucket"] and i["s3Key"].startswith(signed["prefix"])
    assert i["codeSigningConfigArn"] == outputs["lambda_code_signing_config_arn"]
    env = i["environment"]["variables"]
    assert env == {
        c.ENV_VPC_A_LOG_GROUP: outputs["vpc_a_log_group_name"],
        c.ENV_VPC_B_LOG_GROUP: outputs["vpc_b_log_group_name"],
        c.ENV_VPC_A_CIDR: "10.0.0.0/16",
        c.ENV_VPC_B_CIDR: "10.1.0.0/16",
        c.ENV_VPC_A_ALLOWED_PORTS: "443,8080",
        c.ENV_VPC_B_ALLOWED_PORTS: "443,3306",
        c.ENV_SNS_TOPIC_ARN: outputs["sns_topic_arn"],
        c.ENV_TRAFFIC_BASELINE: "417",
        c.ENV_ANOMALY_THRESHOLD: "20",
        c.ENV_ANALYZER_ENGINE: "insights",
        c.ENV_BASELINE: "learned",
        c.ENV_STACK_NAME: "dev",
        c.ENV_ALERT_LEDGER_TABLE: outputs["alert_ledger_table_name"],
    }


def test_schedule_rule_is_disabled_and_invocation_is_account_bound(default: Plan) -> None:
    [rule] = default.of("EventRule")
    assert rule.inputs["state"] == "DISABLED"
    assert rule.inputs["scheduleExpression"] == "rate(1 hour)"
    [permission] = default.of("Permission")
    assert permission.inputs["principal"] == "events.amazonaws.com"
    assert permission.inputs["sourceAccount"] == "123456789012"
    assert permission.inputs["sourceArn"].startswith("arn:aws:events:us-east-1:123456789012:rule/")
    [target] = default.of("EventTarget")
    assert target.inputs["arn"] == default.result.outputs["lambda_function_arn"]


def test_dashboard_graphs_the_analyzer_and_its_function(default: Plan) -> None:
    [dashboard] = default.of("Dashboard")
    body = json.loads(dashboard.inputs["dashboardBody"])
    metrics = [m for w in body["widgets"] if w["type"] == "metric" for m in w["properties"]["metrics"]]
    function_name = default.result.outputs["lambda_function_name"]
    lambda_rows = [m for m in metrics if m[0] == "AWS/Lambda"]
    assert lambda_rows and all(m[2:4] == ["FunctionName", function_name] for m in lambda_rows)
    assert any(m[0] == c.METRIC_NAMESPACE for m in metrics)
    queries = [w["properties"]["query"] for w in body["widgets"] if w["type"] == "log"]
    assert len(queries) == 2 and all("dstPort" in q and "srcaddr" not in q for q in queries)


def test_outputs_cover_the_reference_and_more(default: Plan) -> None:
    reference = {
        "vpc_a_id", "vpc_b_id", "vpc_a_cidr", "vpc_b_cidr", "peering_connection_id",
        "vpc_a_security_group_id", "vpc_b_security_group_id", "vpc_a_log_group_name",
        "vpc_b_log_group_name", "lambda_function_arn", "lambda_function_name", "sns_topic_arn",
        "dashboard_url", "alert_email",
    }
    added = {"vpc_a_allowed_ports", "vpc_b_allowed_ports", "vpc_a_log_group_arn", "vpc_b_log_group_arn"}
    assert reference | added <= set(default.result.outputs)
    assert all(default.result.outputs[k] is not None for k in reference | added)


def test_single_nat_gateway_option_shares_one_nat_per_vpc() -> None:
    cheap = Plan(plan({"single_nat_gateway": "true"}))
    counts = _counts(cheap)
    assert counts["NatGateway"] == 2 and counts["Eip"] == 2
    assert counts["RouteTable"] == 6 and counts["Route"] == 12
    nat_routes = [r for r in cheap.of("Route") if "natGatewayId" in r.inputs]
    assert len({r.inputs["natGatewayId"] for r in nat_routes}) == 2


def test_dashboard_is_optional() -> None:
    bare = Plan(plan({"create_dashboard": "false"}))
    assert bare.of("Dashboard") == []
    assert bare.result.outputs["dashboard_url"] is None


def test_bad_config_fails_before_any_resource() -> None:
    with pytest.raises(InvalidStackConfig, match="vpcpeer:vpc_b_cidr"):
        plan({"vpc_b_cidr": "10.0.0.0/17"})


def test_missing_lambda_zip_is_a_config_error_not_a_crash(tmp_path) -> None:
    from infra.runner import PreviewRunner

    runner = PreviewRunner("dev", {"lambda_zip_path": str(tmp_path / "absent.zip")})
    with pytest.raises(InvalidStackConfig, match="vpcpeer lambda build"):
        runner.run()


def test_the_function_deploys_the_signed_copy_of_the_reproducible_zip(default: Plan) -> None:
    """CKV_AWS_272: the zip goes to a private, versioned, KMS-encrypted bucket; a Signer job
    signs that object version with the stack's Lambda profile; the function deploys the
    signed copy under a configuration that refuses anything else."""
    [bucket] = default.of("Bucket")
    bucket_name = default.one("BucketVersioning", "code-artifacts-versioning").inputs["bucket"]
    assert bucket_name.startswith(bucket.inputs["bucketPrefix"])
    versioning = default.one("BucketVersioning", "code-artifacts-versioning").inputs
    assert versioning["versioningConfiguration"] == {"status": "Enabled"}
    [rule] = default.one("BucketServerSideEncryptionConfiguration", "code-artifacts-encryption").inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"].startswith("arn:aws:kms:")
    private = default.one("BucketPublicAccessBlock", "code-artifacts-private").inputs
    assert all(private[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                             "restrictPublicBuckets"))
    unsigned = default.one("BucketObjectv2", "analyzer-unsigned-zip").inputs
    assert unsigned["bucket"] == bucket_name and unsigned["source"]["archive"].endswith("build/lambda_pkg.zip")
    profile = default.one("SigningProfile", "analyzer-signing-profile").inputs
    assert profile["platformId"] == "AWSLambda-SHA384-ECDSA"
    job = default.one("SigningJob", "analyzer-signing-job").inputs
    assert job["source"]["s3"]["bucket"] == bucket_name and job["source"]["s3"]["key"] == unsigned["key"]
    assert job["source"]["s3"]["version"] and job["ignoreSigningJobFailure"] is False
    config = default.one("CodeSigningConfig", "analyzer-code-signing").inputs
    assert config["policies"] == {"untrustedArtifactOnDeployment": "Enforce"}
    [version_arn] = config["allowedPublishers"]["signingProfileVersionArns"]
    assert f"/signing-profiles/{job['profileName']}/" in version_arn


def test_code_signing_off_deploys_the_zip_itself_and_declares_no_signing() -> None:
    unsigned = Plan(plan({"code_signing": "off"}))
    [fn] = unsigned.of("Function")
    assert fn.inputs["code"]["archive"].endswith("build/lambda_pkg.zip")
    assert fn.inputs["sourceCodeHash"] == unsigned.result.outputs["lambda_code_sha256"]
    assert "codeSigningConfigArn" not in fn.inputs and "s3Key" not in fn.inputs
    kinds = {r.type.split(":")[1].split("/")[0] for r in unsigned.resources}
    assert "signer" not in kinds and "s3" not in kinds and not unsigned.of("CodeSigningConfig")
    assert unsigned.result.outputs["lambda_code_signing_config_arn"] is None


@pytest.mark.parametrize("mode", ["warn", "Enforce", "true", "enforced"])
def test_an_unknown_code_signing_mode_is_refused(mode: str) -> None:
    with pytest.raises(InvalidStackConfig, match="code_signing.*Use one of enforce, off"):
        plan({"code_signing": mode})
