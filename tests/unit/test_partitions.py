"""Where the hourly partitions start: VPCPEER_PARTITIONS_START, else what the instance's first
rollout recorded, else the fallback; a start that is not a day or a whole hour is refused by name."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from vpcpeer_orchestration import partitions
from vpcpeer_orchestration.partitions import (
    FALLBACK_START,
    PARTITIONS_START_ENV,
    InvalidPartitionsStart,
    partitions_start,
    record_first_rollout,
)


def test_the_variable_wins_then_the_recorded_start_then_the_fallback(tmp_path) -> None:
    assert partitions_start({}, tmp_path) == FALLBACK_START
    assert record_first_rollout(datetime(2026, 11, 15, 3, tzinfo=timezone.utc), tmp_path) == "2026-11-15-03:00"
    assert partitions_start({}, tmp_path) == "2026-11-15-03:00"
    assert partitions_start({PARTITIONS_START_ENV: " 2026-10-01 "}, tmp_path) == "2026-10-01-00:00"
    assert partitions_start({PARTITIONS_START_ENV: "2026-10-01-06:00"}, tmp_path) == "2026-10-01-06:00"


def test_a_later_rollout_never_moves_the_start(tmp_path) -> None:
    record_first_rollout(datetime(2026, 11, 15, 3, tzinfo=timezone.utc), tmp_path)
    assert record_first_rollout(datetime(2026, 11, 20, 9, tzinfo=timezone.utc), tmp_path) is None
    assert partitions_start({}, tmp_path) == "2026-11-15-03:00"


@pytest.mark.parametrize("text", ["2026-11-01T00:00", "2026-11-01-06:30", "2026-13-01", "yesterday", "2026-11-01-6:00",
                                  "２０２６-11-01"])
def test_a_start_that_is_not_a_day_or_a_whole_hour_is_refused_by_name(text: str, tmp_path) -> None:
    with pytest.raises(InvalidPartitionsStart, match=f"{PARTITIONS_START_ENV}: .* is not a UTC day or whole hour"):
        partitions_start({PARTITIONS_START_ENV: text}, tmp_path)


def test_a_damaged_record_is_refused_naming_the_file(tmp_path) -> None:
    (tmp_path / partitions.PARTITIONS_START_FILE).write_text("garbage\n")
    with pytest.raises(InvalidPartitionsStart, match=partitions.PARTITIONS_START_FILE):
        partitions_start({}, tmp_path)
