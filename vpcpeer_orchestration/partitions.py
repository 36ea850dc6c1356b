"""Hourly UTC partitions of the traffic analysis (the Dagster schedule is the one clock).

Where they start, first that applies:

1. ``VPCPEER_PARTITIONS_START`` (``2026-11-01`` or ``2026-11-01-06:00``, UTC);
2. the start recorded by the instance's first rollout (``<DAGSTER_HOME>/vpcpeer-partitions-start``):
   where flow-log records began at that rollout. On the embedded default that is the day of
   the emulator's reach (the flow logs' retention, at most the 14 days CloudWatch accepts
   writes for), so the demo's hours fill the partition bar; on AWS it is the rollout's own
   hour, as the flow logs begin with the stack;
3. before any rollout, FALLBACK_START.

Hours before the stack existed, or older than the flow logs kept, fail their partition
instead of reporting zeros. The start is read when the code location loads: after the first
rollout, a reload of the location (``dagster dev`` does it on its own) shows the new bar.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg

PARTITIONS_START_ENV = "VPCPEER_PARTITIONS_START"
PARTITIONS_START_FILE = "vpcpeer-partitions-start"
FALLBACK_START = "2026-11-01-00:00"
KEY_FORMAT = "%Y-%m-%d-%H:%M"
_START = re.compile(r"(\d{4}-\d{2}-\d{2})(?:-(\d{2}):00)?", re.ASCII)


class InvalidPartitionsStart(ValueError):
    """The configured start is not an hour this understands; the message names the fix."""


def parse_start(text: str, origin: str) -> str:
    """``text`` (a day or a whole hour, UTC) as a partition key; anything else is refused, naming ``origin``."""
    match = _START.fullmatch(text.strip())
    try:
        if match is None:
            raise ValueError
        moment = datetime.strptime(f"{match[1]}-{match[2] or '00'}:00", KEY_FORMAT)
    except ValueError:
        raise InvalidPartitionsStart(f"{origin}: {text.strip()!r} is not a UTC day or whole hour; write e.g. "
                                     "2026-11-01 or 2026-11-01-06:00") from None
    return moment.strftime(KEY_FORMAT)


def partitions_start(env: Mapping[str, str] = os.environ, home: Path | None = None) -> str:
    """The first partition key (see the module's docstring for the order)."""
    from vpcpeer_orchestration.homes import dagster_home

    configured = (env.get(PARTITIONS_START_ENV) or "").strip()
    if configured:
        return parse_start(configured, PARTITIONS_START_ENV)
    recorded = (home or dagster_home()) / PARTITIONS_START_FILE
    if recorded.is_file():
        return parse_start(recorded.read_text(), str(recorded))
    return FALLBACK_START


def record_first_rollout(first_hour: datetime, home: Path | None = None) -> str | None:
    """At a rollout: record ``first_hour`` (where records begin) as the start, unless a
    start is recorded already (partitions never move once some exist). Returns the start
    written, or None."""
    from vpcpeer_orchestration.homes import dagster_home

    target = (home or dagster_home()) / PARTITIONS_START_FILE
    if target.exists():
        return None
    start = first_hour.astimezone(timezone.utc).strftime(KEY_FORMAT)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(start + "\n")
    return start


HOURLY = dg.HourlyPartitionsDefinition(start_date=partitions_start(), timezone="UTC")
