"""Pulumi's wire form of secret values, as mocks receive them in resource inputs."""

from __future__ import annotations

from typing import Any

SECRET_MASK = "[secret]"
# A secret input arrives as {SIG_KEY: SECRET_SIG, "value": ...} (Pulumi's RPC protocol).
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


def unwrap_secrets(value: Any, *, mask: bool = False) -> Any:
    """Secret-marked values replaced by their plain value, or by SECRET_MASK when ``mask``."""
    if is_secret(value):
        return SECRET_MASK if mask else unwrap_secrets(value.get("value"))
    if isinstance(value, dict):
        return {k: unwrap_secrets(v, mask=mask) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v, mask=mask) for v in value]
    return value
