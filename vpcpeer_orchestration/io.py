"""One JSON document per asset partition, on local disk (or S3 on the aws target).

Dagster's UPath IO managers (filesystem, ``S3PickleIOManager``) refuse outputs that span
several partitions, which single-run backfills produce; these store each partition of a
ranged output separately and load ranges back as ``{partition_key: value}``. Reports stay
human-readable JSON.
"""

from __future__ import annotations

import json
import os
from abc import abstractmethod
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

STORAGE_DIRNAME = "storage"


class PartitionedJsonIOManager(dg.ConfigurableIOManager):
    """Stores asset values as JSON: ``<asset key>/<partition>.json`` under a location."""

    @abstractmethod
    def write_text(self, key: str, body: str) -> None:
        """Store ``body`` at ``key``, replacing what was there atomically."""

    @abstractmethod
    def read_text(self, key: str) -> str:
        """The document at ``key``."""

    def where(self, key: str) -> str:
        """Where ``key`` is stored, for messages."""
        return key

    @staticmethod
    def key(asset_key: dg.AssetKey, partition: str | None) -> str:
        return "/".join([*asset_key.path, f"{partition or '__value__'}.json"])

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        if not context.has_asset_partitions:
            self._write(self.key(context.asset_key, None), obj)
            return
        keys = list(context.asset_partition_keys)
        values = obj if len(keys) > 1 else {keys[0]: obj}
        if set(values) != set(keys):
            raise dg.DagsterInvariantViolationError(
                f"{context.asset_key.to_user_string()}: a ranged output must map each of its {len(keys)} partitions to a value"
            )
        for partition, value in values.items():
            self._write(self.key(context.asset_key, partition), value)

    def load_input(self, context: dg.InputContext) -> Any:
        if not context.has_asset_partitions:
            return self._read(self.key(context.asset_key, None))
        keys = list(context.asset_partition_keys)
        if len(keys) == 1:
            return self._read(self.key(context.asset_key, keys[0]))
        return {k: self._read(self.key(context.asset_key, k)) for k in keys}

    def stored(self, asset: str, partition: str | None = None) -> Any:
        """The stored value of ``asset`` (one partition), read directly: Dagster's value loader
        builds the resources again for every value, about half a second each, which a report
        of hundreds of hours cannot afford."""
        return self._read(self.key(dg.AssetKey(asset), partition))

    def _write(self, key: str, value: Any) -> None:
        self.write_text(key, json.dumps(value, indent=1, sort_keys=True, default=str))

    def _read(self, key: str) -> Any:
        """The stored value; a missing or damaged document is a permanent failure naming the file
        and the fix (a retry would read the same bytes, and a bare JSONDecodeError names neither)."""
        asset, partition = key.rsplit("/", 1)
        partition = partition.removesuffix(".json")
        rebuild = (f"materialize {asset} again" + ("" if partition == "__value__" else f" for partition {partition}")
                   + " (the UI's Materialize, or `dagster asset materialize`)")
        try:
            return json.loads(self.read_text(key))
        except FileNotFoundError as exc:
            raise dg.Failure(description=f"the stored value of {asset} is missing at {self.where(key)}: {rebuild}",
                             allow_retries=False) from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise dg.Failure(description=f"the stored value of {asset} at {self.where(key)} is damaged ({exc}): "
                                         f"{rebuild}", allow_retries=False) from exc


class LocalJsonIOManager(PartitionedJsonIOManager):
    """JSON documents in a local directory (default ``<Dagster instance>/storage/vpcpeer``)."""

    location: str | None = Field(default=None, description="a local directory; default <instance>/storage/vpcpeer")
    _root: Path | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if self.location:
            self._root = Path(self.location)
        elif context.instance is not None:
            self._root = Path(context.instance.root_directory) / STORAGE_DIRNAME / "vpcpeer"

    def _path(self, key: str) -> Path:
        if self._root is None and self.location:
            self._root = Path(self.location)
        if self._root is None:
            raise dg.DagsterInvariantViolationError("LocalJsonIOManager needs a location or a Dagster instance")
        return self._root / key

    def write_text(self, key: str, body: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(body)
        tmp.replace(path)

    def read_text(self, key: str) -> str:
        return self._path(key).read_text()

    def where(self, key: str) -> str:
        return str(self._path(key))
