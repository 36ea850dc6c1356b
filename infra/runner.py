"""Three ways to run the one Pulumi program, behind one interface (DESIGN decision 2).

- ``preview``: the program under Pulumi's runtime mocks, recording every resource; no
  cloud, no CLI.
- ``automation``: the Pulumi Automation API on the ``infra/`` project with a local file
  backend by default; needs the ``pulumi`` CLI.
- ``emulated``: the program under mocks that create each resource in the local AWS
  emulator and return the real IDs (the embedded default).
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from infra.config import CODE_SIGNING_OFF, PROJECT
from infra.stack_files import INFRA_DIR, SECRET_KEYS, StackSettings, load_stack_settings
from infra.wire import SECRET_MASK, is_secret

if TYPE_CHECKING:
    from infra.emulation.engine import StateStore

MODES = ("preview", "automation", "emulated")


class StackRunError(RuntimeError):
    """The stack could not be run in the requested mode; the message says why."""


class PulumiCliNotFound(StackRunError):
    """Automation mode needs the ``pulumi`` CLI on PATH."""


class ModeNotAvailable(StackRunError):
    """The requested mode is not available in this build."""


@dataclass(frozen=True)
class StackResult:
    """What a run produced: the resources (for preview/emulated), outputs and changes."""

    mode: str
    stack: str
    outputs: dict[str, Any]
    secret_outputs: frozenset[str] = frozenset()
    resources: tuple[Any, ...] = ()
    changes: Mapping[str, int] = field(default_factory=dict)

    def resource_counts(self) -> dict[str, int]:
        """Count of cloud resources per type token (components and providers excluded)."""
        return dict(sorted(Counter(r.type for r in self.resources if r.custom and not r.type.startswith("pulumi:")).items()))

    def public_outputs(self) -> dict[str, Any]:
        """Outputs with secret values masked, safe to print or store as metadata."""
        return {k: (SECRET_MASK if k in self.secret_outputs else v) for k, v in self.outputs.items()}


class StackRunner(Protocol):
    """Runs the program for one stack and reports the result."""

    mode: str

    def run(self) -> StackResult:
        """Plan or apply the stack, depending on the mode."""
        ...


def _mask(value: Any, secrets: set[str]) -> Any:
    """Mask secret-marked inputs, and any secret config value wherever else it appears."""
    if isinstance(value, str):
        return SECRET_MASK if value in secrets else value
    if is_secret(value):
        return SECRET_MASK
    if isinstance(value, Mapping):
        return {k: _mask(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask(v, secrets) for v in value]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    path = getattr(value, "path", None)  # pulumi FileArchive / FileAsset
    return {"archive": str(path)} if path is not None else str(value)


def evaluate_with_mocks(settings: StackSettings, mocks: Any) -> tuple[dict[str, Any], frozenset[str]]:
    """Run the real program (entry point included) under ``mocks``; return outputs.

    The config reaches the program exactly as the engine would pass it, so this executes
    the same ``read_config`` -> ``build_stack`` path as ``pulumi up``.
    """
    import pulumi

    from infra.entry import read_config
    from infra.program import build_stack

    settings.validated()  # fail fast, before the runtime is touched
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=settings.stack, preview=False)
    pulumi.runtime.set_all_config(settings.engine_config(), [f"{PROJECT}:{k}" for k in SECRET_KEYS])
    values: dict[str, Any] = {}
    secret: set[str] = set()

    @pulumi.runtime.test
    def program() -> Any:
        outputs = build_stack(read_config())

        async def collect() -> None:
            for key, value in outputs.items():
                out = pulumi.Output.from_input(value)
                values[key] = await out.future()
                if await out.is_secret():
                    secret.add(key)

        return pulumi.Output.from_input(collect())

    program()
    return values, frozenset(secret)


class PreviewRunner:
    """Offline plan: every resource with its inputs, and the outputs it would export."""

    mode = "preview"

    def __init__(self, stack: str = "dev", overrides: Mapping[str, Any] | None = None, infra_dir: Path = INFRA_DIR) -> None:
        self.settings = load_stack_settings(stack, overrides, infra_dir)

    def run(self) -> StackResult:
        from infra.preview import RecordingMocks

        cfg = self.settings.validated()
        mocks = RecordingMocks(region=cfg.region)
        outputs, secret = evaluate_with_mocks(self.settings, mocks)
        secrets = self.settings.secret_values()
        resources = tuple(
            type(r)(r.type, r.name, _mask(r.inputs, secrets), r.custom) for r in mocks.resources
        )
        return StackResult(
            mode=self.mode, stack=cfg.stack, outputs=outputs, secret_outputs=secret, resources=resources,
            changes={"create": sum(1 for r in resources if r.custom)},
        )


class AutomationRunner:
    """``pulumi up`` (or ``preview``/``destroy``) on the ``infra/`` project via the Automation API.

    Configuration is validated before the CLI is involved, so a bad value fails the same
    way in every mode. Overrides are written to the stack's config through the CLI.
    ``backend_url`` is the state backend (``file://...`` or ``s3://...``); the callers take
    it from one place, ``vpcpeer_orchestration.homes.pulumi_backend_url``.
    """

    mode = "automation"

    def __init__(
        self,
        stack: str = "dev",
        overrides: Mapping[str, Any] | None = None,
        *,
        backend_url: str,
        action: str = "up",
        infra_dir: Path = INFRA_DIR,
        on_output: Callable[[str], None] | None = print,
    ) -> None:
        if action not in ("up", "preview", "destroy"):
            raise ValueError(f"unknown action {action!r}; use up, preview or destroy")
        self.settings = load_stack_settings(stack, overrides, infra_dir)
        self.overrides = dict(overrides or {})
        self.action = action
        self.backend_url = backend_url
        self.infra_dir = infra_dir
        self.on_output = on_output

    def _stack(self) -> Any:
        if shutil.which("pulumi") is None:
            raise PulumiCliNotFound(
                "mode=automation needs the `pulumi` CLI on PATH (https://www.pulumi.com/docs/iac/download-install/); "
                "use mode=preview for an offline plan or mode=emulated on the embedded default"
            )
        if not os.environ.get("PULUMI_CONFIG_PASSPHRASE") and not os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
            raise StackRunError(
                "mode=automation with a file backend encrypts secrets with a passphrase: "
                "set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE)"
            )
        from pulumi import automation as auto

        backend = self.backend_url
        if backend.startswith("file://"):
            Path(backend[len("file://"):]).expanduser().mkdir(parents=True, exist_ok=True)
        workspace = auto.LocalWorkspaceOptions(work_dir=str(self.infra_dir), env_vars={"PULUMI_BACKEND_URL": backend})
        stack = auto.create_or_select_stack(stack_name=self.settings.stack, work_dir=str(self.infra_dir), opts=workspace)
        for key, value in self.overrides.items():
            full_key = "aws:region" if key in ("region", "aws:region") else f"{PROJECT}:{key}"
            stack.set_config(full_key, auto.ConfigValue(value=str(value), secret=key in SECRET_KEYS))
        return stack

    def _repair(self, stack: Any) -> None:
        """Rules added by hand to the stack's groups are removed (infra/drift.py): an update
        cannot see them, and the drift sensor's rollout must still put the posture back."""
        import boto3

        from infra.drift import declared_groups, repair_groups

        deployment = stack.export_stack().deployment or {}
        removed = repair_groups(boto3.client("ec2", region_name=self.settings.validated().region),
                                declared_groups(deployment.get("resources") or []))
        if removed and self.on_output:
            self.on_output(f"removed {removed} security-group rule(s) the program does not declare")

    def run(self) -> StackResult:
        self.settings.validated()
        stack = self._stack()
        if self.action == "preview":
            result = stack.preview(on_output=self.on_output)
            return StackResult(self.mode, self.settings.stack, outputs={}, changes=dict(result.change_summary))
        if self.action == "destroy":
            result = stack.destroy(on_output=self.on_output)
            return StackResult(self.mode, self.settings.stack, outputs={}, changes=dict(result.summary.resource_changes or {}))
        result = stack.up(on_output=self.on_output)
        self._repair(stack)
        return StackResult(
            mode=self.mode,
            stack=self.settings.stack,
            outputs={k: v.value for k, v in result.outputs.items()},
            secret_outputs=frozenset(k for k, v in result.outputs.items() if v.secret),
            changes=dict(result.summary.resource_changes or {}),
        )


class EmulatedRunner:
    """Rollout into the local AWS emulator: real resources, real IDs, idempotent.

    Both edges are injected: ``client(service)`` returns a boto3 client of the emulator in
    the stack's region, and ``state_store`` keeps the rollout's state document between
    runs (``load() -> dict | None``, ``save(dict)``; see infra.emulation.engine.StateStore).
    """

    mode = "emulated"

    def __init__(
        self,
        stack: str = "dev",
        overrides: Mapping[str, Any] | None = None,
        *,
        client: Callable[[str], Any],
        state_store: StateStore,
        infra_dir: Path = INFRA_DIR,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        # The embedded AWS has no signing jobs and no code-signing configurations: its rollout
        # deploys the zip unsigned and says so (run()); AWS rollouts sign as configured.
        self.settings = load_stack_settings(stack, {**(overrides or {}), "code_signing": CODE_SIGNING_OFF}, infra_dir)
        self.client = client
        self.state_store = state_store
        self.progress = progress

    def run(self) -> StackResult:
        from infra.emulation.engine import Context, EmulatorMocks, Engine, StackState, public_inputs
        from infra.preview import PlannedResource

        cfg = self.settings.validated()
        if self.progress:
            self.progress("code signing: off on the embedded AWS (it has no signing jobs or code-signing "
                          "configurations); rollouts to AWS sign and enforce it")
        ctx = Context(self.client, cfg.region, self.client("sts").get_caller_identity()["Account"])
        engine = Engine(ctx, StackState.from_document(self.state_store.load()), progress=self.progress)
        try:
            outputs, secret = evaluate_with_mocks(self.settings, EmulatorMocks(engine))
            engine.prune()
            engine.repair()
        finally:
            # Saved on failure too: what was created is recorded, so a retry never creates twice.
            state = engine.state()
            self.state_store.save(state.to_document())
        changes = Counter(c.action for c in engine.changes)
        secrets = self.settings.secret_values()
        resources = tuple(
            PlannedResource(key.split("::", 1)[0], key.split("::", 1)[1], _mask(public_inputs(record.inputs), secrets))
            for key, record in sorted(state.resources.items())
        )
        return StackResult(self.mode, cfg.stack, outputs, secret, resources, dict(changes))


def get_runner(mode: str, stack: str = "dev", overrides: Mapping[str, Any] | None = None, **kwargs: Any) -> StackRunner:
    """The runner for ``mode`` (one of MODES)."""
    if mode == "preview":
        return PreviewRunner(stack, overrides, **kwargs)
    if mode == "automation":
        return AutomationRunner(stack, overrides, **kwargs)
    if mode == "emulated":
        needed = {"client": "client= (a factory of boto3 clients for it)",
                  "state_store": "state_store= (where the rollout keeps its state: load()/save())"}
        missing = [text for key, text in needed.items() if key not in kwargs]
        if missing:
            raise ModeNotAvailable(f"mode=emulated needs the local AWS endpoint and a state store: pass {' and '.join(missing)}")
        return EmulatedRunner(stack, overrides, **kwargs)
    raise StackRunError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
