"""Which recorded generations count as lost, and the demo's partition ranges."""

from __future__ import annotations

from vpcpeer_orchestration.continuity import lost
from vpcpeer_orchestration.demo import contiguous_ranges


def test_only_generations_neither_current_nor_purged_are_lost() -> None:
    recorded = {"h1": "aaa", "h2": "bbb", "h3": "ccc", None: "aaa"}
    assert lost(recorded, current="aaa", purged=frozenset({"bbb"})) == {"h3": "ccc"}
    assert lost(recorded, current=None, purged=frozenset()) == {}  # a target that cannot lose its state
    assert lost({}, current="aaa", purged=frozenset()) == {}


def test_missing_partitions_become_contiguous_runs() -> None:
    ordered = ["h0", "h1", "h2", "h3", "h4", "h5"]
    assert contiguous_ranges(["h1", "h2", "h4"], ordered) == [("h1", "h2"), ("h4", "h4")]
    assert contiguous_ranges(ordered, ordered) == [("h0", "h5")]
    assert contiguous_ranges([], ordered) == []
