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
    assert cfg.retention_days == 365  # a year for audits; the reference kept 30 days
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
        ({"lambda_schedule": "every hour"}, "lambda_schedule", "rate(...) or cron(...)"),
        ({"lambda_schedule": "rate(0 hours)"}, "lambda_schedule", "every 0"),
        ({"lambda_schedule": "rate(2 hour)"}, "lambda_schedule", "rate(2 hours)"),
        ({"lambda_schedule": "rate(1 hours)"}, "lambda_schedule", "rate(1 hour)"),
        ({"lambda_schedule": "cron(15 * * *)"}, "lambda_schedule", "rate(...) or cron(...)"),
        ({"lambda_reserved_concurrency": 100000}, "lambda_reserved_concurrency", "unreserved"),
        ({"tags": {"aws:owner": "me"}}, "tags", "reserved aws: prefix"),
        ({"tags": {"AWS:Owner": "me"}}, "tags", "reserved aws: prefix"),
        ({"tags": {"Note": "x" * 300}}, "tags", "not a valid tag value"),
        ({"tags": {"k" * 129: "v"}}, "tags", "not a valid tag key"),
        ({"tags": {"Bad<key>": "v"}}, "tags", "not a valid tag key"),
        ({"tags": {f"T{i}": "v" for i in range(46)}}, "tags", "AWS allows 50"),
        ({"traffic_baseline": "nan"}, "traffic_baseline", "finite number"),
        ({"traffic_baseline": float("nan")}, "traffic_baseline", "finite number"),
        ({"traffic_baseline": "inf"}, "traffic_baseline", "finite number"),
        ({"traffic_baseline": float("inf")}, "traffic_baseline", "finite number"),
        ({"anomaly_threshold_percent": "nan"}, "anomaly_threshold_percent", "finite number"),
        ({"traffic_baseline": "4_17"}, "traffic_baseline", "finite number"),
        ({"traffic_baseline": "+417"}, "traffic_baseline", "finite number"),
        ({"traffic_baseline": "٤١٧"}, "traffic_baseline", "finite number"),
        ({"retention_days": "٣٠"}, "retention_days", "whole number"),
        ({"vpc_a_allowed_ports": "٤٤٣"}, "vpc_a_allowed_ports", "1-65535"),
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


@pytest.mark.parametrize("region", ["mars-1", "us-east", "US-EAST-1", "us-east-1 ", "useast1", "eu-west-0"])
def test_regions_that_do_not_exist_are_refused(region: str) -> None:
    with pytest.raises(InvalidStackConfig, match="aws:region.*not an AWS region name"):
        validate_config(BASE, stack="dev", region=region)


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-2", "ap-southeast-4", "us-gov-west-1", "cn-north-1",
                                    "il-central-1", "ca-west-1", "sa-east-1"])
def test_real_regions_are_accepted(region: str) -> None:
    assert validate_config(BASE, stack="dev", region=region).region == region


@pytest.mark.parametrize("schedule", ["rate(1 hour)", "rate(2 hours)", "rate(30 minutes)", "rate(1 day)",
                                      "cron(15 * * * ? *)"])
def test_good_schedules_are_accepted(schedule: str) -> None:
    assert validate(lambda_schedule=schedule).lambda_schedule == schedule


def test_a_malformed_alert_email_is_not_echoed() -> None:
    """The address is a secret: an error about it must not print it."""
    with pytest.raises(InvalidStackConfig) as caught:
        validate(alert_email="secret-person@@corp")
    assert "secret-person" not in str(caught.value)


def test_valid_tags_and_the_concurrency_cap_pass() -> None:
    cfg = validate(tags={"CostCenter": "net-01", "Team": "Réseau / Ops"}, lambda_reserved_concurrency=900)
    assert cfg.tags["Team"] == "Réseau / Ops" and cfg.lambda_reserved_concurrency == 900


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
