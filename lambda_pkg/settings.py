"""Analyzer configuration from environment variables, parsed inside each call.

Parsing at call time (not import time) means a bad value fails that invocation with a
message naming the variable, instead of crashing every import the way the reference did.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from lambda_pkg import constants as c
from lambda_pkg.errors import InvalidAnalyzerConfig
from lambda_pkg.records import FlowLogFormat, FormatError


_PLAIN_NUMBER = re.compile(c.PLAIN_NUMBER_PATTERN, re.ASCII)


@dataclass(frozen=True)
class Thresholds:
    """Detection thresholds; the defaults are the reference's where it had one."""

    traffic_baseline: float = float(c.DEFAULT_TRAFFIC_BASELINE)
    anomaly_threshold_percent: float = c.DEFAULT_ANOMALY_THRESHOLD_PERCENT
    unexpected_port_min_count: int = 10
    external_traffic_threshold: int = 50
    rejection_threshold: int = 100
    port_scan_min_ports: int = 15
    port_scan_min_hosts: int = 15
    port_scan_min_reject_ratio: float = 0.5
    port_scan_min_records: int = 20
    # A VPC whose log holds nothing while its peer logged this many accepted flows into it is blind.
    flow_logs_silent_min_peer_flows: int = 20
    # The requests band (lambda_pkg/baseline.py): learned per VPC and hour, or the constant above.
    baseline: str = c.DEFAULT_BASELINE
    baseline_days: int = c.DEFAULT_BASELINE_DAYS
    baseline_min_days: int = c.DEFAULT_BASELINE_MIN_DAYS
    # Half-width of the band in robust standard deviations, and the least spread as a share of
    # the expected value (an hour that varied by 2 % so far is not alarming at 7 %).
    baseline_band_sigmas: float = 3.0
    baseline_min_spread_percent: float = 10.0
    # New talkers (lambda_pkg/talkers.py): not seen across the peering for this many days; 0 is off.
    talker_days: int = c.DEFAULT_TALKER_DAYS

    @property
    def spike_threshold(self) -> float:
        """Requests per hour above which traffic is a spike."""
        return self.traffic_baseline * (1 + self.anomaly_threshold_percent / 100)


@dataclass(frozen=True)
class VpcSpec:
    """One side of the peering as the analyzer sees it."""

    label: str
    log_group: str
    cidr: ipaddress.IPv4Network
    allowed_ports: frozenset[int]


@dataclass(frozen=True)
class AnalyzerConfig:
    """Everything one analysis needs besides AWS clients and the window."""

    vpcs: tuple[VpcSpec, ...]
    sns_topic_arn: str
    engine: str = "insights"
    thresholds: Thresholds = field(default_factory=Thresholds)
    log_format: FlowLogFormat = field(default_factory=FlowLogFormat)
    settle_lag: timedelta = timedelta(seconds=c.DEFAULT_SETTLE_LAG_SECONDS)
    query_deadline_seconds: float = float(c.DEFAULT_QUERY_DEADLINE_SECONDS)
    max_concurrent_queries: int = c.DEFAULT_INSIGHTS_MAX_CONCURRENT_QUERIES
    source: str = "vpcpeer traffic analyzer"
    stack: str = "default"
    ledger_table: str = ""
    claim_seconds: float = float(c.DEFAULT_ALERT_CLAIM_SECONDS)

    def vpc(self, label: str) -> VpcSpec:
        return next(v for v in self.vpcs if v.label == label)


def _required(env: Mapping[str, str], name: str) -> str:
    value = (env.get(name) or "").strip()
    if not value:
        raise InvalidAnalyzerConfig(name, "is not set", "Set it in the function's environment (the Pulumi program does).")
    return value


def _number(env: Mapping[str, str], name: str, default: float, *, low: float | None = None,
            high: float | None = None, integer: bool = False, low_open: bool = False) -> float:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    if not _PLAIN_NUMBER.fullmatch(text):
        raise InvalidAnalyzerConfig(name, f"{text!r} is not a plain number", "Use digits, e.g. 20 or 0.5.")
    value = float(text)
    if integer and not value.is_integer():
        raise InvalidAnalyzerConfig(name, f"{text!r} is not a whole number", "Use an integer.")
    if low is not None and (value <= low if low_open else value < low):
        raise InvalidAnalyzerConfig(name, f"{text} is too small", f"Use a value {'>' if low_open else '>='} {low:g}.")
    if high is not None and value > high:
        raise InvalidAnalyzerConfig(name, f"{text} is too large", f"Use a value <= {high:g}.")
    return int(value) if integer else value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = (env.get(name) or default).strip()
    if value not in choices:
        raise InvalidAnalyzerConfig(name, f"{value!r} is not one of {', '.join(choices)}", f"Use one of {', '.join(choices)}.")
    return value


def parse_ports(name: str, text: str) -> frozenset[int]:
    """Comma-separated TCP ports, whitespace tolerated."""
    ports = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not (part.isascii() and part.isdigit()) or not 1 <= int(part) <= 65535:
            raise InvalidAnalyzerConfig(name, f"{part!r} is not a port in 1-65535", "Use e.g. 443,8080.")
        ports.add(int(part))
    if not ports:
        raise InvalidAnalyzerConfig(name, "lists no port", "Use e.g. 443,8080.")
    return frozenset(ports)


def _cidr(env: Mapping[str, str], name: str) -> ipaddress.IPv4Network:
    text = _required(env, name)
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidAnalyzerConfig(name, f"{text!r} is not a CIDR block", "Use e.g. 10.0.0.0/16.") from None
    if network.version != 4:
        raise InvalidAnalyzerConfig(name, f"{text!r} is not IPv4", "VPC primary CIDRs are IPv4.")
    return network


def config_from_env(env: Mapping[str, str]) -> AnalyzerConfig:
    """Build the configuration from the contract's variables (DESIGN "Contracts")."""
    specs = []
    for label, group_var, cidr_var, ports_var in (
        (c.VPC_A, c.ENV_VPC_A_LOG_GROUP, c.ENV_VPC_A_CIDR, c.ENV_VPC_A_ALLOWED_PORTS),
        (c.VPC_B, c.ENV_VPC_B_LOG_GROUP, c.ENV_VPC_B_CIDR, c.ENV_VPC_B_ALLOWED_PORTS),
    ):
        ports_text = env.get(ports_var)
        ports = parse_ports(ports_var, ports_text) if ports_text else frozenset(c.DEFAULT_ALLOWED_PORTS[label])
        specs.append(VpcSpec(label, _required(env, group_var), _cidr(env, cidr_var), ports))
    if specs[0].cidr.overlaps(specs[1].cidr):
        raise InvalidAnalyzerConfig(c.ENV_VPC_B_CIDR, f"{specs[1].cidr} overlaps {specs[0].cidr}", "Peered VPC CIDRs are disjoint.")
    engine = _choice(env, c.ENV_ANALYZER_ENGINE, c.ANALYZER_ENGINES, "insights")
    try:
        log_format = FlowLogFormat.parse(env.get("FLOW_LOG_FORMAT"))
    except FormatError as exc:
        raise InvalidAnalyzerConfig("FLOW_LOG_FORMAT", str(exc), "Give the flow log's format, e.g. ${version} ${account-id} ...") from None
    defaults = Thresholds()
    thresholds = Thresholds(
        traffic_baseline=_number(env, c.ENV_TRAFFIC_BASELINE, defaults.traffic_baseline, low=0, low_open=True),
        anomaly_threshold_percent=_number(env, c.ENV_ANOMALY_THRESHOLD, defaults.anomaly_threshold_percent, low=0, high=100, low_open=True),
        unexpected_port_min_count=_number(env, "UNEXPECTED_PORT_MIN_COUNT", defaults.unexpected_port_min_count, low=1, integer=True),
        external_traffic_threshold=_number(env, "EXTERNAL_TRAFFIC_THRESHOLD", defaults.external_traffic_threshold, low=0, integer=True),
        rejection_threshold=_number(env, "REJECTION_THRESHOLD", defaults.rejection_threshold, low=0, integer=True),
        port_scan_min_ports=_number(env, "PORT_SCAN_MIN_PORTS", defaults.port_scan_min_ports, low=2, integer=True),
        port_scan_min_hosts=_number(env, "PORT_SCAN_MIN_HOSTS", defaults.port_scan_min_hosts, low=2, integer=True),
        port_scan_min_reject_ratio=_number(env, "PORT_SCAN_MIN_REJECT_RATIO", defaults.port_scan_min_reject_ratio, low=0, high=1),
        port_scan_min_records=_number(env, "PORT_SCAN_MIN_RECORDS", defaults.port_scan_min_records, low=1, integer=True),
        flow_logs_silent_min_peer_flows=_number(env, "FLOW_LOGS_SILENT_MIN_PEER_FLOWS",
                                                defaults.flow_logs_silent_min_peer_flows, low=1, integer=True),
        baseline=_choice(env, c.ENV_BASELINE, c.BASELINE_MODES, c.DEFAULT_BASELINE),
        baseline_days=_number(env, "BASELINE_DAYS", defaults.baseline_days, low=1, high=455, integer=True),
        baseline_min_days=_number(env, "BASELINE_MIN_DAYS", defaults.baseline_min_days, low=2, high=455, integer=True),
        baseline_band_sigmas=_number(env, "BASELINE_BAND_SIGMAS", defaults.baseline_band_sigmas, low=0, low_open=True),
        baseline_min_spread_percent=_number(env, "BASELINE_MIN_SPREAD_PERCENT", defaults.baseline_min_spread_percent,
                                            low=0, high=100),
        talker_days=_number(env, c.ENV_TALKER_DAYS, defaults.talker_days, low=0, high=90, integer=True),
    )
    if thresholds.baseline_min_days > thresholds.baseline_days:
        raise InvalidAnalyzerConfig("BASELINE_MIN_DAYS", f"{thresholds.baseline_min_days} is more than BASELINE_DAYS "
                                    f"({thresholds.baseline_days})", "Read at least as many days as the band needs.")
    return AnalyzerConfig(
        vpcs=tuple(specs),
        sns_topic_arn=_required(env, c.ENV_SNS_TOPIC_ARN),
        engine=engine,
        thresholds=thresholds,
        log_format=log_format,
        settle_lag=timedelta(seconds=_number(env, c.ENV_SETTLE_LAG_SECONDS, c.DEFAULT_SETTLE_LAG_SECONDS, low=0,
                                             high=3600, integer=True)),
        query_deadline_seconds=_number(env, "QUERY_DEADLINE_SECONDS", c.DEFAULT_QUERY_DEADLINE_SECONDS, low=5, high=900),
        max_concurrent_queries=_number(env, c.ENV_INSIGHTS_MAX_CONCURRENT_QUERIES,
                                       c.DEFAULT_INSIGHTS_MAX_CONCURRENT_QUERIES, low=1,
                                       high=c.MAX_INSIGHTS_CONCURRENT_QUERIES, integer=True),
        source=(env.get("AWS_LAMBDA_FUNCTION_NAME") or "vpcpeer traffic analyzer").strip(),
        stack=(env.get(c.ENV_STACK_NAME) or "default").strip(),
        ledger_table=(env.get(c.ENV_ALERT_LEDGER_TABLE) or "").strip(),
        claim_seconds=_number(env, "ALERT_CLAIM_SECONDS", c.DEFAULT_ALERT_CLAIM_SECONDS, low=1, high=3600),
    )
