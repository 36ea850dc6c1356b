"""Benchmark: records/s of the raw engine's parse + aggregate pass (no AWS involved).

    make bench            # 1,000,000 records
    python -m bench.raw_aggregation --records 200000
"""

from __future__ import annotations

import argparse
import gc
import time
import resource
from datetime import datetime, timezone

from lambda_pkg.aggregate import traffic_for
from lambda_pkg.constants import VPC_A
from lambda_pkg.window import Window
from tests.analyzer_env import config
from tests.flowgen import random_lines

WINDOW = Window(datetime(2026, 1, 1, 10, tzinfo=timezone.utc), datetime(2026, 1, 1, 11, tzinfo=timezone.utc))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--distinct", type=int, default=200_000, help="distinct lines generated, then repeated")
    args = parser.parse_args()
    print(f"generating {args.records:,} flow records ...", flush=True)
    base = random_lines(min(args.distinct, args.records), seed=11, malformed_every=50)
    lines = (base * (args.records // len(base) + 1))[: args.records]
    ts = WINDOW.start_ms + 1
    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    traffic = traffic_for(config(), WINDOW)[VPC_A]
    started = time.perf_counter()
    add = traffic.add_line
    for line in lines:
        add(line, ts)
    report = traffic.report()
    elapsed = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"records:        {args.records:,}")
    print(f"OK records:     {report['total_requests']:,}")
    print(f"elapsed:        {elapsed:.2f} s")
    print(f"throughput:     {args.records / elapsed:,.0f} records/s")
    print(f"peak RSS growth during aggregation: {(rss_after - rss_before) / 1024:.1f} MB "
          f"(distinct sources {report['unique_sources']}; memory follows distinct keys, not records)")


if __name__ == "__main__":
    main()
