"""vpcpeer's own bookkeeping inside the embedded AWS: one S3 bucket and its key layout.

The emulated Pulumi state, the stack outputs, the flow-log emulator's markers and the
alert archive live in the emulator itself, so they share its fate (and its snapshot).
Every key is spelled here and nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

STATE_BUCKET = "vpcpeer-emulator-state"
# The bucket is bookkeeping, not part of any stack: it always lives in this region.
STATE_REGION = "us-east-1"


def stack_resources_key(stack: str) -> str:
    """The emulated rollout's record of what it created (logical name -> id, inputs)."""
    return f"stacks/{stack}/resources.json"


def stack_outputs_key(stack: str) -> str:
    """The outputs of the stack's last emulated rollout (secrets masked)."""
    return f"stacks/{stack}/outputs.json"


def alert_archive_prefix(stack: str) -> str:
    """Alerts drained from the stack's inbox queue, one object per message."""
    return f"alerts/{stack}/"


def flow_log_marker_key(kind: str, scope: str, hour: datetime, name: str = "") -> str:
    """Marker of an hour (``kind="hours"``) or a scenario (``kind="scenarios"``) written once for
    ``scope`` (the VPC pair, named by VPC-A's id)."""
    return f"flowlogs/{kind}/{scope.strip('/')}/{hour:%Y%m%dT%H}{('-' + name) if name else ''}"


class StateObjects:
    """JSON documents in the state bucket, over an S3 client of the emulator."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self._bucket_ready = False

    def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        if self._bucket_ready:
            return
        try:
            self.s3.head_bucket(Bucket=STATE_BUCKET)
        except ClientError:
            self.s3.create_bucket(Bucket=STATE_BUCKET)
        self._bucket_ready = True

    def get(self, key: str) -> Any | None:
        """The document at ``key``, or None if there is none."""
        from botocore.exceptions import ClientError

        try:
            body = self.s3.get_object(Bucket=STATE_BUCKET, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "NoSuchBucket", "404"):
                return None
            raise
        return json.loads(body)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_object(Bucket=STATE_BUCKET, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "NoSuchBucket", "404"):
                return False
            raise
        return True

    def put(self, key: str, value: Any) -> None:
        self._ensure_bucket()
        self.s3.put_object(Bucket=STATE_BUCKET, Key=key,
                           Body=json.dumps(value, indent=1, sort_keys=True, default=str).encode())

    def keys(self, prefix: str) -> Iterator[str]:
        """Keys under ``prefix``, in key order (empty if the bucket does not exist yet)."""
        from botocore.exceptions import ClientError

        paginator = self.s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=STATE_BUCKET, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
                raise
