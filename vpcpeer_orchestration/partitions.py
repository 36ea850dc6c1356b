"""Hourly UTC partitions of the traffic analysis (the Dagster schedule is the one clock)."""

import dagster as dg

# The first analysable hour. Hours before the stack existed, or older than the flow logs
# kept, fail their partition instead of reporting zeros.
PARTITIONS_START = "2026-11-01-00:00"

HOURLY = dg.HourlyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC")
