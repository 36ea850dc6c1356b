"""The emulated rollout's engine: diff what the program declares against the recorded
state and apply the difference through the registry's ResourceTypes.

For each declared resource the engine decides one action: ``create`` (new, or recorded
but gone from the emulator), ``same`` (recorded inputs unchanged), ``update`` (only keys
the type changes in place differ), ``replace`` (overwrite for PUT-style types, otherwise
delete + create). ``prune`` then deletes what the program no longer declares; what
cannot be deleted stays recorded, so it is never forgotten.

Secrets are recorded as an HMAC-SHA256 of their plain value under a random per-stack key
kept in the state document: a changed secret changes the recorded inputs (and replaces
what depends on it) while the plain value is never stored.

Nothing here imports boto3 or pulumi: clients come from an injected factory, and
``EmulatorMocks`` speaks the Pulumi mocks protocol by duck typing.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from infra.emulation.errors import (
    EmulatedRolloutError,
    ReplacementNotSupported,
    UnreadableState,
    UnsupportedDataSource,
    UnsupportedResourceType,
)
from infra.emulation.registry import REGISTRY, ResourceType
from infra.wire import SECRET_MASK, is_secret, unwrap_secrets

STATE_FORMAT = 2
# A recorded secret: {SECRET_DIGEST_KEY: hex HMAC-SHA256 of the plain value}.
SECRET_DIGEST_KEY = "hmacSha256"


@dataclass
class Context:
    """Clients and facts shared by the resource types.

    ``ctx.ec2``, ``ctx.lambda_`` ... return the client of that service (one per service,
    created on first use by ``clients(service)``).
    """

    clients: Callable[[str], Any]
    region: str
    account_id: str
    default_tags: dict[str, str] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, service: str) -> Any:
        """The client of ``service`` ("ec2", "lambda", ...)."""
        with self._lock:
            if service not in self._cache:
                self._cache[service] = self.clients(service)
            return self._cache[service]

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        return self.client(service.removesuffix("_"))  # ``lambda`` is a keyword: ctx.lambda_

    def tags(self, inputs: Mapping[str, Any]) -> dict[str, str]:
        """The resource's tags over the provider's default tags, as AWS would store them."""
        return {**self.default_tags, **(inputs.get("tags") or {})}


class StateStore(Protocol):
    """Where the rollout keeps its state document between runs (one store per stack)."""

    def load(self) -> dict[str, Any] | None:
        """The last saved document, or None before the first rollout."""
        ...

    def save(self, state: dict[str, Any]) -> None:
        """Replace the stored document."""
        ...


class InMemoryStateStore:
    """A StateStore in a dict, for tests; documents pass through JSON as a real store's would."""

    def __init__(self, document: dict[str, Any] | None = None) -> None:
        self.document = document

    def load(self) -> dict[str, Any] | None:
        return None if self.document is None else json.loads(json.dumps(self.document))

    def save(self, state: dict[str, Any]) -> None:
        self.document = json.loads(json.dumps(state))


@dataclass(frozen=True)
class Record:
    """What the rollout knows of one resource: its ID, extra outputs and recorded inputs."""

    id: str
    extra: dict[str, Any]
    inputs: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "extra": self.extra, "inputs": self.inputs}

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> Record:
        return cls(entry["id"], dict(entry.get("extra") or {}), dict(entry.get("inputs") or {}))


@dataclass
class StackState:
    """The state document: the secret-hashing key and a Record per ``<token>::<name>``."""

    secret_key: str
    resources: dict[str, Record] = field(default_factory=dict)

    @classmethod
    def new(cls) -> StackState:
        return cls(secrets.token_hex(32))

    @classmethod
    def from_document(cls, document: Mapping[str, Any] | None) -> StackState:
        """Read a saved document; the flat format of earlier versions gets a new key."""
        if not document:
            return cls.new()
        if "format" not in document:  # format 1: {"<token>::<name>": {"id", "extra", "inputs"}}
            return cls(secrets.token_hex(32), {k: Record.from_json(v) for k, v in document.items()})
        if document["format"] != STATE_FORMAT or not document.get("secret_key"):
            raise UnreadableState(
                f"the emulated rollout's state is in format {document['format']!r}, this version reads {STATE_FORMAT}; "
                "reset the local stack (`vpcpeer local down`) and roll out again"
            )
        return cls(document["secret_key"], {k: Record.from_json(v) for k, v in document.get("resources", {}).items()})

    def to_document(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "secret_key": self.secret_key,
            "resources": {k: r.to_json() for k, r in sorted(self.resources.items())},
        }


def secret_digest(secret_key: str, plain: Any) -> str:
    """HMAC-SHA256 of a secret's plain value under the stack's key."""
    message = json.dumps(plain, sort_keys=True, default=_archive_path).encode()
    return hmac.new(bytes.fromhex(secret_key), message, "sha256").hexdigest()


def _archive_path(value: Any) -> Any:
    """FileArchive/FileAsset inputs are recorded by path (the code hash is its own input)."""
    return {"path": str(getattr(value, "path", value))}


def recorded_inputs(inputs: Mapping[str, Any], secret_key: str) -> dict[str, Any]:
    """Inputs as JSON data to record and compare: archives by path, secrets as keyed hashes."""

    def hashed(value: Any) -> Any:
        if is_secret(value):
            return {SECRET_DIGEST_KEY: secret_digest(secret_key, unwrap_secrets(value.get("value")))}
        if isinstance(value, Mapping):
            return {k: hashed(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [hashed(v) for v in value]
        return value

    return json.loads(json.dumps(hashed(inputs), sort_keys=True, default=_archive_path))


def public_inputs(recorded: Any) -> Any:
    """Recorded inputs with each secret's hash shown as SECRET_MASK, safe to print."""
    if isinstance(recorded, dict):
        if set(recorded) == {SECRET_DIGEST_KEY}:
            return SECRET_MASK
        return {k: public_inputs(v) for k, v in recorded.items()}
    if isinstance(recorded, list):
        return [public_inputs(v) for v in recorded]
    return recorded


def changed_keys(before: Mapping[str, Any], after: Mapping[str, Any]) -> frozenset[str]:
    """Top-level input keys whose recorded values differ."""
    return frozenset(k for k in set(before) | set(after) if before.get(k) != after.get(k))


@dataclass(frozen=True)
class Change:
    """One action the rollout took: create | same | update | replace | delete."""

    token: str
    name: str
    action: str


class Engine:
    """Applies each declared resource against the recorded state, then prunes the rest.

    Thread-safe: Pulumi registers resources concurrently. ``state()`` is valid at any
    moment, so a rollout that fails half-way can still save what it created.
    """

    def __init__(
        self,
        ctx: Context,
        state: StackState,
        *,
        registry: Mapping[str, ResourceType] = REGISTRY,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.registry = registry
        self.progress = progress
        self._secret_key = state.secret_key
        self._previous = dict(state.resources)
        self._current: dict[str, Record] = {}
        self._deleted: set[str] = set()
        self._changes: list[Change] = []
        self._lock = threading.Lock()

    @property
    def changes(self) -> list[Change]:
        with self._lock:
            return list(self._changes)

    def state(self) -> StackState:
        """Everything known to exist: this run's resources plus earlier ones not deleted."""
        with self._lock:
            resources = {k: r for k, r in self._previous.items() if k not in self._deleted}
            resources.update(self._current)
        return StackState(self._secret_key, resources)

    def configure_provider(self, inputs: Mapping[str, Any]) -> None:
        """Take the provider's default tags, which every taggable resource inherits."""
        default_tags = inputs.get("defaultTags") or {}
        if isinstance(default_tags, str):  # provider config arrives JSON-encoded
            default_tags = json.loads(default_tags)
        self.ctx.default_tags.update(default_tags.get("tags") or {})

    def declare(self, token: str, name: str, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """Make one declared resource real; return its ID and outputs (inputs plus extras)."""
        rtype = self.registry.get(token)
        if rtype is None:
            raise UnsupportedResourceType(
                f"the emulated rollout cannot create {token} ({name}); add a ResourceType for it in infra/emulation/"
            )
        key = f"{token}::{name}"
        recorded = recorded_inputs(inputs, self._secret_key)
        plain = unwrap_secrets(dict(inputs))
        with self._lock:
            previous = self._previous.get(key)
        action = self._plan(rtype, name, previous, recorded)

        if previous is None or action == "create":
            resource_id, extra = self._create(rtype, name, plain)
        elif action == "same":
            resource_id, extra = previous.id, previous.extra
        elif action == "update":
            resource_id = previous.id
            extra = {**previous.extra, **self._guard("updating", token, name,
                                                     lambda: rtype.update(self.ctx, name, resource_id, plain))}
        elif rtype.overwrite_in_place:
            resource_id, extra = self._create(rtype, name, plain)
            if previous.id != resource_id and rtype.can_delete:
                self._delete(rtype, key, previous)  # the overwrite went to a new physical name
        else:
            self._delete(rtype, key, previous)
            resource_id, extra = self._create(rtype, name, plain)
        extra = {k: v for k, v in extra.items() if v is not None}

        with self._lock:
            self._current[key] = Record(resource_id, extra, recorded)
            self._changes.append(Change(token, name, action))
        self._report(action, token, name)
        return resource_id, {**inputs, **extra}

    def _create(self, rtype: ResourceType, name: str, plain: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return self._guard("creating", rtype.token, name, lambda: rtype.create(self.ctx, name, plain))

    def _plan(self, rtype: ResourceType, name: str, previous: Record | None, recorded: dict[str, Any]) -> str:
        if previous is None:
            return "create"
        if not self._guard("checking", rtype.token, name, lambda: rtype.exists(self.ctx, previous.id)):
            return "create"  # recorded, but gone from the emulator
        if previous.inputs == recorded:
            return "same"
        changed = changed_keys(previous.inputs, recorded)
        if rtype.can_update and changed <= rtype.updatable_keys:
            return "update"
        if rtype.overwrite_in_place or rtype.can_delete:
            return "replace"
        raise ReplacementNotSupported(
            f"{rtype.token} {name!r} changed ({', '.join(sorted(changed))}) and cannot be replaced in the emulator; "
            "reset it with `vpcpeer local down` and roll out again"
        )

    def prune(self) -> list[Change]:
        """Delete what earlier rollouts created and this program no longer declares."""
        with self._lock:
            stale = sorted(k for k in self._previous if k not in self._current and k not in self._deleted)
        removed = []
        for key in stale:
            token, name = key.split("::", 1)
            rtype = self.registry.get(token)
            if rtype is None or not rtype.can_delete:
                continue  # kept in state(): still there, still tracked
            self._delete(rtype, key, self._previous[key])
            removed.append(Change(token, name, "delete"))
            self._report("delete", token, name)
        with self._lock:
            self._changes.extend(removed)
        return removed

    def repair(self) -> list[Change]:
        """Undo drift the inputs check cannot see (``ResourceType.repair``), for every resource
        this rollout declared: the rollout the drift sensor asks for then really repairs."""
        with self._lock:
            current = sorted(self._current.items())
        declared: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
        for key, record in current:
            declared.setdefault(key.split("::", 1)[0], []).append((record.id, record.inputs))
        repaired = []
        for key, record in current:
            token, name = key.split("::", 1)
            rtype = self.registry[token]
            undone = self._guard("repairing", token, name, lambda: rtype.repair(self.ctx, record.id, declared))
            if undone:
                repaired.append(Change(token, name, "repair"))
                if self.progress:
                    self.progress(f"  repair  {token.rsplit(':', 1)[1]:28s} {name} ({undone} undeclared change(s) undone)")
        with self._lock:
            self._changes.extend(repaired)
        return repaired

    def _delete(self, rtype: ResourceType, key: str, record: Record) -> None:
        name = key.split("::", 1)[1]
        self._guard("deleting", rtype.token, name, lambda: rtype.delete(self.ctx, record.id, record.inputs))
        with self._lock:
            self._deleted.add(key)

    @staticmethod
    def _guard(verb: str, token: str, name: str, call: Callable[[], Any]) -> Any:
        """Run one emulator call; a failure is re-raised naming the resource."""
        try:
            return call()
        except EmulatedRolloutError:
            raise
        except Exception as exc:  # noqa: BLE001 - re-raised with the resource named
            raise EmulatedRolloutError(f"{verb} {token} {name!r} in the emulator failed: {exc}") from exc

    def _report(self, action: str, token: str, name: str) -> None:
        if self.progress and action != "same":
            self.progress(f"  {action:7s} {token.rsplit(':', 1)[1]:28s} {name}")

    def invoke(self, token: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """Answer the data sources the program calls, from the emulator."""
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            identity = self.ctx.sts.get_caller_identity()
            return {"accountId": identity["Account"], "arn": identity["Arn"], "userId": identity["UserId"],
                    "id": identity["Account"]}
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws", "id": "aws"}
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            zones = self.ctx.ec2.describe_availability_zones(
                Filters=[{"Name": "state", "Values": [args.get("state") or "available"]}])["AvailabilityZones"]
            return {"names": [z["ZoneName"] for z in zones], "zoneIds": [z["ZoneId"] for z in zones],
                    "id": self.ctx.region, "groupNames": [self.ctx.region]}
        raise UnsupportedDataSource(f"the emulated rollout cannot answer data source {token}")


class EmulatorMocks:
    """Pulumi's runtime mocks protocol over an Engine (``pulumi.runtime.set_mocks(EmulatorMocks(engine))``).

    Duck-typed rather than a ``pulumi.runtime.Mocks`` subclass so the engine imports
    without pulumi; the methods are the ones Pulumi's MockMonitor calls.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def new_resource(self, args: Any) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        if not args.custom:
            return None, inputs
        if args.typ.startswith("pulumi:providers:"):
            self.engine.configure_provider(inputs)
            return f"{args.name}-provider", inputs
        return self.engine.declare(args.typ, args.name, inputs)

    def call(self, args: Any) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        return self.engine.invoke(args.token, dict(args.args or {})), []

    def register_transform(self, transform: Any) -> None:
        """Stack transforms are not run under mocks (as in Pulumi's own Mocks)."""

    def register_invoke_transform(self, transform: Any) -> None:
        """Invoke transforms are not run under mocks (as in Pulumi's own Mocks)."""
