"""One JSON document per asset partition, on local disk or S3.

Dagster's UPath IO managers (filesystem, ``S3PickleIOManager``) refuse outputs that span
several partitions, which single-run backfills produce; this one stores each partition of
a ranged output separately and loads ranges back as ``{partition_key: value}``. Reports
stay human-readable JSON.
"""

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field


def default_location() -> str:
    home = os.environ.get("DAGSTER_HOME")
    return str(Path(home) / "storage" / "vpcpeer") if home else str(Path.home() / ".vpcpeer" / "assets")


class PartitionedJsonIOManager(dg.ConfigurableIOManager):
    """Stores asset values as JSON: ``<location>/<asset key>/<partition>.json``."""

    location: str = Field(default_factory=default_location,
                          description="a local directory, or s3://bucket/prefix on real AWS")

    def _key(self, asset_key: dg.AssetKey, partition: str | None) -> str:
        return "/".join([*asset_key.path, f"{partition or '__value__'}.json"])

    def _write(self, key: str, value: Any) -> None:
        body = json.dumps(value, indent=1, sort_keys=True, default=str)
        if self.location.startswith("s3://"):
            import boto3

            bucket, _, prefix = self.location[5:].partition("/")
            boto3.client("s3").put_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/{key}".lstrip("/"), Body=body.encode())
            return
        path = Path(self.location) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(body)
        tmp.replace(path)

    def _read(self, key: str) -> Any:
        if self.location.startswith("s3://"):
            import boto3

            bucket, _, prefix = self.location[5:].partition("/")
            body = boto3.client("s3").get_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/{key}".lstrip("/"))["Body"].read()
            return json.loads(body)
        return json.loads((Path(self.location) / key).read_text())

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        if not context.has_asset_partitions:
            self._write(self._key(context.asset_key, None), obj)
            return
        keys = list(context.asset_partition_keys)
        values = obj if len(keys) > 1 else {keys[0]: obj}
        if set(values) != set(keys):
            raise dg.DagsterInvariantViolationError(
                f"{context.asset_key.to_user_string()}: a ranged output must map each of its {len(keys)} partitions to a value"
            )
        for partition, value in values.items():
            self._write(self._key(context.asset_key, partition), value)

    def load_input(self, context: dg.InputContext) -> Any:
        if not context.has_asset_partitions:
            return self._read(self._key(context.asset_key, None))
        keys = list(context.asset_partition_keys)
        if len(keys) == 1:
            return self._read(self._key(context.asset_key, keys[0]))
        return {k: self._read(self._key(context.asset_key, k)) for k in keys}
