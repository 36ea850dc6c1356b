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


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        ([], "must be a JSON object, got list"),
        ("", "must be a JSON object, got str"),
        (0, "must be a JSON object, got int"),
        ({"orchestrated": "false"}, '"orchestrated" must be true or false'),
        ({"orchestrated": 1}, '"orchestrated" must be true or false'),
        ({"engine": "athena"}, '"engine" must be one of insights, raw'),
        ({"source": ["aws.events"]}, '"source" must be text'),
    ],
)
def test_events_with_wrong_types_are_refused_before_any_aws_call(event, fragment: str) -> None:
    """A wrong type never falls back to a default: "false" as a string would have skipped
    every alert, [] would have analysed (and alerted on) the last hour."""
    from lambda_pkg.errors import InvalidEvent
    from lambda_pkg.handler import handle

    def no_clients():
        raise AssertionError("no AWS client may be created for a malformed event")

    with pytest.raises(InvalidEvent, match=fragment.replace("(", r"\(")):
        handle(event, None, environ=ENV, clients=no_clients)


def test_eventbridge_events_keep_working() -> None:
    from lambda_pkg.handler import Invocation

    scheduled = {"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
                 "account": "123456789012", "time": "2026-03-01T10:15:00Z", "region": "us-east-1",
                 "resources": ["arn:aws:events:us-east-1:123456789012:rule/x"], "detail": {}}
    invocation = Invocation.of(scheduled, datetime(2026, 3, 1, 10, 15, tzinfo=timezone.utc), LAG)
    assert invocation.trigger == "aws.events" and not invocation.orchestrated and invocation.engine is None
    assert invocation.window.to_json()["start"] == "2026-03-01T09:00:00Z"
    assert Invocation.of(None, datetime(2026, 3, 1, 10, 15, tzinfo=timezone.utc), LAG).window == invocation.window


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "4_17", "+417", "٤١٧", "1e3", " ", "NaN"])
def test_thresholds_are_plain_finite_numbers(bad: str) -> None:
    if not bad.strip():
        assert config(TRAFFIC_BASELINE=bad).thresholds.traffic_baseline == 417  # unset: the default
        return
    for variable in ("TRAFFIC_BASELINE", "ANOMALY_THRESHOLD", "PORT_SCAN_MIN_REJECT_RATIO"):
        with pytest.raises(InvalidAnalyzerConfig, match=f"{variable}: .* is not a plain number"):
            config(**{variable: bad})


def test_allowed_ports_are_ascii_digits() -> None:
    with pytest.raises(InvalidAnalyzerConfig, match="VPC_A_ALLOWED_PORTS"):
        config(VPC_A_ALLOWED_PORTS="٤٤٣")
    with pytest.raises(InvalidAnalyzerConfig, match="VPC_A_ALLOWED_PORTS"):
        config(VPC_A_ALLOWED_PORTS="443,²")
