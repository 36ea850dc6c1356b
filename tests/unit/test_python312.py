"""The analyzer core also runs on the Lambda's Python 3.12 (pure modules need only the stdlib)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _python312() -> str | None:
    """A working python3.12 (pyenv shims answer even when the version is not selected)."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(str(p) for p in root.glob("versions/3.12*/bin/python3.12")) + [shutil.which("python3.12") or ""]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    return None


PYTHON312 = _python312()

PROBE = r"""
import json, sys
from datetime import datetime, timezone
from lambda_pkg.aggregate import traffic_for
from lambda_pkg.detect import detect_anomalies
from lambda_pkg.settings import config_from_env
from lambda_pkg.window import Window
env = {"VPC_A_LOG_GROUP": "a", "VPC_B_LOG_GROUP": "b", "VPC_A_CIDR": "10.0.0.0/16", "VPC_B_CIDR": "10.1.0.0/16",
       "SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t", "ANOMALY_THRESHOLD": "0.5"}
cfg = config_from_env(env)
w = Window(datetime(2026, 1, 1, 10, tzinfo=timezone.utc), datetime(2026, 1, 1, 11, tzinfo=timezone.utc))
t = traffic_for(cfg, w)
for port in range(1, 40):
    t["VPC-A"].add_line(f"2 1 eni-1 10.1.2.66 10.0.10.4 40000 {port} 6 1 40 1 2 REJECT OK", w.start_ms + port)
t["VPC-A"].add_line("2 1 eni-1 - - - - - - - 1 2 - NODATA", w.start_ms)
reports = {k: v.report() for k, v in t.items()}
print(json.dumps({"version": sys.version_info[:2], "requests": reports["VPC-A"]["total_requests"],
                  "anomalies": [a["type"] for a in detect_anomalies(reports, cfg.thresholds)]}))
"""


@pytest.mark.skipif(PYTHON312 is None, reason="python3.12 is not installed on this machine")
def test_core_runs_on_python_312() -> None:
    done = subprocess.run([PYTHON312, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["version"] == [3, 12]
    assert result["requests"] == 39 and "port_scan" in result["anomalies"]
