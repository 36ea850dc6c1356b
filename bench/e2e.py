"""End-to-end on the embedded default: emulated rollout (first and no-op), hourly partitions
in one run (24 and 168), and 24 one-partition runs against one 24-partition run.

    python -m bench.e2e [--long-range 168] [--json]

Everything real: a fresh Dagster instance and embedded AWS in a temporary home, the
rollout_job and the traffic_analysis_job executed as the demo does (each partition's step
writes that hour's emulated flow logs, then the analyzer reads them back from the emulated
CloudWatch Logs). Disjoint hours for each measurement, so nothing is skipped as done.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def measure(long_range: int = 168, singles: int = 24, say=print) -> dict[str, Any]:
    from dagster import DagsterInstance
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from lambda_pkg.constants import DEFAULT_SETTLE_LAG_SECONDS
    from lambda_pkg.window import last_complete_hour
    from vpcpeer_orchestration.definitions import build_definitions
    from vpcpeer_orchestration.homes import prepare_dagster_home
    from vpcpeer_orchestration.local.server import LocalAws

    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="vpcpeer-bench-") as tmp:
        home = prepare_dagster_home(Path(tmp) / "dagster_home")
        os.environ["VPCPEER_HOME"] = str(home / "embedded")
        os.environ.pop("VPCPEER_AWS_ENDPOINT", None)
        instance = DagsterInstance.from_config(str(home))
        defs = build_definitions("embedded", {"VPCPEER_HOME": str(home / "embedded")})
        aws = LocalAws.from_env(instance_root=home / "embedded")
        started = time.perf_counter()
        aws.start()
        figures["embedded_aws_start_s"] = time.perf_counter() - started
        try:
            rollout = defs.resolve_job_def("rollout_job")
            for name in ("rollout_first_s", "rollout_noop_s"):
                started = time.perf_counter()
                result = rollout.execute_in_process(instance=instance, run_config=QUIET)
                figures[name] = time.perf_counter() - started
                assert result.success
                say(f"  {name}: {figures[name]:.1f} s")
            job = defs.resolve_job_def("traffic_analysis_job")
            last = last_complete_hour(datetime.now(timezone.utc), timedelta(seconds=DEFAULT_SETTLE_LAG_SECONDS)).start

            def key(offset: int) -> str:
                return (last - timedelta(hours=offset)).strftime("%Y-%m-%d-%H:00")

            def one_run(first: int, last_offset: int) -> float:
                started = time.perf_counter()
                result = job.execute_in_process(instance=instance, run_config=QUIET, tags={
                    ASSET_PARTITION_RANGE_START_TAG: key(first), ASSET_PARTITION_RANGE_END_TAG: key(last_offset)})
                assert result.success
                return time.perf_counter() - started

            figures["range_24_s"] = one_run(23, 0)
            say(f"  one run of 24 partitions: {figures['range_24_s']:.1f} s")
            started = time.perf_counter()
            for offset in range(24 + singles - 1, 23, -1):
                one_run(offset, offset)
            figures["singles_24_s"] = time.perf_counter() - started
            say(f"  {singles} runs of one partition: {figures['singles_24_s']:.1f} s")
            if long_range:
                base = 24 + singles
                figures[f"range_{long_range}_s"] = one_run(base + long_range - 1, base)
                say(f"  one run of {long_range} partitions: {figures[f'range_{long_range}_s']:.1f} s")
            figures["long_range"] = long_range
            figures["singles"] = singles
        finally:
            aws.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--long-range", type=int, default=168)
    parser.add_argument("--singles", type=int, default=24)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = measure(args.long_range, args.singles)
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
