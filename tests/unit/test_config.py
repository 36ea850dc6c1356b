"""Stack config validation: every bad value fails before any resource, naming its key."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import (
    VALID_RETENTION_DAYS,
    InvalidStackConfig,
    StackConfig,
    subnet_plan,
    validate_config,
)

BASE = {"alert_email": "ops@example.com"}


def validate(**raw: Any) -> StackConfig:
    return validate_config({**BASE, **raw}, stack="dev", region="us-east-1")


def test_defaults_are_the_reference_design() -> None:
    cfg = validate()
    assert (cfg.vpc_a_cidr, cfg.vpc_b_cidr) == ("10.0.0.0/16", "10.1.0.0/16")
    assert cfg.vpc_a_allowed_ports == (443, 8080)
    assert cfg.vpc_b_allowed_ports == (443, 3306)
    assert cfg.retention_days == 30
    assert cfg.traffic_baseline == 417
    assert cfg.anomaly_threshold_percent == 20
    assert cfg.analyzer_schedule_enabled is False
    assert cfg.prefix == "vpcpeer-dev"


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ({"vpc_a_allowed_ports": "443, 8080"}, (443, 8080)),
        ({"vpc_a_allowed_ports": "[443, 8080]"}, (443, 8080)),
        ({"vpc_a_allowed_ports": [443.0, "8080"]}, (443, 8080)),
        ({"vpc_a_allowed_ports": [1, 65535]}, (1, 65535)),
    ],
)
def test_port_lists_accept_every_config_spelling(raw: dict[str, Any], parsed: tuple[int, ...]) -> None:
    assert validate(**raw).vpc_a_allowed_ports == parsed


@pytest.mark.parametrize("days", sorted(VALID_RETENTION_DAYS))
def test_every_cloudwatch_retention_value_is_accepted(days: int) -> None:
    assert validate(retention_days=days).retention_days == days


@pytest.mark.parametrize("days", [1096, 2192, 2557, 2922, 3288])
def test_retention_values_the_reference_rejected_are_valid(days: int) -> None:
    assert validate(retention_days=str(days)).retention_days == days


@pytest.mark.parametrize("value", [0.5, "0.5", 100, 1, 20])
def test_fractional_and_boundary_thresholds_are_valid(value: Any) -> None:
    assert validate(anomaly_threshold_percent=value).anomaly_threshold_percent == float(value)


@pytest.mark.parametrize(
    ("raw", "key", "fragment"),
    [
        ({"vpc_a_cidr": "banana"}, "vpc_a_cidr", "not a valid CIDR"),
        ({"vpc_a_cidr": "10.0.0.0/33"}, "vpc_a_cidr", "not a valid CIDR"),
        ({"vpc_a_cidr": "10.0.0.1/16"}, "vpc_a_cidr", "host bits"),
        ({"vpc_b_cidr": "fd00::/48"}, "vpc_b_cidr", "not IPv4"),
        ({"vpc_a_cidr": "10.0.0.0/8"}, "vpc_a_cidr", "/16-/20"),
        ({"vpc_b_cidr": "10.1.0.0/21"}, "vpc_b_cidr", "/16-/20"),
        ({"vpc_b_cidr": "10.0.0.0/16"}, "vpc_b_cidr", "overlaps"),
        ({"vpc_b_cidr": "10.0.128.0/17"}, "vpc_b_cidr", "overlaps"),
        ({"vpc_a_allowed_ports": "0"}, "vpc_a_allowed_ports", "1-65535"),
        ({"vpc_b_allowed_ports": [443, 70000]}, "vpc_b_allowed_ports", "1-65535"),
        ({"vpc_a_allowed_ports": "http"}, "vpc_a_allowed_ports", "1-65535"),
        ({"vpc_a_allowed_ports": [443.5]}, "vpc_a_allowed_ports", "1-65535"),
        ({"vpc_a_allowed_ports": [True]}, "vpc_a_allowed_ports", "1-65535"),
        ({"vpc_b_allowed_ports": "443,443"}, "vpc_b_allowed_ports", "twice"),
        ({"vpc_b_allowed_ports": []}, "vpc_b_allowed_ports", "non-empty"),
        ({"retention_days": 2}, "retention_days", "retention value"),
        ({"retention_days": "thirty"}, "retention_days", "whole number"),
        ({"anomaly_threshold_percent": 0}, "anomaly_threshold_percent", "(0, 100]"),
        ({"anomaly_threshold_percent": 100.5}, "anomaly_threshold_percent", "(0, 100]"),
        ({"anomaly_threshold_percent": -5}, "anomaly_threshold_percent", "(0, 100]"),
        ({"anomaly_threshold_percent": "lots"}, "anomaly_threshold_percent", "number"),
        ({"traffic_baseline": 0}, "traffic_baseline", "not positive"),
        ({"traffic_baseline": -417}, "traffic_baseline", "not positive"),
        ({"alert_email": ""}, "alert_email", "missing"),
        ({"alert_email": "not-an-address"}, "alert_email", "not an email"),
        ({"traffic_volume_threshold": 0}, "traffic_volume_threshold", "at least 1"),
        ({"lambda_schedule": "every hour"}, "lambda_schedule", "schedule expression"),
        ({"analyzer_engine": "athena"}, "analyzer_engine", "not an engine"),
        ({"create_dashboard": "yes"}, "create_dashboard", "true or false"),
        ({"flow_log_aggregation_seconds": 300}, "flow_log_aggregation_seconds", "60 or 600"),
        ({"lambda_reserved_concurrency": 0}, "lambda_reserved_concurrency", "at least 1"),
        ({"name_prefix": "Bad_Prefix"}, "name_prefix", "name prefix"),
        ({"vpc_a_cdir": "10.0.0.0/16"}, "vpc_a_cdir", "vpcpeer:vpc_a_cidr"),
    ],
)
def test_bad_values_name_the_key_and_the_fix(raw: dict[str, Any], key: str, fragment: str) -> None:
    with pytest.raises(InvalidStackConfig) as caught:
        validate(**raw)
    assert caught.value.key == key
    message = str(caught.value)
    assert message.startswith(f"vpcpeer:{key}: ")
    assert fragment in message
    assert caught.value.fix  # every error says what to do


def test_missing_alert_email_says_how_to_set_the_secret() -> None:
    with pytest.raises(InvalidStackConfig, match="--secret vpcpeer:alert_email"):
        validate_config({}, stack="dev", region="us-east-1")


def test_missing_region_is_an_error() -> None:
    with pytest.raises(InvalidStackConfig, match="aws:region"):
        validate_config(BASE, stack="dev", region=None)


@pytest.mark.parametrize(
    ("cidr", "public", "private"),
    [
        ("10.0.0.0/16", ("10.0.1.0/24", "10.0.2.0/24"), ("10.0.10.0/24", "10.0.11.0/24")),
        ("172.16.0.0/20", ("172.16.1.0/24", "172.16.2.0/24"), ("172.16.10.0/24", "172.16.11.0/24")),
        ("192.168.16.0/20", ("192.168.17.0/24", "192.168.18.0/24"), ("192.168.26.0/24", "192.168.27.0/24")),
    ],
)
def test_subnets_are_derived_from_the_vpc_cidr(cidr: str, public: tuple[str, ...], private: tuple[str, ...]) -> None:
    plan = subnet_plan(cidr)
    assert plan.public == public
    assert plan.private == private
