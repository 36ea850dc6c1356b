"""Small translations shared by the service modules (tags, numbers, missing resources)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.emulation.engine import Context


def tag_list(tags: dict[str, str] | None) -> list[dict[str, str]]:
    """Tags in the ``[{"Key", "Value"}]`` shape most AWS APIs take, sorted for stable calls."""
    return [{"Key": k, "Value": str(v)} for k, v in sorted((tags or {}).items())]


def tag_spec(kind: str, ctx: Context, inputs: dict[str, Any]) -> list[dict[str, Any]]:
    """EC2 TagSpecifications for a new resource of ``kind`` (default tags merged in)."""
    tags = ctx.tags(inputs)
    return [{"ResourceType": kind, "Tags": tag_list(tags)}] if tags else []


def as_int(value: Any) -> int | None:
    """Pulumi mock inputs arrive as floats (443.0); AWS APIs want integers."""
    return None if value is None else int(value)


def short_hash(*parts: str) -> str:
    """Ten hex digits that make an auto-generated physical name unique but repeatable."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:10]


def found(call: Callable[[], Any]) -> bool:
    """True if ``call`` answers something; a ClientError (not found, gone) means no."""
    from botocore.exceptions import ClientError

    try:
        result = call()
    except ClientError:
        return False
    return bool(result)


def ignoring_missing(call: Callable[[], Any]) -> None:
    """Run a delete call; a ClientError means the resource is already gone, which is the goal."""
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError:
        pass
