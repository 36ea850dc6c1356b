"""The real Pulumi program rolled out by EmulatedRunner into a moto server started in this
process, with the state kept in memory: every planned type created, a second rollout
changing nothing, a new alert address replacing the subscription, changed ports pruning
rules, and a rule deleted by hand coming back."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from infra.emulation.engine import InMemoryStateStore
from infra.runner import EmulatedRunner, StackResult
from tests.conftest import plan
from vpcpeer_orchestration.packaging import packaged_overrides

REGION = "us-east-1"
DEFAULT_EMAIL = "alerts@example.com"  # infra/Pulumi.dev.yaml
NEW_EMAIL = "oncall@example.org"
VPC_A, VPC_B = "10.0.0.0/16", "10.1.0.0/16"
DEFAULT_A_RULES = {("in", 443, VPC_B), ("in", 8080, VPC_B), ("out", 443, VPC_B), ("out", 3306, VPC_B)}


@pytest.fixture(scope="module")
def client(inprocess_moto: str) -> Callable[[str], Any]:
    import boto3

    def make(service: str) -> Any:
        return boto3.client(service, endpoint_url=inprocess_moto, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    return make


@pytest.fixture(scope="module")
def store() -> InMemoryStateStore:
    return InMemoryStateStore()


@pytest.fixture(scope="module")
def said() -> list[str]:
    """The rollouts' progress lines."""
    return []


@pytest.fixture(scope="module")
def rollout(client, store, said) -> Callable[..., StackResult]:
    def run(overrides: Mapping[str, Any] | None = None) -> StackResult:
        return EmulatedRunner("dev", packaged_overrides(overrides), client=client, state_store=store,
                              progress=said.append).run()

    return run


@pytest.fixture(scope="module")
def rolled_out(rollout) -> tuple[StackResult, StackResult, dict[str, float]]:
    seconds = {}
    started = time.monotonic()
    first = rollout()
    seconds["first"] = time.monotonic() - started
    started = time.monotonic()
    second = rollout()
    seconds["second"] = time.monotonic() - started
    return first, second, seconds


def _rules(client, group_id: str) -> set[tuple[str, int, str]]:
    rules = client("ec2").describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]
    return {("out" if r["IsEgress"] else "in", r["FromPort"], r["CidrIpv4"]) for r in rules}


def _subscriptions(client, topic_arn: str) -> list[tuple[str, str]]:
    subscriptions = client("sns").list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    return sorted((s["Protocol"], s["Endpoint"]) for s in subscriptions)


def _types(resources) -> Counter[str]:
    return Counter(r.type for r in resources if r.custom and not r.type.startswith("pulumi:"))


def test_the_first_rollout_creates_every_type_the_preview_plans(rolled_out, default) -> None:
    """Every type but the code-signing ones, which the embedded AWS cannot run (moto has no
    signing jobs or code-signing configurations): its rollout deploys the zip unsigned."""
    first, _, _ = rolled_out
    assert first.changes == {"create": len(first.resources)}
    unsigned = plan({"code_signing": "off"}).resources
    assert _types(first.resources) == _types(unsigned)
    signing = {"aws:lambda/codeSigningConfig:CodeSigningConfig", "aws:signer/signingJob:SigningJob"}
    assert signing <= set(_types(default.resources)) - set(_types(first.resources))


def test_the_embedded_rollout_says_it_deploys_unsigned_code(rolled_out, said) -> None:
    assert any(line.startswith("code signing: off on the embedded AWS") for line in said)
    assert rolled_out[0].outputs["lambda_code_signing_config_arn"] is None


def test_the_second_rollout_is_all_same_with_identical_outputs(rolled_out) -> None:
    first, second, _ = rolled_out
    assert second.changes == {"same": len(first.resources)}
    assert second.outputs == first.outputs
    assert second.outputs["vpc_a_id"].startswith("vpc-") and second.outputs["alert_email"] == DEFAULT_EMAIL


def test_outputs_name_real_resources_of_the_emulator(rolled_out, client) -> None:
    outputs = rolled_out[0].outputs
    vpcs = client("ec2").describe_vpcs(VpcIds=[outputs["vpc_a_id"], outputs["vpc_b_id"]])["Vpcs"]
    assert {v["VpcId"]: v["CidrBlock"] for v in vpcs} == {outputs["vpc_a_id"]: VPC_A, outputs["vpc_b_id"]: VPC_B}
    assert _rules(client, outputs["vpc_a_security_group_id"]) == DEFAULT_A_RULES
    concurrency = client("lambda").get_function_concurrency(FunctionName=outputs["lambda_function_name"])
    assert concurrency["ReservedConcurrentExecutions"] == 2
    assert _subscriptions(client, outputs["sns_topic_arn"]) == [("email", DEFAULT_EMAIL)]


def test_the_state_records_secrets_only_as_keyed_hashes(rolled_out, store) -> None:
    first = rolled_out[0]
    document = store.document
    assert document["format"] == 2 and len(document["resources"]) == len(first.resources)
    assert DEFAULT_EMAIL not in json.dumps(document)
    [subscription] = [r for r in first.resources if r.type == "aws:sns/topicSubscription:TopicSubscription"]
    assert subscription.inputs["endpoint"] == "[secret]"


def test_a_new_alert_email_replaces_the_subscription_and_rolling_back_replaces_it_again(rolled_out, rollout, client,
                                                                                         store) -> None:
    first = rolled_out[0]
    topic = first.outputs["sns_topic_arn"]
    changed = rollout({"alert_email": NEW_EMAIL})
    assert changed.changes == {"replace": 1, "same": len(first.resources) - 1}
    assert _subscriptions(client, topic) == [("email", NEW_EMAIL)]
    assert NEW_EMAIL not in json.dumps(store.document)
    restored = rollout()
    assert restored.changes == {"replace": 1, "same": len(first.resources) - 1}
    assert _subscriptions(client, topic) == [("email", DEFAULT_EMAIL)]


def test_changed_ports_prune_the_rules_and_restoring_them_creates_them_again(rolled_out, rollout, client) -> None:
    first = rolled_out[0]
    group = first.outputs["vpc_a_security_group_id"]
    total = len(first.resources)
    narrowed = rollout({"vpc_a_allowed_ports": "443"})
    # Ingress 8080 into A and egress 8080 from B go; the analyzer's environment names the ports.
    assert narrowed.changes == {"delete": 2, "update": 1, "same": total - 3}
    assert _rules(client, group) == DEFAULT_A_RULES - {("in", 8080, VPC_B)}
    b_rules = _rules(client, first.outputs["vpc_b_security_group_id"])
    assert ("out", 8080, VPC_A) not in b_rules and ("out", 443, VPC_A) in b_rules
    function = client("lambda").get_function_configuration(FunctionName=first.outputs["lambda_function_name"])
    assert function["Environment"]["Variables"]["VPC_A_ALLOWED_PORTS"] == "443"
    restored = rollout()
    assert restored.changes == {"create": 2, "update": 1, "same": total - 3}
    assert _rules(client, group) == DEFAULT_A_RULES


def test_a_rule_deleted_by_hand_is_created_again(rolled_out, rollout, client) -> None:
    first = rolled_out[0]
    group = first.outputs["vpc_a_security_group_id"]
    ec2 = client("ec2")
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]
    [rule] = [r for r in rules if not r["IsEgress"] and r["FromPort"] == 8080]
    ec2.revoke_security_group_ingress(GroupId=group, SecurityGroupRuleIds=[rule["SecurityGroupRuleId"]])
    assert ("in", 8080, VPC_B) not in _rules(client, group)
    repaired = rollout()
    assert repaired.changes == {"create": 1, "same": len(first.resources) - 1}
    assert _rules(client, group) == DEFAULT_A_RULES


def test_rules_added_by_hand_are_seen_as_drift_and_removed_by_the_rollout(rolled_out, rollout, client) -> None:
    """Posture keys a rule on its protocol and whole port range, so a widened or re-protocolled
    443 is drift; the rollout the drift sensor then requests removes every undeclared rule, in
    the peering groups and in the default groups alike, and posture passes again."""
    from infra.stack_files import load_stack_settings
    from vpcpeer_orchestration import posture

    first = rolled_out[0]
    outputs = first.outputs
    ec2 = client("ec2")
    group = outputs["vpc_a_security_group_id"]
    added = [("tcp", 443, 65535, VPC_B), ("udp", 443, 443, VPC_B), ("tcp", 443, 443, "0.0.0.0/0")]
    for protocol, low, high, cidr in added:
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": protocol, "FromPort": low, "ToPort": high, "IpRanges": [{"CidrIp": cidr}]}])
    [default_group] = ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [outputs["vpc_b_id"]]}, {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    ec2.authorize_security_group_ingress(GroupId=default_group["GroupId"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    cfg = load_stack_settings("dev").validated()
    passed, detail = posture.rules_match(ec2, outputs, cfg)
    assert not passed
    assert sorted(tuple(r) for r in detail["drift"]["VPC-A"]["unexpected"]) == sorted(
        ("in", p, low, high, cidr) for p, low, high, cidr in added)
    assert not posture.default_groups_empty(ec2, outputs)[0]

    repaired = rollout()
    assert repaired.changes == {"repair": 2, "same": len(first.resources)}
    assert posture.rules_match(ec2, outputs, cfg) == (True, {"drift": {}})
    assert posture.default_groups_empty(ec2, outputs)[0]
    assert _rules(client, group) == DEFAULT_A_RULES
    assert rollout().changes == {"same": len(first.resources)}  # nothing left to repair


def _ledger_record(store) -> dict[str, Any]:
    [record] = [r for key, r in store.document["resources"].items() if key.startswith("aws:dynamodb/table:Table::")]
    return record


def test_a_ledger_recorded_with_the_old_index_spelling_is_kept_with_its_items(rolled_out, rollout, client, store) -> None:
    """Earlier versions declared the ledger's index with hashKey/rangeKey, now keySchemas: the
    same table. An embedded AWS rolled out by them updates in place and keeps what was sent."""
    table = rolled_out[0].outputs["alert_ledger_table_name"]
    dynamodb = client("dynamodb")
    dynamodb.put_item(TableName=table, Item={"id": {"S": "kept"}})
    [index] = _ledger_record(store)["inputs"]["globalSecondaryIndexes"]
    keys = {k["keyType"]: k["attributeName"] for k in index.pop("keySchemas")}
    index.update(hashKey=keys["HASH"], rangeKey=keys["RANGE"])

    result = rollout()
    assert result.changes == {"same": len(result.resources) - 1, "update": 1}
    assert dynamodb.get_item(TableName=table, Key={"id": {"S": "kept"}}).get("Item")
    assert "keySchemas" in _ledger_record(store)["inputs"]["globalSecondaryIndexes"][0]


def test_a_ledger_whose_indexes_really_differ_is_refused_not_rebuilt(rolled_out, rollout, client, store) -> None:
    """A table in the emulator keyed differently from the program is never dropped to make it
    fit: the rollout stops naming both, and the table (with its items) stays."""
    from infra.emulation.errors import ReplacementNotSupported

    table = rolled_out[0].outputs["alert_ledger_table_name"]
    dynamodb = client("dynamodb")
    dynamodb.delete_table(TableName=table)
    dynamodb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"},
                              {"AttributeName": "sent_at", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[{"IndexName": "sent-index", "KeySchema": [{"AttributeName": "sent_at", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "ALL"}}])
    dynamodb.put_item(TableName=table, Item={"id": {"S": "kept"}})
    _ledger_record(store)["inputs"]["globalSecondaryIndexes"][0]["projectionType"] = "KEYS_ONLY"  # recorded != declared

    with pytest.raises(ReplacementNotSupported, match=rf"the table {table} has indexes \['sent-index'\]"):
        rollout()
    assert dynamodb.get_item(TableName=table, Key={"id": {"S": "kept"}}).get("Item")
    dynamodb.delete_table(TableName=table)  # the next rollout of this module's stack creates it again
