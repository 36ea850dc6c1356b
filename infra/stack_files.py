"""Reading ``Pulumi.<stack>.yaml`` without the Pulumi CLI, for offline runs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.config import PROJECT, InvalidStackConfig, StackConfig, validate_config

INFRA_DIR = Path(__file__).resolve().parent
SECRET_KEYS = frozenset({"alert_email"})


class StackFileNotFound(FileNotFoundError):
    """No ``Pulumi.<stack>.yaml`` for the requested stack."""


class StackNotRolledOut(RuntimeError):
    """The stack has no outputs where the target keeps them: it was never rolled out there."""


@dataclass(frozen=True)
class StackSettings:
    """Raw config of one stack: ``vpcpeer:*`` values (namespace stripped) and the region."""

    stack: str
    values: Mapping[str, Any]
    region: str | None

    def validated(self) -> StackConfig:
        """Validate into a StackConfig (raises InvalidStackConfig)."""
        return validate_config(self.values, stack=self.stack, region=self.region)

    def engine_config(self) -> dict[str, str]:
        """The config map as the Pulumi engine hands it to a program: text values, full keys."""
        config = {f"{PROJECT}:{k}": _as_text(v) for k, v in self.values.items()}
        if self.region:
            config["aws:region"] = self.region
        return config

    def secret_values(self) -> set[str]:
        """Plain text of the values that must never be printed."""
        return {str(self.values[k]) for k in SECRET_KEYS if self.values.get(k)}


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def parse_override(text: str) -> tuple[str, str]:
    """Parse ``KEY=VALUE`` from the command line (``vpcpeer:`` prefix optional)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise InvalidStackConfig(text, "is not KEY=VALUE", "Write e.g. --set vpc_a_cidr=10.0.0.0/16.")
    key = key.strip()
    if key.startswith(f"{PROJECT}:"):
        key = key[len(PROJECT) + 1:]
    return key, value


def load_stack_settings(stack: str, overrides: Mapping[str, Any] | None = None, infra_dir: Path = INFRA_DIR) -> StackSettings:
    """Read a stack file, apply overrides (``aws:region`` or ``vpcpeer`` keys)."""
    path = infra_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in infra_dir.glob("Pulumi.*.yaml"))
        raise StackFileNotFound(f"no stack file {path}; known stacks: {', '.join(known) or 'none'}")
    document = yaml.safe_load(path.read_text()) or {}
    config = document.get("config") or {}
    values: dict[str, Any] = {}
    region = None
    for full_key, value in config.items():
        namespace, _, key = str(full_key).partition(":")
        if isinstance(value, dict) and "secure" in value:
            raise InvalidStackConfig(
                key, f"is encrypted in {path.name}; offline runs cannot decrypt it",
                f"Pass the value with --set {key}=... (it is masked in all output).",
            )
        if namespace == "aws" and key == "region":
            region = str(value)
        elif namespace == PROJECT:
            values[key] = value
    for key, value in (overrides or {}).items():
        if key in ("aws:region", "region"):
            region = str(value)
        else:
            values[key] = value
    return StackSettings(stack=stack, values=values, region=region)
