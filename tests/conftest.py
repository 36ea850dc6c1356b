"""Shared fixtures: the offline plan of the default stack, evaluated once per session."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.runner import PreviewRunner, StackResult
from vpcpeer_orchestration.packaging import packaged_overrides


def plan(overrides: dict[str, Any] | None = None, stack: str = "dev") -> StackResult:
    """Evaluate the real program under the recording mocks, building the zip it needs."""
    return PreviewRunner(stack, packaged_overrides(overrides)).run()


@pytest.fixture(scope="session")
def default_plan() -> StackResult:
    return plan()


class Plan:
    """Query helpers over a StackResult's recorded resources."""

    def __init__(self, result: StackResult) -> None:
        self.result = result
        self.resources = [r for r in result.resources if r.custom]

    def of(self, kind: str) -> list[Any]:
        """Resources whose type token ends with ``:<kind>`` (e.g. "Vpc")."""
        return [r for r in self.resources if r.type.rsplit(":", 1)[1] == kind]

    def one(self, kind: str, name: str) -> Any:
        matches = [r for r in self.of(kind) if r.name == name]
        assert len(matches) == 1, f"expected one {kind} named {name}, got {[r.name for r in self.of(kind)]}"
        return matches[0]

    @staticmethod
    def policy(resource: Any, key: str = "policy") -> dict[str, Any]:
        return json.loads(resource.inputs[key])


@pytest.fixture(scope="session")
def default(default_plan: StackResult) -> Plan:
    return Plan(default_plan)
