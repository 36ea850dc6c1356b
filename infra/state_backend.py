"""Stack outputs read from a Pulumi DIY state backend, without the Pulumi CLI.

Run workers (a container on ECS, a pod) need the stack's outputs (log groups, topic,
function) but not the ``pulumi`` CLI: they read the latest checkpoint the last ``pulumi
up`` wrote to the backend (``file://`` or ``s3://``). The layout is Pulumi's project-scoped
one, ``<backend>/.pulumi/stacks/<project>/<stack>.json`` (or ``.json.gz``); outputs
marked secret stay masked.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from infra.stack_files import StackNotRolledOut
from infra.wire import SECRET_MASK, is_secret

STACK_RESOURCE_TYPE = "pulumi:pulumi:Stack"


class UnreadableStackState(RuntimeError):
    """The checkpoint exists but is not a Pulumi stack checkpoint this code understands."""


def checkpoint_keys(project: str, stack: str) -> tuple[str, str]:
    """The checkpoint's path inside the backend, plain and gzip-compressed."""
    base = f".pulumi/stacks/{project}/{stack}.json"
    return base, base + ".gz"


def _read_file(root: Path, keys: tuple[str, ...]) -> tuple[str, bytes] | None:
    for key in keys:
        path = root / key
        if path.is_file():
            return key, path.read_bytes()
    return None


def _read_s3(bucket: str, prefix: str, keys: tuple[str, ...], s3: Any) -> tuple[str, bytes] | None:
    from botocore.exceptions import ClientError

    for key in keys:
        full = f"{prefix.strip('/')}/{key}".lstrip("/")
        try:
            return key, s3.get_object(Bucket=bucket, Key=full)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                raise
    return None


def outputs_from_checkpoint(document: dict[str, Any], where: str) -> dict[str, Any]:
    """The root stack resource's outputs of a versioned checkpoint, secrets masked."""
    try:
        resources = document["checkpoint"]["latest"]["resources"] or []
    except (KeyError, TypeError):
        raise UnreadableStackState(f"{where} is not a Pulumi stack checkpoint (no checkpoint.latest.resources)") from None
    for resource in resources:
        if resource.get("type") == STACK_RESOURCE_TYPE:
            outputs = resource.get("outputs") or {}
            return {k: (SECRET_MASK if is_secret(v) else v) for k, v in outputs.items()}
    raise StackNotRolledOut(f"{where} has no {STACK_RESOURCE_TYPE} resource: the stack was never rolled out there")


def read_stack_outputs(backend_url: str, project: str, stack: str,
                       s3_client: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Outputs of ``project``/``stack`` from a ``file://`` or ``s3://`` backend."""
    parsed = urlparse(backend_url)
    keys = checkpoint_keys(project, stack)
    if parsed.scheme == "file":
        found = _read_file(Path(parsed.netloc + parsed.path).expanduser(), keys)
    elif parsed.scheme == "s3":
        if s3_client is None:
            raise ValueError("reading an s3:// backend needs an S3 client factory")
        found = _read_s3(parsed.netloc, parsed.path, keys, s3_client())
    else:
        raise UnreadableStackState(f"backend {backend_url!r}: only file:// and s3:// state backends can be read "
                                   "without the Pulumi CLI")
    if found is None:
        raise StackNotRolledOut(f"no checkpoint of stack {stack!r} (project {project!r}) in {backend_url}; "
                                 "roll the stack out first (rollout_job)")
    key, body = found
    if key.endswith(".gz"):
        body = gzip.decompress(body)
    try:
        document = json.loads(body)
    except ValueError:
        raise UnreadableStackState(f"{backend_url}/{key} is not JSON") from None
    return outputs_from_checkpoint(document, f"{backend_url}/{key}")
