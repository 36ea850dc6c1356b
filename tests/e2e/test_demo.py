"""`vpcpeer demo` as a user runs it, twice: anomalies alerted once, normal hours quiet."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime, timezone

from tests.e2e.conftest import BIN, REPO


def demo(env: dict[str, str]) -> dict:
    done = subprocess.run([str(BIN / "vpcpeer"), "demo", "--hours", "6", "--json"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "[5/5] report" in done.stdout and "Dagster instance:" in done.stdout
    return json.loads(done.stdout[done.stdout.index("\n{") + 1:])


def test_demo_twice_alerts_each_anomaly_once(homes) -> None:
    now = datetime.now(timezone.utc)
    if now.minute >= 57:  # both runs must see the same "last 6 hours"
        time.sleep((60 - now.minute) * 60 - now.second + 5)
    first = demo(homes)
    hours = first["hours"]
    assert len(hours) == 6
    scanned = [h for h, v in hours.items() if any(a.startswith("port_scan") for a in v["anomalies"])]
    assert len(scanned) == 1
    assert all(v["anomalies"] == [] for h, v in hours.items() if h not in scanned)
    assert first["alerts_sent"] >= 1 and first["alerts_received"] == first["alert_messages"] >= 1

    second = demo(homes)
    assert second["alerts_sent"] == 0 and second["alert_messages"] == 0
    assert second["alerts_received"] == first["alerts_received"]  # nothing new reached the inbox
    assert second["dagster_home"] == first["dagster_home"]
