"""The embedded AWS server: moto whose state survives restarts.

``LocalAws.start()`` (``local/server.py``) runs this module as
``python -m vpcpeer_orchestration.local.moto_process --home HOME --port PORT``. It restores
moto's backends from ``HOME/state/``, serves moto on 127.0.0.1, then writes
``HOME/server.json`` so other processes find it. State is snapshotted to ``HOME/state/``
shortly after changes (debounced), on ``POST /vpcpeer-api/snapshot`` (``LocalAws.flush``)
and on SIGTERM/SIGINT; a SIGKILL loses at most the changes since the last snapshot.

State directory: ``generation`` (the id of this state, text) and ``moto.pickle``: two
pickles back to back, a small header (format, generation, moto version, services) and the
payload, ``{(module, attribute): {account: AccountSpecificBackend}}`` for every moto
``BackendDict`` that holds a region backend. Both files are written atomically (temporary
file, fsync, rename). A home whose ``generation`` has no readable snapshot of that
generation refuses to start (exit status ``EXIT_STATE_LOST``): serving an empty AWS under
an id that promised the old state would let the Dagster side trust resources that are gone.

Consistency: requests pass a gate one at a time (moto's models are not safe for concurrent
conditional writes); a snapshot holds it exclusively only while pickling into memory and
writes the file after releasing it. SQS long polls step aside while they sleep, so they
never hold up other requests or a snapshot.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import importlib
import io
import json
import logging
import os
import pickle
import secrets
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qs

from vpcpeer_orchestration.local.server import EXIT_STATE_LOST, SNAPSHOT_PATH, LocalAws, healthy

HOST = "127.0.0.1"
SNAPSHOT_FILENAME = "moto.pickle"
GENERATION_FILENAME = "generation"
# Bumped when the layout of the snapshot changes; an unknown format is a lost state.
SNAPSHOT_FORMAT = 1
# A snapshot is written once the server has been quiet this long after a change...
QUIET_SECONDS = 0.5
# ... or at the latest this long after the first unsaved change, however busy it is.
MAX_DELAY_SECONDS = 5.0
# How long a snapshot waits for running requests before it pickles regardless
# (retrying if a straggler changes a collection under it).
EXCLUSIVE_WAIT_SECONDS = 5.0
PICKLE_ATTEMPTS = 3
# After a failed automatic snapshot, the next attempt waits this long.
RETRY_SECONDS = 5.0
AUTOSAVE_POLL_SECONDS = 0.1
# How often the serving and main loops look up from waiting (bounds how long a stop takes).
POLL_SECONDS = 0.1
# Requests whose action starts with one of these only read state.
READ_ONLY_ACTION_PREFIXES = ("Describe", "List", "Get", "Filter", "Query", "Scan", "BatchGet", "Lookup", "Search")
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Class-level registries of weak references to EC2 backends (cross-account/region VPC
# peering and transit gateways look peers up there); restored backends join them.
WEAKREF_REGISTRIES = (
    ("moto.ec2.models.vpcs", "VPCBackend", "vpc_refs"),
    ("moto.ec2.models.vpc_peering_connections", "VPCPeeringConnectionBackend", "vpc_pcx_refs"),
    ("moto.ec2.models.transit_gateway_attachments", "TransitGatewayAttachmentBackend", "backend_refs"),
)

log = logging.getLogger("vpcpeer.moto_process")

Locator = tuple[str, str]  # (module, attribute) of a BackendDict
# BackendDict id -> where it lives in this process.
_LOCATIONS: dict[str, Locator] = {}


class StateLost(RuntimeError):
    """The home has a generation, but no snapshot of it that can be restored."""


class SnapshotError(RuntimeError):
    """moto's state could not be pickled or written."""


class UnknownBackend(LookupError):
    """A snapshot names a moto BackendDict this moto does not have (moto was upgraded)."""


# -- pickling moto's state ------------------------------------------------------------------


def _backend_dict_type() -> type:
    from moto.core.base_backend import BackendDict

    return BackendDict


def _locate(backend_dict: Any) -> Locator:
    """Where a BackendDict lives, so a new process finds its own copy to restore into."""
    cached = _LOCATIONS.get(backend_dict._id)
    if cached:
        return cached
    home = backend_dict.backend.__module__
    parents = [home.rsplit(".", depth)[0] for depth in range(1, home.count("."))]
    others = sorted(name for name in list(sys.modules) if name.startswith("moto."))
    for name in [home, *parents, *others]:
        module = sys.modules.get(name)
        for attribute, value in list(vars(module).items()) if module else ():
            if value is backend_dict:
                _LOCATIONS[backend_dict._id] = (name, attribute)
                return name, attribute
    raise SnapshotError(f"cannot find the module holding moto's {backend_dict.service_name!r} backends")


def live_backend_dict(module: str, attribute: str) -> Any:
    """The BackendDict of this process at ``module.attribute`` (what a pickled reference resolves to)."""
    value = getattr(importlib.import_module(module), attribute, None)
    if not isinstance(value, _backend_dict_type()):
        raise UnknownBackend(f"moto has no backends at {module}.{attribute}")
    return value


def _new_instance(factory: Callable[[], Any]) -> Callable[[Any], tuple]:
    """Reduce to a fresh instance: a lock guards nothing once pickled, so it comes back released."""
    return lambda obj: (factory, ())


def _reduce_condition(obj: threading.Condition) -> tuple:
    # Around its (fresh) lock, so a lock the owner also holds directly stays the same lock.
    return threading.Condition, (obj._lock,)  # type: ignore[attr-defined]


def _reduce_weak_values(obj: weakref.WeakValueDictionary) -> tuple:
    # The values are pickled (and kept alive) by the objects that own them.
    return weakref.WeakValueDictionary, (dict(obj.items()),)


def _reduce_weak_keys(obj: weakref.WeakKeyDictionary) -> tuple:
    return weakref.WeakKeyDictionary, (dict(obj.items()),)


def _reduce_defaultdict(obj: collections.defaultdict) -> Any:
    """A defaultdict whose factory is a lambda (``defaultdict(lambda: {})``) gets the factory's type.

    Only factories that build an empty builtin container qualify: anything else would
    change behaviour after a restore, so it fails loudly instead.
    """
    factory = obj.default_factory
    qualname = getattr(factory, "__qualname__", "")
    if factory is None or ("<lambda>" not in qualname and "<locals>" not in qualname):
        return NotImplemented
    product = factory()
    if type(product) not in (dict, list, set, tuple, str, int) or product:
        raise SnapshotError(f"a defaultdict with factory {qualname} cannot be pickled")
    return collections.defaultdict, (type(product),), None, None, iter(obj.items())


def private_key_from_der(der: bytes) -> Any:
    """Rebuild a private key (cryptography's loaders are Rust functions pickle cannot name)."""
    from cryptography.hazmat.primitives import serialization

    return serialization.load_der_private_key(der, password=None)


def public_key_from_der(der: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_der_public_key(der)


def _reduce_private_key(obj: Any) -> tuple:
    from cryptography.hazmat.primitives import serialization

    der = obj.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return private_key_from_der, (der,)


def _reduce_public_key(obj: Any) -> tuple:
    from cryptography.hazmat.primitives import serialization

    return public_key_from_der, (obj.public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo),)


def _reduce_backend_dict(obj: Any) -> tuple:
    # Pickled by reference: whoever points at a BackendDict must point at the live one.
    return live_backend_dict, _locate(obj)


@functools.cache
def _reducers() -> tuple[tuple[type, Callable[[Any], Any]], ...]:
    """What pickle refuses in moto's state, and how each is rebuilt: one table."""
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519

    private_keys = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, dsa.DSAPrivateKey, ed25519.Ed25519PrivateKey,
                    ed448.Ed448PrivateKey, x25519.X25519PrivateKey, x448.X448PrivateKey)
    public_keys = (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, dsa.DSAPublicKey, ed25519.Ed25519PublicKey,
                   ed448.Ed448PublicKey, x25519.X25519PublicKey, x448.X448PublicKey)
    return (
        (type(threading.RLock()), _new_instance(threading.RLock)),
        (type(threading.Lock()), _new_instance(threading.Lock)),
        (threading.Condition, _reduce_condition),
        (weakref.WeakValueDictionary, _reduce_weak_values),
        (weakref.WeakKeyDictionary, _reduce_weak_keys),
        (collections.defaultdict, _reduce_defaultdict),
        *((key_type, _reduce_private_key) for key_type in private_keys),
        *((key_type, _reduce_public_key) for key_type in public_keys),
        (_backend_dict_type(), _reduce_backend_dict),
    )


@functools.cache
def _reducer_for(cls: type) -> Callable[[Any], Any] | None:
    # issubclass, not a dispatch table: cryptography's keys are Rust types registered
    # with abstract base classes.
    for base, reducer in _reducers():
        if issubclass(cls, base):
            return reducer
    return None


class StatePickler(pickle.Pickler):
    """A pickler of moto's backends that rebuilds what plain pickle refuses.

    A private reducer table rather than ``copyreg``: moto deep-copies its own models
    (``copy.deepcopy`` reads ``copyreg``), and those copies must keep their locks and keys.
    """

    def __init__(self, file: Any) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)

    def reducer_override(self, obj: Any) -> Any:
        reducer = _reducer_for(type(obj))
        return NotImplemented if reducer is None else reducer(obj)


def _dumps(value: Any) -> bytes:
    buffer = io.BytesIO()
    StatePickler(buffer).dump(value)
    return buffer.getvalue()


@dataclass(frozen=True)
class CapturedState:
    """moto's backends pickled into memory, the services they hold, and the ones left out."""

    payload: bytes
    services: tuple[str, ...]
    skipped: tuple[str, ...]


def _loaded_backends() -> dict[Locator, dict[str, Any]]:
    """Every BackendDict with at least one region backend, as plain dicts of account backends."""
    from moto.core.base_backend import BackendDict, backend_lock

    with backend_lock:
        instances = list(BackendDict._instances)
    return {_locate(bd): dict(bd) for bd in instances if any(len(accounts) for accounts in list(bd.values()))}


def _service(locator: Locator) -> str:
    return locator[0].split(".")[1]


def capture_state() -> CapturedState:
    """Pickle every loaded backend into memory.

    One pickle for all services keeps objects shared between them shared after a restore.
    A service that cannot be pickled is left out (and named) rather than costing the others.
    """
    backends = _loaded_backends()
    payload, skipped = _pickle_backends(backends)
    return CapturedState(payload, tuple(sorted({_service(locator) for locator in backends})), tuple(skipped))


# What pickling raises for an object it cannot handle (SnapshotError: one of our reducers).
UNPICKLABLE = (TypeError, AttributeError, pickle.PicklingError, RecursionError, SnapshotError)


def _pickle_backends(backends: dict[Locator, dict[str, Any]]) -> tuple[bytes, list[str]]:
    """The payload of ``backends``, dropping (from ``backends``) the ones that cannot be pickled."""
    try:
        return _dumps_consistently(backends), []
    except UNPICKLABLE:
        pass
    skipped = []
    for locator, accounts in list(backends.items()):
        try:
            _dumps_consistently(accounts)
        except UNPICKLABLE as exc:
            skipped.append(f"{_service(locator)} ({type(exc).__name__}: {exc})")
            del backends[locator]
    return _dumps_consistently(backends), skipped


def _dumps_consistently(value: Any) -> bytes:
    """Pickle, retrying when a straggling request changed a collection under the pickler."""
    attempt = 1
    while True:
        try:
            return _dumps(value)
        except RecursionError:
            raise
        except RuntimeError as exc:  # "dictionary changed size during iteration" and the like
            if attempt == PICKLE_ATTEMPTS:
                raise SnapshotError(f"moto's state kept changing while it was pickled: {exc}") from exc
            attempt += 1


def restore_state(payload: dict[Locator, dict[str, Any]]) -> int:
    """Replace the contents of the live BackendDicts with the restored ones; returns the region backends."""
    from moto.core.base_backend import BackendDict, backend_lock

    registries = []
    for module, name, attribute in WEAKREF_REGISTRIES:
        # Not imported by the unpickling: no restored backend is an instance of its classes.
        with contextlib.suppress(AttributeError):
            mixin = getattr(sys.modules.get(module), name)
            registries.append((mixin, getattr(mixin, attribute)))
    count = 0
    with backend_lock:
        for locator, accounts in payload.items():
            live = live_backend_dict(*locator)
            dict.clear(live)
            dict.update(live, accounts)
            if live not in BackendDict._instances:
                BackendDict._instances.append(live)
            for account in accounts.values():
                for backend in account.values():
                    count += 1
                    for mixin, registry in registries:
                        if isinstance(backend, mixin):
                            registry[type(backend)].add(weakref.ref(backend))
    return count


# -- the state directory ----------------------------------------------------------------------


def write_atomically(path: Path, chunks: Iterable[bytes | memoryview]) -> int:
    """Write a file so a crash leaves the old or the new one, never half of either; returns its size."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    size = 0
    try:
        with open(temporary, "wb") as handle:
            for chunk in chunks:
                size += handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return size


@dataclass(frozen=True)
class Restored:
    """What start-up found in the state directory."""

    generation: str
    new: bool
    snapshot_bytes: int
    services: tuple[str, ...]
    region_backends: int
    seconds: float


@dataclass(frozen=True)
class StateDirectory:
    """``HOME/state``: the generation file and the snapshot of that generation."""

    path: Path

    @property
    def generation_path(self) -> Path:
        return self.path / GENERATION_FILENAME

    @property
    def snapshot_path(self) -> Path:
        return self.path / SNAPSHOT_FILENAME

    def write_snapshot(self, generation: str, state: CapturedState) -> int:
        """Write the header and the payload; returns the snapshot's size in bytes."""
        from moto import __version__ as moto_version

        header = pickle.dumps({"format": SNAPSHOT_FORMAT, "generation": generation, "saved_at": time.time(),
                               "moto": moto_version, "services": list(state.services)},
                              protocol=pickle.HIGHEST_PROTOCOL)
        return write_atomically(self.snapshot_path, (header, memoryview(state.payload)))

    def _lost(self, generation: str, why: str) -> StateLost:
        home = self.path.parent
        return StateLost(f"the embedded AWS at {home} lost its state (generation {generation} {why}): nothing can "
                         f"be recovered; run `vpcpeer local down --purge` to start over")

    def _read_snapshot(self, expected: str | None) -> tuple[str, dict[Locator, dict[str, Any]]]:
        """The snapshot's generation and payload; StateLost if it is unreadable or of another generation."""
        label = expected or "unknown"
        try:
            with open(self.snapshot_path, "rb") as handle:
                header = pickle.load(handle)
                if not isinstance(header, dict) or header.get("format") != SNAPSHOT_FORMAT:
                    raise self._lost(label, f"has a snapshot in an unknown format ({self.snapshot_path})")
                generation = str(header.get("generation"))
                if expected is not None and generation != expected:
                    raise self._lost(expected, f"has a snapshot of generation {generation} instead")
                payload = pickle.load(handle)
        except FileNotFoundError:
            raise self._lost(label, "has no snapshot") from None
        except (pickle.UnpicklingError, EOFError, ImportError, AttributeError, TypeError, ValueError,
                LookupError) as exc:
            raise self._lost(label, f"has an unreadable snapshot: {type(exc).__name__}: {exc}") from exc
        return generation, payload

    def open(self) -> Restored:
        """Restore the saved generation into moto, or start a new one; StateLost if it cannot be restored.

        A snapshot without a generation file is adopted: the snapshot is written first, so
        a crash between the two writes of a new generation leaves exactly that.
        """
        started = time.monotonic()
        self.path.mkdir(parents=True, exist_ok=True)
        expected = self.generation_path.read_text().strip() if self.generation_path.is_file() else None
        if expected is None and not self.snapshot_path.exists():
            generation = secrets.token_hex(6)
            size = self.write_snapshot(generation, capture_state())
            write_atomically(self.generation_path, [generation.encode()])
            return Restored(generation, True, size, (), 0, time.monotonic() - started)
        generation, payload = self._read_snapshot(expected or None)
        try:
            count = restore_state(payload)
        except UnknownBackend as exc:
            raise self._lost(generation, f"cannot be restored by this moto: {exc}") from exc
        if not expected:
            write_atomically(self.generation_path, [generation.encode()])
        services = tuple(sorted({_service(locator) for locator in payload}))
        return Restored(generation, False, self.snapshot_path.stat().st_size, services, count,
                        time.monotonic() - started)


# -- serving --------------------------------------------------------------------------------


class RequestGate:
    """Requests take turns through it; a snapshot takes it alone (new requests wait while a snapshot waits).

    One request at a time: moto's models check and write without locks of their own, so two
    concurrent conditional writes (a DynamoDB ConditionExpression, an SQS receive) could both
    succeed where AWS lets one. Serving them in turn gives the atomicity AWS promises; a
    request that sleeps (an SQS long poll) steps aside meanwhile.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._sharers = 0
        self._exclusive = False
        self._waiting_exclusive = 0
        self._local = threading.local()

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        self._acquire_shared()
        self._local.sharing = True
        try:
            yield
        finally:
            self._local.sharing = False
            self._release_shared()

    @contextlib.contextmanager
    def stepped_aside(self) -> Iterator[None]:
        """Give up this thread's share for a while (an SQS long poll sleeping) so snapshots can run."""
        if not getattr(self._local, "sharing", False):
            yield
            return
        self._release_shared()
        try:
            yield
        finally:
            self._acquire_shared()

    def _acquire_shared(self) -> None:
        with self._condition:
            self._condition.wait_for(lambda: not self._exclusive and not self._waiting_exclusive and not self._sharers)
            self._sharers += 1

    def _release_shared(self) -> None:
        with self._condition:
            self._sharers -= 1
            self._condition.notify_all()

    def idle(self) -> bool:
        with self._condition:
            return not self._sharers

    def acquire_exclusive(self, timeout: float) -> bool:
        """Take the gate alone; after ``timeout`` take it anyway (False: requests still run)."""
        with self._condition:
            self._waiting_exclusive += 1
            try:
                alone = self._condition.wait_for(lambda: not self._exclusive and not self._sharers, timeout)
                if not alone:
                    self._condition.wait_for(lambda: not self._exclusive)
                self._exclusive = True
                return alone
            finally:
                self._waiting_exclusive -= 1

    def release_exclusive(self) -> None:
        with self._condition:
            self._exclusive = False
            self._condition.notify_all()


def _step_aside_while_long_polling(gate: RequestGate) -> None:
    """SQS long polls sleep in ``Queue.wait_for_messages``: let snapshots run meanwhile."""
    from moto.sqs.models import Queue

    original = getattr(Queue, "wait_for_messages", None)
    if original is None:  # another moto: long polls keep their share; snapshots wait a bounded time
        return

    @functools.wraps(original)
    def wait_for_messages(self: Any, timeout: int) -> None:
        with gate.stepped_aside():
            original(self, timeout)

    Queue.wait_for_messages = wait_for_messages


def _action(environ: dict[str, Any]) -> str | None:
    """The API action a request names, for the protocols boto3 speaks (None for REST)."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    path = environ.get("PATH_INFO", "")
    if "/operation/" in path:  # smithy-rpc-v2-cbor (CloudWatch)
        return path.rstrip("/").rsplit("/", 1)[-1]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0]
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        form = parse_qs(body.decode("utf-8", errors="replace"))
        if "Action" in form:
            return form["Action"][0]
    return None


def may_change_state(environ: dict[str, Any]) -> bool:
    """False only for requests that certainly just read (Describe*, List*, Get*, GET, ...)."""
    action = _action(environ)
    if action:
        return not action.startswith(READ_ONLY_ACTION_PREFIXES)
    return environ.get("REQUEST_METHOD", "GET").upper() not in READ_ONLY_METHODS


def _backend_census() -> int:
    """How many account and region backends exist: a read can create one (a new region's default VPC)."""
    from moto.core.base_backend import BackendDict

    return sum(1 + len(accounts) for bd in list(BackendDict._instances) for accounts in list(bd.values()))


@dataclass(frozen=True)
class SnapshotResult:
    """One snapshot written: its size and how long it took (pickling plus writing)."""

    generation: str
    bytes: int
    seconds: float
    skipped: tuple[str, ...]


class PersistentMoto:
    """moto's WSGI app behind the gate, with the change tracking and snapshots around it."""

    def __init__(self, state: StateDirectory, generation: str, app: Callable[..., Any]) -> None:
        self.state = state
        self.generation = generation
        self.gate = RequestGate()
        self._app = app
        self._counters = threading.Lock()
        self._changes = 0
        self._durable = 0
        self._first_unsaved: float | None = None
        self._last_activity = time.monotonic()
        self._retry_after = 0.0
        self._snapshotting = threading.Lock()
        self._stopping = threading.Event()
        self._autosaver: threading.Thread | None = None

    # -- requests -----------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == SNAPSHOT_PATH:
            return self._snapshot_endpoint(environ, start_response)
        changing = may_change_state(environ)
        census = None if changing else _backend_census()
        try:
            with self.gate.shared():
                result = self._app(environ, start_response)
                try:
                    # Rendered under the gate: a snapshot never sees half a response's work.
                    return [bytes(chunk) for chunk in result]
                finally:
                    close = getattr(result, "close", None)
                    if close:
                        close()
        finally:
            if changing or census != _backend_census():
                self._note_change()
            self._last_activity = time.monotonic()

    def _note_change(self) -> None:
        with self._counters:
            self._changes += 1
            if self._first_unsaved is None:
                self._first_unsaved = time.monotonic()

    @property
    def dirty(self) -> bool:
        with self._counters:
            return self._changes != self._durable

    def _snapshot_endpoint(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _json_response(start_response, "405 Method Not Allowed", {"error": "POST to take a snapshot"})
        try:
            result = self.snapshot()
        except SnapshotError as exc:
            log.error("snapshot requested but failed: %s", exc)
            return _json_response(start_response, "500 Internal Server Error", {"error": str(exc)})
        body = {"generation": result.generation, "bytes": result.bytes, "seconds": round(result.seconds, 3)}
        if result.skipped:
            body["skipped"] = list(result.skipped)
        return _json_response(start_response, "200 OK", body)

    # -- snapshots ----------------------------------------------------------------------

    def snapshot(self) -> SnapshotResult:
        """Write a snapshot now: pickled under the exclusive gate, written to disk after it."""
        with self._snapshotting:
            started = time.monotonic()
            alone = self.gate.acquire_exclusive(EXCLUSIVE_WAIT_SECONDS)
            try:
                if not alone:
                    log.warning("requests still running after %.0f s; snapshotting regardless",
                                EXCLUSIVE_WAIT_SECONDS)
                with self._counters:
                    captured, first_unsaved = self._changes, self._first_unsaved
                    self._first_unsaved = None
                try:
                    captured_state = capture_state()
                except Exception:
                    self._restore_unsaved(first_unsaved)
                    raise
            finally:
                self.gate.release_exclusive()
            try:
                size = self.state.write_snapshot(self.generation, captured_state)
            except OSError as exc:
                self._restore_unsaved(first_unsaved)
                raise SnapshotError(f"cannot write {self.state.snapshot_path}: {exc}") from exc
            with self._counters:
                self._durable = max(self._durable, captured)
            for service in captured_state.skipped:
                log.error("left out of the snapshot (its state will not survive a restart): %s", service)
            return SnapshotResult(self.generation, size, time.monotonic() - started, captured_state.skipped)

    def _restore_unsaved(self, first_unsaved: float | None) -> None:
        with self._counters:
            if first_unsaved is not None and (self._first_unsaved is None or first_unsaved < self._first_unsaved):
                self._first_unsaved = first_unsaved

    def _snapshot_due(self) -> bool:
        now = time.monotonic()
        with self._counters:
            first_unsaved = self._first_unsaved
        if first_unsaved is None or now < self._retry_after:
            return False
        if now - first_unsaved >= MAX_DELAY_SECONDS:
            return True
        return self.gate.idle() and now - self._last_activity >= QUIET_SECONDS

    def _autosave(self) -> None:
        while not self._stopping.wait(AUTOSAVE_POLL_SECONDS):
            if not self._snapshot_due():
                continue
            try:
                self.snapshot()
            except Exception as exc:  # the server must keep serving; the next attempt may succeed
                log.error("automatic snapshot failed (retrying in %.0f s): %s", RETRY_SECONDS, exc)
                self._retry_after = time.monotonic() + RETRY_SECONDS

    def start_autosave(self) -> None:
        self._autosaver = threading.Thread(target=self._autosave, name="autosave", daemon=True)
        self._autosaver.start()

    def stop_autosave(self) -> None:
        self._stopping.set()
        if self._autosaver:
            self._autosaver.join()


def _json_response(start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def _quiet_request_handler() -> type:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class QuietRequestHandler(MotoRequestHandler):
        """moto's request handler without an access-log line per request (errors still log)."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass

    return QuietRequestHandler


def _describe(restored: Restored, port: int) -> str:
    if restored.new:
        return (f"new generation {restored.generation} (initial snapshot {restored.snapshot_bytes} bytes); "
                f"serving on {HOST}:{port}")
    return (f"restored generation {restored.generation}: {len(restored.services)} services "
            f"({', '.join(restored.services)}), {restored.region_backends} region backends, snapshot "
            f"{restored.snapshot_bytes / 1e6:.1f} MB, restored in {restored.seconds:.2f} s; serving on {HOST}:{port}")


def serve(home: Path, port: int) -> int:
    """Restore, serve until SIGTERM/SIGINT, write a final snapshot; returns the exit status."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    layout = LocalAws(home)
    state = StateDirectory(layout.state_dir)
    try:
        restored = state.open()
    except StateLost as exc:
        print(exc, file=sys.stderr, flush=True)
        return EXIT_STATE_LOST

    from werkzeug.serving import make_server

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from vpcpeer_orchestration.local import insights_endpoint

    insights_endpoint.install()  # Logs Insights evaluated, not ignored

    persistent = PersistentMoto(state, restored.generation, DomainDispatcherApplication(create_backend_app))
    _step_aside_while_long_polling(persistent.gate)
    server = make_server(HOST, port, persistent, threaded=True, request_handler=_quiet_request_handler())
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, name="serve",
                               daemon=True)
    serving.start()
    endpoint = f"http://{HOST}:{server.port}"
    while not healthy(endpoint, timeout=5.0) or stop.is_set():
        if stop.wait(0.05) or not serving.is_alive():
            server.shutdown()
            return 0 if stop.is_set() else 1
    write_atomically(layout.record_path, [json.dumps({"pid": os.getpid(), "port": server.port,
                                                      "generation": restored.generation}).encode()])
    log.info(_describe(restored, server.port))
    persistent.start_autosave()
    while not stop.wait(POLL_SECONDS) and serving.is_alive():
        pass
    server.shutdown()
    persistent.stop_autosave()
    status = 0 if stop.is_set() else 1
    if persistent.dirty:
        try:
            result = persistent.snapshot()
        except SnapshotError as exc:
            log.error("final snapshot failed; changes since the last one are lost: %s", exc)
            return 1
        log.info("stopped; final snapshot %.1f MB in %.2f s", result.bytes / 1e6, result.seconds)
    else:
        log.info("stopped; the last snapshot is current")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="moto server whose state survives restarts (vpcpeer's embedded AWS)")
    parser.add_argument("--home", type=Path, required=True, help="the embedded AWS home (state/, server.json)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 lets the OS pick")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s moto_process[%(process)d] %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return serve(args.home.resolve(), args.port)


if __name__ == "__main__":
    # Run through the importable module, so pickled references name
    # vpcpeer_orchestration.local.moto_process rather than __main__.
    from vpcpeer_orchestration.local import moto_process

    exit_status = moto_process.main()
    # Everything is on disk (fsynced); tearing down moto's module graph only delays the exit by
    # a second or more, and request threads may still be inside moto.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_status)
