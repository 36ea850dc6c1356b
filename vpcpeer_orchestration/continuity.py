"""Refuse to build on an embedded AWS that lost the state earlier runs relied on.

Every stack and report materialisation records the generation of the AWS state it was
made in (``aws_generation``). If the embedded AWS comes back with another generation that
was not thrown away on purpose (``vpcpeer local down --purge``), rolling out would create
a second stack and re-analysing would overwrite stored reports with results from other
data (and alert again under other keys): both fail instead, naming the way out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg

GENERATION_KEY = "aws_generation"
_PAGE = 1000


def recorded_generations(instance: dg.DagsterInstance, asset_key: dg.AssetKey,
                         partitions: Iterable[str] | None = None) -> dict[str | None, str]:
    """The generation recorded by the latest materialisation of each partition (or of the asset)."""
    wanted = list(partitions) if partitions is not None else None
    found: dict[str | None, str] = {}
    cursor = None
    while True:
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=wanted), limit=_PAGE, cursor=cursor)
        for record in page.records:
            event = record.event_log_entry.dagster_event
            partition = event.partition if event else None
            if partition in found or (wanted is None and found):
                continue
            value = record.asset_materialization.metadata.get(GENERATION_KEY) if record.asset_materialization else None
            if value is not None and value.value:
                found[partition] = str(value.value)
        if not page.has_more or (wanted is not None and len(found) >= len(wanted)) or (wanted is None and found):
            return found
        cursor = page.cursor


def lost(recorded: Mapping[str | None, str], current: str | None, purged: frozenset[str]) -> dict[str | None, str]:
    """Recorded generations that are neither the current one nor purged: state lost by accident."""
    if current is None:
        return {}
    return {key: gen for key, gen in recorded.items() if gen != current and gen not in purged}


def refuse_if_lost(context: dg.AssetExecutionContext, stack: Any, asset_key: dg.AssetKey,
                   partitions: Iterable[str] | None, what: str, refused: str) -> str | None:
    """Fail (no retry) when ``asset_key`` was made in a generation the embedded AWS lost.

    Returns the current generation, to be recorded with the new materialisation.
    """
    current = stack.generation()
    if current is None:
        return None
    gone = lost(recorded_generations(context.instance, asset_key, partitions), current, stack.purged_generations())
    if gone:
        old = sorted(set(gone.values()))
        keys = sorted(k for k in gone if k)
        hours = f" ({len(keys)} hour(s): {keys[0]} ...)" if keys else ""
        raise dg.Failure(
            description=(
                f"{what}{hours} came from embedded AWS generation {', '.join(old)}, which is gone: the embedded "
                f"AWS now holds generation {current} with none of that state. Refusing to {refused}. "
                f" If the loss is accepted, record it with `vpcpeer local down --purge "
                + " ".join(f"--forget {g}" for g in old) + "` and run again."),
            allow_retries=False,
            metadata={"lost_generations": dg.MetadataValue.json(old), "current_generation": current},
        )
    return current
