"""Windows (UTC, half-open) and configuration from the environment."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from lambda_pkg.errors import InvalidAnalyzerConfig, InvalidWindow
from lambda_pkg.window import last_complete_hour, window_for_event
from tests.analyzer_env import ENV, config

LAG = timedelta(minutes=10)


@pytest.mark.parametrize(
    ("now", "start"),
    [
        ("2026-03-01T10:09:59+00:00", "2026-03-01T08:00:00+00:00"),  # inside the settle lag
        ("2026-03-01T10:10:00+00:00", "2026-03-01T09:00:00+00:00"),
        ("2026-03-01T11:30:00+01:00", "2026-03-01T09:00:00+00:00"),  # non-UTC clock, same instant rules
        ("2026-03-01T00:05:00+00:00", "2026-02-28T22:00:00+00:00"),  # across midnight and month
    ],
)
def test_last_complete_hour_is_utc_aligned_after_the_lag(now: str, start: str) -> None:
    window = last_complete_hour(datetime.fromisoformat(now), LAG)
    assert window.start == datetime.fromisoformat(start)
    assert window.end - window.start == timedelta(hours=1)


def test_event_window_is_taken_as_given() -> None:
    window = window_for_event({"window": {"start": "2026-01-01T10:00:00Z", "end": "2026-01-01T11:00:00+00:00"}},
                              datetime.now(timezone.utc), LAG)
    assert window.to_json() == {"start": "2026-01-01T10:00:00Z", "end": "2026-01-01T11:00:00Z"}


@pytest.mark.parametrize(
    "event",
    [
        {"window": {"start": "2026-01-01T10:00:00", "end": "2026-01-01T11:00:00Z"}},
        {"window": {"start": "yesterday", "end": "2026-01-01T11:00:00Z"}},
        {"window": {"start": "2026-01-01T11:00:00Z", "end": "2026-01-01T10:00:00Z"}},
        {"window": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-03T00:00:00Z"}},
        {"window": {"start": "2026-01-01T00:00:00Z"}},
        {"window": "last hour"},
        ["not", "an", "object"],
    ],
)
def test_bad_windows_raise(event) -> None:
    with pytest.raises(InvalidWindow):
        window_for_event(event, datetime.now(timezone.utc), LAG)


def test_config_parses_the_contract_variables() -> None:
    cfg = config(ANOMALY_THRESHOLD="0.5", TRAFFIC_BASELINE="417.5")
    assert cfg.thresholds.anomaly_threshold_percent == 0.5
    assert cfg.vpc("VPC-B").allowed_ports == {443, 3306}
    assert cfg.engine == "raw"


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"VPC_A_LOG_GROUP": ""}, "VPC_A_LOG_GROUP"),
        ({"VPC_B_CIDR": "10.1.0.0/33"}, "VPC_B_CIDR"),
        ({"VPC_B_CIDR": "10.0.0.0/8"}, "VPC_B_CIDR"),
        ({"SNS_TOPIC_ARN": " "}, "SNS_TOPIC_ARN"),
        ({"ANOMALY_THRESHOLD": "0"}, "ANOMALY_THRESHOLD"),
        ({"ANOMALY_THRESHOLD": "150"}, "ANOMALY_THRESHOLD"),
        ({"TRAFFIC_BASELINE": "many"}, "TRAFFIC_BASELINE"),
        ({"TRAFFIC_BASELINE": "-1"}, "TRAFFIC_BASELINE"),
        ({"ANALYZER_ENGINE": "athena"}, "ANALYZER_ENGINE"),
        ({"VPC_A_ALLOWED_PORTS": "443,http"}, "VPC_A_ALLOWED_PORTS"),
        ({"FLOW_LOG_FORMAT": "${version}"}, "FLOW_LOG_FORMAT"),
    ],
)
def test_bad_environment_names_the_variable(overrides: dict[str, str], variable: str) -> None:
    with pytest.raises(InvalidAnalyzerConfig) as caught:
        config(**overrides)
    assert caught.value.variable == variable and str(caught.value).startswith(variable)


def test_optional_settings_default() -> None:
    env = {k: v for k, v in ENV.items() if k not in ("ANALYZER_ENGINE", "VPC_A_ALLOWED_PORTS", "TRAFFIC_BASELINE")}
    from lambda_pkg.settings import config_from_env

    cfg = config_from_env(env)
    assert cfg.engine == "insights" and cfg.vpc("VPC-A").allowed_ports == {443, 8080}
    assert cfg.thresholds.traffic_baseline == 417
