"""The emulated rollout's engine over fake resource types and an in-memory fake cloud:
no moto, no Pulumi, every decision (create, same, update, replace, overwrite, recreate,
prune, refuse) checked on the calls it makes and the state it saves."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from infra.emulation.engine import (
    SECRET_DIGEST_KEY,
    Context,
    EmulatorMocks,
    Engine,
    InMemoryStateStore,
    StackState,
    public_inputs,
    secret_digest,
)
from infra.emulation.errors import (
    EmulatedRolloutError,
    ReplacementNotSupported,
    UnreadableState,
    UnsupportedDataSource,
    UnsupportedResourceType,
)
from infra.emulation.registry import REGISTRY, Created, ResourceType
from infra.wire import SECRET_MASK, SECRET_SIG, SIG_KEY

REPO = Path(__file__).resolve().parents[2]


@dataclass
class FakeCloud:
    """The only client the fake types use: objects by ID, and a log of every call."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def put(self, kind: str, inputs: dict[str, Any], object_id: str | None = None) -> str:
        object_id = object_id or f"{kind}-{next(self._ids)}"
        self.objects[object_id] = dict(inputs)
        self.calls.append(("put", object_id))
        return object_id

    def remove(self, object_id: str) -> None:
        self.objects.pop(object_id, None)
        self.calls.append(("remove", object_id))


class Bucket(ResourceType):
    """Checked for existence, deletable: a changed input means delete + create."""

    token = "test:index/bucket:Bucket"

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> Created:
        return ctx.cloud.put("bucket", {**inputs, "tags": ctx.tags(inputs)}), {"arn": f"arn:test:{name}", "unset": None}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return resource_id in ctx.cloud.objects

    def delete(self, ctx: Context, resource_id: str, inputs: dict[str, Any]) -> None:
        ctx.cloud.remove(resource_id)


class Function(ResourceType):
    """Memory and code change in place; the name cannot change, and it cannot be deleted."""

    token = "test:index/function:Function"
    updatable_keys = frozenset({"memory", "code"})

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> Created:
        return ctx.cloud.put("function", inputs), {"version": 1}

    def update(self, ctx: Context, name: str, resource_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        ctx.cloud.put("function", inputs, resource_id)
        return {"version": 2}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return resource_id in ctx.cloud.objects


class Policy(ResourceType):
    """PUT semantics: the same call creates and overwrites the policy of its target."""

    token = "test:index/policy:Policy"
    overwrite_in_place = True

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> Created:
        return ctx.cloud.put("policy", inputs, f"policy-of-{inputs['target']}"), {}

    def delete(self, ctx: Context, resource_id: str, inputs: dict[str, Any]) -> None:
        ctx.cloud.remove(resource_id)


class Subscription(ResourceType):
    """Receives a secret endpoint; replaced (delete + create) when it changes."""

    token = "test:index/subscription:Subscription"

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> Created:
        return ctx.cloud.put("subscription", inputs), {}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return resource_id in ctx.cloud.objects

    def delete(self, ctx: Context, resource_id: str, inputs: dict[str, Any]) -> None:
        ctx.cloud.remove(resource_id)


class Anchor(ResourceType):
    """A sub-resource with the defaults: always "exists", cannot be deleted."""

    token = "test:index/anchor:Anchor"

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> Created:
        return ctx.cloud.put("anchor", inputs), {}


class Exploding(ResourceType):
    token = "test:index/exploding:Exploding"

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> Created:
        raise ValueError("quota exceeded")


FAKE_TYPES = {t.token: t() for t in (Bucket, Function, Policy, Subscription, Anchor, Exploding)}


def secret(value: str) -> dict[str, Any]:
    """A secret input in Pulumi's wire form, as mocks receive it."""
    return {SIG_KEY: SECRET_SIG, "value": value}


def program(**changes: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The declared resources of the fake program, with per-name input changes."""
    declared = {
        (Bucket.token, "logs"): {"size": 10.0, "tags": {"Name": "logs"}},
        (Function.token, "fn"): {"name": "analyzer", "memory": 128.0, "code": {"path": "/build/fn.zip"}},
        (Policy.token, "fn-policy"): {"target": "analyzer", "document": "allow-read"},
        (Subscription.token, "alerts"): {"topic": "alerts", "endpoint": secret("ops@example.com")},
        (Anchor.token, "anchor"): {"parent": "logs"},
    }
    for (token, name), inputs in list(declared.items()):
        if name in changes:
            declared[(token, name)] = {**inputs, **changes[name]}
    return declared


@dataclass
class Run:
    engine: Engine
    ids: dict[str, str]
    outputs: dict[str, dict[str, Any]]

    def actions(self) -> dict[str, str]:
        return {c.name: c.action for c in self.engine.changes}


def rollout(store: InMemoryStateStore, cloud: FakeCloud, declared: dict[tuple[str, str], dict[str, Any]],
            default_tags: dict[str, str] | None = None) -> Run:
    """What EmulatedRunner does around the program: load, declare each, prune, save."""
    ctx = Context(lambda service: {"cloud": cloud}[service], "us-east-1", "123456789012")
    engine = Engine(ctx, StackState.from_document(store.load()), registry=FAKE_TYPES)
    mocks = EmulatorMocks(engine)
    mocks.new_resource(SimpleNamespace(typ="pulumi:providers:test", name="default", custom=True,
                                       inputs={"defaultTags": json.dumps({"tags": default_tags or {}})}))
    ids, outputs = {}, {}
    try:
        for (token, name), inputs in declared.items():
            ids[name], outputs[name] = mocks.new_resource(SimpleNamespace(typ=token, name=name, inputs=inputs, custom=True))
        engine.prune()
    finally:
        store.save(engine.state().to_document())
    return Run(engine, ids, outputs)


@pytest.fixture
def cloud() -> FakeCloud:
    return FakeCloud()


@pytest.fixture
def store() -> InMemoryStateStore:
    return InMemoryStateStore()


def test_the_first_rollout_creates_everything_and_records_it(store, cloud) -> None:
    first = rollout(store, cloud, program(), default_tags={"Owner": "platform"})
    assert first.actions() == dict.fromkeys(("logs", "fn", "fn-policy", "alerts", "anchor"), "create")
    assert cloud.objects[first.ids["logs"]]["tags"] == {"Owner": "platform", "Name": "logs"}
    assert first.outputs["logs"]["arn"] == "arn:test:logs" and "unset" not in first.outputs["logs"]
    assert first.outputs["logs"]["size"] == 10.0  # outputs are the inputs plus the extras
    document = store.document
    assert document["format"] == 2 and len(bytes.fromhex(document["secret_key"])) == 32
    assert document["resources"][f"{Bucket.token}::logs"] == {
        "id": first.ids["logs"], "extra": {"arn": "arn:test:logs"}, "inputs": {"size": 10.0, "tags": {"Name": "logs"}},
    }


def test_the_second_rollout_is_all_same_and_calls_nothing(store, cloud) -> None:
    first = rollout(store, cloud, program())
    calls = len(cloud.calls)
    second = rollout(store, cloud, program())
    assert set(second.actions().values()) == {"same"}
    assert second.ids == first.ids and second.outputs == first.outputs
    assert len(cloud.calls) == calls


def test_an_updatable_change_is_applied_in_place(store, cloud) -> None:
    first = rollout(store, cloud, program())
    second = rollout(store, cloud, program(fn={"memory": 256.0}))
    assert second.actions()["fn"] == "update"
    assert second.ids["fn"] == first.ids["fn"] and cloud.objects[first.ids["fn"]]["memory"] == 256.0
    assert second.outputs["fn"]["version"] == 2
    assert {v for k, v in second.actions().items() if k != "fn"} == {"same"}


def test_a_non_updatable_change_deletes_then_creates(store, cloud) -> None:
    first = rollout(store, cloud, program())
    calls = len(cloud.calls)
    second = rollout(store, cloud, program(logs={"size": 20.0}))
    assert second.actions()["logs"] == "replace"
    assert cloud.calls[calls:] == [("remove", first.ids["logs"]), ("put", second.ids["logs"])]
    assert first.ids["logs"] not in cloud.objects and cloud.objects[second.ids["logs"]]["size"] == 20.0
    assert store.document["resources"][f"{Bucket.token}::logs"]["id"] == second.ids["logs"]


def test_an_overwrite_type_is_rewritten_in_place_without_a_delete(store, cloud) -> None:
    first = rollout(store, cloud, program())
    calls = len(cloud.calls)
    second = rollout(store, cloud, program(**{"fn-policy": {"document": "allow-all"}}))
    assert second.actions()["fn-policy"] == "replace"
    assert cloud.calls[calls:] == [("put", "policy-of-analyzer")]
    assert second.ids["fn-policy"] == first.ids["fn-policy"] and cloud.objects["policy-of-analyzer"]["document"] == "allow-all"


def test_an_overwrite_to_a_new_physical_name_removes_the_old_one(store, cloud) -> None:
    rollout(store, cloud, program())
    second = rollout(store, cloud, program(**{"fn-policy": {"target": "reporter"}}))
    assert second.ids["fn-policy"] == "policy-of-reporter"
    assert "policy-of-analyzer" not in cloud.objects and "policy-of-reporter" in cloud.objects


def test_a_resource_gone_from_the_emulator_is_created_again(store, cloud) -> None:
    first = rollout(store, cloud, program())
    cloud.remove(first.ids["logs"])  # deleted by hand
    second = rollout(store, cloud, program())
    assert second.actions()["logs"] == "create" and second.ids["logs"] != first.ids["logs"]
    assert second.ids["logs"] in cloud.objects
    assert [a for a in second.actions().values() if a != "same"] == ["create"]


def test_resources_no_longer_declared_are_pruned_and_undeletable_ones_stay_tracked(store, cloud) -> None:
    first = rollout(store, cloud, program())
    declared = {k: v for k, v in program().items() if k[1] not in ("logs", "anchor")}
    second = rollout(store, cloud, declared)
    assert [(c.name, c.action) for c in second.engine.changes if c.action != "same"] == [("logs", "delete")]
    assert first.ids["logs"] not in cloud.objects
    resources = store.document["resources"]
    assert f"{Bucket.token}::logs" not in resources
    assert resources[f"{Anchor.token}::anchor"]["id"] == first.ids["anchor"]  # cannot delete: still tracked


def test_a_change_that_cannot_be_replaced_names_the_keys_and_the_fix(store, cloud) -> None:
    rollout(store, cloud, program())
    with pytest.raises(ReplacementNotSupported) as raised:
        rollout(store, cloud, program(fn={"name": "renamed", "memory": 512.0}))
    message = str(raised.value)
    assert f"{Function.token} 'fn' changed (memory, name)" in message and "vpcpeer local down" in message


def test_an_unsupported_type_names_the_token(store, cloud) -> None:
    with pytest.raises(UnsupportedResourceType, match=r"aws:rds/instance:Instance \(db\)"):
        rollout(store, cloud, {("aws:rds/instance:Instance", "db"): {}})


def test_a_failed_rollout_saves_what_it_created_so_a_retry_creates_nothing_twice(store, cloud) -> None:
    declared = {**program(), (Exploding.token, "boom"): {}}
    with pytest.raises(EmulatedRolloutError, match=r"creating test:index/exploding:Exploding 'boom' .*quota exceeded"):
        rollout(store, cloud, declared)
    created = set(cloud.objects)
    assert len(store.document["resources"]) == 5
    retry = rollout(store, cloud, program())
    assert set(retry.actions().values()) == {"same"} and set(cloud.objects) == created


def test_a_changed_secret_changes_the_recorded_hash_and_replaces_the_resource(store, cloud) -> None:
    first = rollout(store, cloud, program())
    key = f"{Subscription.token}::alerts"
    before = store.document["resources"][key]["inputs"]["endpoint"]
    second = rollout(store, cloud, program(alerts={"endpoint": secret("oncall@example.org")}))
    after = store.document["resources"][key]["inputs"]["endpoint"]
    assert set(before) == set(after) == {SECRET_DIGEST_KEY} and before != after
    assert after[SECRET_DIGEST_KEY] == secret_digest(store.document["secret_key"], "oncall@example.org")
    assert second.actions()["alerts"] == "replace"
    assert first.ids["alerts"] not in cloud.objects
    assert cloud.objects[second.ids["alerts"]]["endpoint"] == "oncall@example.org"  # the type gets the plain value
    saved = json.dumps(store.document)
    assert "oncall@example.org" not in saved and "ops@example.com" not in saved


def test_the_same_secret_hashes_the_same_across_runs_because_the_key_is_kept(store, cloud) -> None:
    rollout(store, cloud, program())
    key, digest = store.document["secret_key"], store.document["resources"][f"{Subscription.token}::alerts"]["inputs"]
    second = rollout(store, cloud, program())
    assert store.document["secret_key"] == key
    assert store.document["resources"][f"{Subscription.token}::alerts"]["inputs"] == digest
    assert second.actions()["alerts"] == "same"


def test_the_hash_is_keyed_so_equal_secrets_differ_between_stacks() -> None:
    one, other = StackState.new(), StackState.new()
    assert one.secret_key != other.secret_key
    assert secret_digest(one.secret_key, "ops@example.com") != secret_digest(other.secret_key, "ops@example.com")
    assert secret_digest(one.secret_key, "ops@example.com") == secret_digest(one.secret_key, "ops@example.com")


def test_public_inputs_show_hashed_secrets_masked() -> None:
    recorded = {"topic": "alerts", "endpoint": {SECRET_DIGEST_KEY: "ab" * 32}, "list": [{SECRET_DIGEST_KEY: "cd"}]}
    assert public_inputs(recorded) == {"topic": "alerts", "endpoint": SECRET_MASK, "list": [SECRET_MASK]}


def test_the_flat_format_of_earlier_versions_is_read(cloud) -> None:
    legacy = {f"{Bucket.token}::logs": {"id": "bucket-legacy", "extra": {"arn": "arn:test:logs"},
                                        "inputs": {"size": 10.0, "tags": {"Name": "logs"}}}}
    cloud.objects["bucket-legacy"] = {}
    store = InMemoryStateStore(legacy)
    run = rollout(store, cloud, {(Bucket.token, "logs"): program()[(Bucket.token, "logs")]})
    assert run.actions() == {"logs": "same"} and run.ids["logs"] == "bucket-legacy"
    assert store.document["format"] == 2 and store.document["secret_key"]


def test_a_state_document_from_a_newer_version_is_refused_with_the_fix() -> None:
    with pytest.raises(UnreadableState, match="format 3.*vpcpeer local down"):
        StackState.from_document({"format": 3, "secret_key": "00", "resources": {}})


def test_data_sources_come_from_the_clients_and_unknown_ones_are_named() -> None:
    sts = SimpleNamespace(get_caller_identity=lambda: {"Account": "111122223333", "Arn": "arn:aws:iam::111122223333:root",
                                                       "UserId": "AIDA"})
    engine = Engine(Context(lambda service: {"sts": sts}[service], "eu-west-1", "111122223333"), StackState.new(),
                    registry=FAKE_TYPES)
    mocks = EmulatorMocks(engine)
    answer, _ = mocks.call(SimpleNamespace(token="aws:index/getCallerIdentity:getCallerIdentity", args={}))
    assert answer["accountId"] == "111122223333" and answer["id"] == "111122223333"
    with pytest.raises(UnsupportedDataSource, match="aws:rds/getInstance:getInstance"):
        mocks.call(SimpleNamespace(token="aws:rds/getInstance:getInstance", args={}))


def test_components_pass_through_without_touching_the_engine(store, cloud) -> None:
    engine = Engine(Context(lambda service: cloud, "us-east-1", "123456789012"), StackState.new(), registry=FAKE_TYPES)
    result = EmulatorMocks(engine).new_resource(SimpleNamespace(typ="vpcpeer:network:VpcNetwork", name="vpc-a",
                                                                inputs={"x": 1}, custom=False))
    assert result == (None, {"x": 1}) and engine.changes == [] and cloud.calls == []


@pytest.mark.parametrize("token", sorted(REGISTRY))
def test_every_registered_type_is_consistent(token: str) -> None:
    rtype = REGISTRY[token]
    assert rtype.token == token and token.startswith("aws:")
    assert (type(rtype).create is not ResourceType.create) != bool(rtype.preview_only)
    assert not rtype.updatable_keys or rtype.can_update
    assert not rtype.overwrite_in_place or rtype.can_delete  # a PUT-style type must still be prunable


def test_a_preview_only_type_says_why_the_emulator_cannot_create_it() -> None:
    job = REGISTRY["aws:signer/signingJob:SigningJob"]
    with pytest.raises(UnsupportedResourceType, match="SigningJob \\(sign\\): the embedded AWS .* code_signing: off"):
        job.create(None, "sign", {})


def test_the_subscription_can_be_replaced_when_its_secret_endpoint_changes() -> None:
    subscription = REGISTRY["aws:sns/topicSubscription:TopicSubscription"]
    assert subscription.can_delete and type(subscription).exists is not ResourceType.exists


def test_the_engine_and_registry_import_without_boto3_or_pulumi() -> None:
    code = ("import sys, infra.emulation.engine, infra.emulation.registry; "
            "print(sorted(m for m in ('boto3', 'botocore', 'pulumi', 'moto') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_get_runner_requires_both_the_clients_and_the_state_store() -> None:
    from infra.runner import ModeNotAvailable, get_runner

    with pytest.raises(ModeNotAvailable, match=r"needs the local AWS endpoint.*pass state_store="):
        get_runner("emulated", client=lambda service: None)
    with pytest.raises(ModeNotAvailable, match=r"pass client= .* and state_store="):
        get_runner("emulated")
