"""`make bench`: every benchmark in one run, figures and ratios written to docs/benchmarks.md.

    python -m bench.run                 # the full set (about 20 minutes on 2 cores)
    python -m bench.run --smoke --out /tmp/b.md   # tiny sizes: CI checks the programs run

Each tool runs as a whole process on the same file (start-up, reading and the result
included), timed from outside with its peak RSS taken from the kernel (wait4), median of
``--repeat`` runs. Inputs are written by bench.flowdata: varied hosts, ephemeral ports,
probes, and a port scan over all 65,535 ports from 2,000 sources; never lines repeated.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bench import flowdata

ROOT = Path(__file__).resolve().parent.parent
WINDOW_ISO = (datetime.fromtimestamp(flowdata.WINDOW_START, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              datetime.fromtimestamp(flowdata.WINDOW_START + flowdata.WINDOW_SECONDS, timezone.utc)
              .strftime("%Y-%m-%dT%H:%M:%SZ"))
FULL_SIZES = (100_000, 1_000_000, 3_000_000)
SMOKE_SIZES = (20_000,)
# Targets of issue #10, on the same 1M-record input.
TARGET_VS_FLOWLOGS_READER = 5.0
TARGET_VS_DUCKDB = 3.0
TARGET_2M_OVER_1M = 2.3
TARGET_SCAN_OVER_NORMAL = 1.5
TARGET_SCAN_RSS_MB = 1024


@dataclass
class Run:
    seconds: float
    rss_mb: float
    output: str


def run(cmd: list[str], repeat: int) -> Run:
    """Median wall time of ``cmd`` as a whole process, and the peak RSS of its largest
    process (wait4: a worker pool's parent or its biggest worker)."""
    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            started = time.perf_counter()
            process = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT)
            _, status, usage = os.wait4(process.pid, 0)
            seconds = time.perf_counter() - started
            process.returncode = os.waitstatus_to_exitcode(status)
            if process.returncode != 0:
                err.seek(0)
                raise SystemExit(f"benchmark command failed ({process.returncode}): {' '.join(cmd)}\n"
                                 f"{err.read().decode(errors='replace')[-2000:]}")
            out.seek(0)
            runs.append(Run(seconds, usage.ru_maxrss / 1024, out.read().decode()))
    return Run(statistics.median(r.seconds for r in runs), max(r.rss_mb for r in runs), runs[-1].output)


def core(path: Path, jobs: int) -> list[str]:
    return [sys.executable, "-m", "vpcpeer_orchestration.cli", "analyze", "--files", f"VPC-A={path}",
            "--start", WINDOW_ISO[0], "--end", WINDOW_ISO[1], "--json", "--jobs", str(jobs)]


def duck(path: Path) -> list[str]:
    return [sys.executable, "-m", "bench.duckdb_headline", str(path), str(flowdata.WINDOW_START),
            str(flowdata.WINDOW_START + flowdata.WINDOW_SECONDS)]


def floor(path: Path) -> list[str]:
    return [sys.executable, "-m", "bench.minimal_loop", str(path)]


def flr(path: Path) -> list[str]:
    return [sys.executable, "-m", "bench.flowlogs_reader_parse", str(path)]


def analysis(data: Path, sizes: tuple[int, ...], scan_size: int, repeat: int, say) -> dict:
    """(a): the analysis core vs DuckDB vs flowlogs-reader, and the core's own scaling."""
    rows = []
    inputs = [("normal", n) for n in sizes] + [("port-scan", scan_size)]
    if len(sizes) > 1:
        inputs.append(("normal", 2 * sizes[1]))  # linearity: 2M against 1M
    for kind, n in inputs:
        path = data / f"{kind}-{n}.log"
        if not path.exists():
            say(f"  writing {path.name} ...")
            flowdata.write(path, kind, n)
        reps = repeat if n <= 2_000_000 else 1  # the 3M input once: it only shows the trend
        row = {"kind": kind, "records": n, "mb": path.stat().st_size / 1e6, "repeat": reps}
        for name, cmd in (("core_1", core(path, 1)), ("core_2", core(path, 2)), ("duckdb", duck(path)),
                          ("flowlogs_reader", flr(path)), ("floor", floor(path))):
            if name in ("flowlogs_reader", "floor") and (kind, n) not in {
                    ("normal", sizes[min(1, len(sizes) - 1)]), ("port-scan", scan_size), ("normal", sizes[0])}:
                continue  # the yardsticks only where a ratio is asked for
            result = run(cmd, reps)
            row[name] = {"s": result.seconds, "rss_mb": result.rss_mb}
            if name.startswith("core"):
                report = json.loads(result.output)["vpcs"]["VPC-A"]
                row["requests"] = report["total_requests"]
                row["truncated"] = report["evidence"]["truncated"]
            elif name == "duckdb":
                row["duckdb_requests"] = json.loads(result.output)["total_requests"]
            say(f"  {kind} {n:,}: {name} {result.seconds:.2f} s, {result.rss_mb:.0f} MB")
        rows.append(row)
    return {"rows": rows}


def code_location(repeat: int) -> dict:
    """(d): loading the code location against a one-asset module, whole process."""
    ours = [sys.executable, "-c", "from vpcpeer_orchestration.definitions import defs; defs()"]
    one = [sys.executable, "-c", "import dagster as dg\n@dg.asset\ndef a(): return 1\ndg.Definitions(assets=[a])"]
    bare = [sys.executable, "-c", "import dagster"]
    return {name: run(cmd, repeat).seconds for name, cmd in (("vpcpeer", ours), ("one_asset", one), ("import_dagster", bare))}


def insights(sizes: list[int], scans: list[int]) -> list[dict]:
    """(b), in a process of its own."""
    out = subprocess.run([sys.executable, "-m", "bench.insights_cost", "--json", "--records", *map(str, sizes),
                          "--scan", *map(str, scans)],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def e2e(long_range: int, singles: int) -> dict:
    """(c) and (e), in a process of their own (a fresh instance and embedded AWS)."""
    out = subprocess.run([sys.executable, "-m", "bench.e2e", "--json", "--long-range", str(long_range),
                          "--singles", str(singles)], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def interpreter() -> str:
    """How this CPython was built: without PGO/LTO it runs pure-Python loops markedly slower."""
    import sysconfig

    args = sysconfig.get_config_var("CONFIG_ARGS") or ""
    flags = [flag for flag in ("--enable-optimizations", "--with-lto") if flag in args]
    return f"built with {' and '.join(flags)}" if flags else "built without --enable-optimizations (PGO) or LTO"


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) // 1024 // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0)
    return (f"{os.cpu_count()} cores ({cpu}), {memory} GiB, {platform.system()} {platform.release()}, "
            f"CPython {platform.python_version()} ({interpreter()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition (CI)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--data", type=Path, help="where inputs are written (default: a temporary directory)")
    parser.add_argument("--no-e2e", action="store_true")
    args = parser.parse_args()
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    sizes, scan, repeat = (SMOKE_SIZES, SMOKE_SIZES[0], 1) if args.smoke else (FULL_SIZES, 1_000_000, args.repeat)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vpcpeer-bench-data-") as tmp:
        data = args.data or Path(tmp)
        data.mkdir(parents=True, exist_ok=True)
        say("(a) analysis core vs DuckDB vs flowlogs-reader ...")
        a = analysis(data, sizes, scan, repeat, say)
    say("(b) Logs Insights cost per VPC-hour ...")
    b = insights([2_000, 20_000] if args.smoke else [10_000, 100_000, 1_000_000], [12_000] if args.smoke else [1_000_000])
    say("(d) code-location load ...")
    d = code_location(repeat)
    c = None
    if not args.no_e2e:
        say("(c, e) end to end on the embedded default ...")
        c = e2e(0 if args.smoke else 168, 2 if args.smoke else 24)
    from bench.report import render

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(machine(), a, b, d, c, smoke=args.smoke, seconds=time.perf_counter() - started))
    say(f"wrote {args.out}")


if __name__ == "__main__":
    main()
