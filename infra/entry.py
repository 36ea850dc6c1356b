"""Pulumi entry point: read the stack config, validate it, declare, export.

Kept apart from ``__main__.py`` so the preview and emulated runners execute exactly the
same config reading as ``pulumi up``.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi

from infra.config import PROJECT, StackConfig, CONFIG_KEYS, validate_config


def _raw_value(key: str) -> Any:
    """A config value as the engine hands it over (text; objects as JSON text)."""
    value = pulumi.runtime.get_config(f"{PROJECT}:{key}")
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def read_config() -> StackConfig:
    """Collect ``vpcpeer:*`` and ``aws:region`` from the Pulumi runtime and validate them."""
    raw = {key: value for key in CONFIG_KEYS if (value := _raw_value(key)) is not None}
    return validate_config(raw, stack=pulumi.get_stack(), region=pulumi.runtime.get_config("aws:region"))


def main() -> None:
    """Run the program: everything is validated before the first resource is declared."""
    from infra.program import build_stack

    for name, value in build_stack(read_config()).items():
        pulumi.export(name, value)
