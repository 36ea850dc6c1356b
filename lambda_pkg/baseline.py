"""Learned hourly baselines: what each VPC usually does in this hour, and how far from it is news.

Traffic has a daily shape (on the embedded default, about 290 requests an hour at night and 460
in the afternoon), so one constant for every hour misses a surge at night and sits close to a
busy afternoon. The band of an hour is learned from the same hour of the previous days (of the
previous weeks, once ``baseline_min_days`` of them exist), robustly: the median is the expected
value and the spread is the median absolute deviation scaled to a standard deviation, never
below ``baseline_min_spread_percent`` of the median or the counting noise (its square root).
Until enough days are there, the configured constant stands in (``method: static``), exactly
the reference's rule.

The history is the analyzer's own custom metrics in CloudWatch (``TotalRequests``,
``RejectedConnections``, ``ExternalTraffic`` per VPC, one datapoint per hour stamped at its
start): the Lambda and Dagster both read them, they exist only for hours whose flow logs covered
the whole hour (a blind hour is never learned as a quiet one), and CloudWatch keeps hourly
datapoints for 455 days at no cost beyond the metrics already published. ``read_history`` is
the adapter; everything else here is pure.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from lambda_pkg.constants import BASELINE_STATIC, CUSTOM_METRICS, METRIC_NAMESPACE
from lambda_pkg.errors import HistoryUnavailable
from lambda_pkg.settings import Thresholds

HOUR_SECONDS = 3600
DAY_SECONDS = 24 * HOUR_SECONDS
WEEK_SECONDS = 7 * DAY_SECONDS
# The median absolute deviation of normal data times this is its standard deviation.
MAD_TO_SIGMA = 1.4826
# The report fields learned per VPC, each the value of one of the analyzer's custom metrics.
LEARNED_FIELDS = ("total_requests", "rejected_connections", "external_traffic_count")
METRIC_OF_FIELD = {field: metric for metric, (field, _unit) in CUSTOM_METRICS.items()}
# GetMetricStatistics returns at most 1,440 datapoints a call: 60 days of hours.
MAX_DATAPOINTS = 1440

# (VPC label, report field) -> {hour start as epoch seconds: value}
History = dict[tuple[str, str], dict[int, float]]


def hour_key(moment: datetime) -> int:
    """Epoch seconds of the hour ``moment`` falls in."""
    return int(moment.timestamp()) // HOUR_SECONDS * HOUR_SECONDS


def samples(series: Mapping[int, float], hour: int, t: Thresholds) -> tuple[list[float], str]:
    """The same hour of the previous weeks, when ``baseline_min_days`` of them exist within
    ``baseline_days``; else the same hour of the previous days."""
    weekly = [series[h] for k in range(1, t.baseline_days // 7 + 1) if (h := hour - k * WEEK_SECONDS) in series]
    if len(weekly) >= t.baseline_min_days:
        return weekly, "hour of week"
    return [series[h] for k in range(1, t.baseline_days + 1) if (h := hour - k * DAY_SECONDS) in series], "hour of day"


def static_band(field: str, t: Thresholds, reason: str) -> dict[str, Any]:
    """The configured constant: for requests the reference's rule (above baseline + threshold
    percentage is a spike, no lower bound); other fields have no constant band."""
    if field == "total_requests":
        return {"method": BASELINE_STATIC, "expected": t.traffic_baseline, "low": None, "high": t.spike_threshold,
                "reason": reason}
    return {"method": BASELINE_STATIC, "expected": None, "low": None, "high": None, "reason": reason}


def band(field: str, series: Mapping[int, float], hour: int, t: Thresholds) -> dict[str, Any]:
    """The band of ``field`` for the hour starting at ``hour`` (epoch seconds)."""
    if t.baseline == BASELINE_STATIC:
        return static_band(field, t, "baseline: static")
    values, basis = samples(series, hour, t)
    if len(values) < t.baseline_min_days:
        return static_band(field, t, f"learning: {len(values)} of {t.baseline_min_days} days of this hour seen")
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    spread = max(MAD_TO_SIGMA * mad, median * t.baseline_min_spread_percent / 100, math.sqrt(median), 1.0)
    width = t.baseline_band_sigmas * spread
    return {"method": "learned", "basis": basis, "samples": len(values), "expected": round(median, 1),
            "low": round(max(0.0, median - width), 1), "high": round(median + width, 1), "spread": round(spread, 2)}


def attach(report: dict[str, Any], history: History, t: Thresholds) -> None:
    """Give every VPC of ``report`` its bands and ``expected_requests``, from ``history`` (which
    must not hold the report's own hour)."""
    hour = hour_key(datetime.fromisoformat(report["window"]["start"].replace("Z", "+00:00")))
    for label, vpc in report["vpcs"].items():
        bands = {field: band(field, history.get((label, field), {}), hour, t) for field in LEARNED_FIELDS}
        vpc["baseline"] = bands
        vpc["expected_requests"] = bands["total_requests"]["expected"]


def learn(history: History, report: Mapping[str, Any]) -> None:
    """Add the report's hour to ``history``, as its metrics would be published: VPCs whose flow
    log covered the hour only."""
    hour = hour_key(datetime.fromisoformat(report["window"]["start"].replace("Z", "+00:00")))
    for label, vpc in report["vpcs"].items():
        if vpc.get("coverage", {}).get("complete", True):
            for field in LEARNED_FIELDS:
                history.setdefault((label, field), {})[hour] = float(vpc[field])


def lookback(first_hour: datetime, t: Thresholds) -> tuple[datetime, datetime]:
    """The history an analysis starting at ``first_hour`` reads: ``baseline_days`` before it."""
    return first_hour - timedelta(days=t.baseline_days), first_hour


def read_history(cloudwatch: Any, vpcs: Iterable[str], start: datetime, end: datetime,
                 namespace: str = METRIC_NAMESPACE) -> History:
    """The published hourly values of every learned field of ``vpcs`` in [start, end).

    Raises HistoryUnavailable (transient) if CloudWatch cannot be read: an hour judged without
    its history would be judged against the constant, silently.
    """
    from botocore.exceptions import BotoCoreError, ClientError  # the adapter's only: the core stays pure

    history: History = {}
    start = datetime.fromtimestamp(hour_key(start), timezone.utc)
    for label in vpcs:
        for field in LEARNED_FIELDS:
            series = history.setdefault((label, field), {})
            chunk_start = start
            while chunk_start < end:
                chunk_end = min(end, chunk_start + timedelta(hours=MAX_DATAPOINTS))
                try:
                    response = cloudwatch.get_metric_statistics(
                        Namespace=namespace, MetricName=METRIC_OF_FIELD[field],
                        Dimensions=[{"Name": "VPC", "Value": label}],
                        StartTime=chunk_start, EndTime=chunk_end, Period=HOUR_SECONDS, Statistics=["Sum"],
                    )
                except (ClientError, BotoCoreError) as exc:
                    raise HistoryUnavailable(f"could not read the {METRIC_OF_FIELD[field]} history of {label} "
                                             f"from CloudWatch: {exc}") from exc
                for point in response.get("Datapoints", []):
                    series[hour_key(point["Timestamp"])] = float(point["Sum"])
                chunk_start = chunk_end
    return history
