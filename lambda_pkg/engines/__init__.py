"""Engines that read one window of flow logs into the per-VPC aggregations."""

from __future__ import annotations

from typing import Any, Protocol

from lambda_pkg.aggregate import VpcTraffic
from lambda_pkg.window import Window


class Engine(Protocol):
    """Reads ``window`` for every VPC in ``traffic``; raises on any failure."""

    name: str

    def run(self, window: Window, traffic: dict[str, VpcTraffic]) -> dict[str, Any]:
        """Feed the aggregations and return engine statistics for the report."""
        ...
