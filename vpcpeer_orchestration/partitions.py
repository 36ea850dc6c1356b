"""Hourly UTC partitions of the traffic analysis (the Dagster schedule is the one clock)."""

import os

import dagster as dg

PARTITION_START_ENV = "VPCPEER_PARTITION_START"
DEFAULT_PARTITION_START = "2026-11-01-00:00"


def hourly_partitions() -> dg.HourlyPartitionsDefinition:
    """Hourly partitions in UTC; the first hour comes from VPCPEER_PARTITION_START."""
    return dg.HourlyPartitionsDefinition(
        start_date=os.environ.get(PARTITION_START_ENV) or DEFAULT_PARTITION_START,
        timezone="UTC",
    )
