"""`make bench` in smoke mode: every benchmark program runs and the page is written (the
figures of tiny inputs mean nothing; the full run is `make bench`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_benchmarks_run_and_agree_with_duckdb(tmp_path) -> None:
    out = tmp_path / "benchmarks.md"
    done = subprocess.run([sys.executable, "-m", "bench.run", "--smoke", "--out", str(out), "--data", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    page = out.read_text()
    assert "**Smoke run**" in page
    assert "vpcpeer's total_requests equal DuckDB's on every input: yes." in page
    for section in ("## (a)", "## (b)", "## (c)", "## (d)", "## (e)"):
        assert section in page
    assert "| first (creates every resource) |" in page and "| one-partition runs | 2 |" in page
