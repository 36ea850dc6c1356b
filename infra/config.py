"""Stack configuration: parsing and validation, before any resource is declared.

Pure module (no pulumi, boto3 or dagster): the Pulumi entry point, the preview runner, the
Dagster resources and the tests all validate the same way, and a bad value fails with a
message that names the key and says how to fix it instead of half-creating a network.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lambda_pkg.constants import (
    ANALYZER_ENGINES,
    BASELINE_MODES,
    DEFAULT_BASELINE,
    ENV_BASELINE,
    DEFAULT_ALLOWED_PORTS,
    DEFAULT_ANOMALY_THRESHOLD_PERCENT,
    DEFAULT_TRAFFIC_BASELINE,
    ENV_ALERT_LEDGER_TABLE,
    ENV_ANALYZER_ENGINE,
    ENV_ANOMALY_THRESHOLD,
    ENV_SNS_TOPIC_ARN,
    ENV_STACK_NAME,
    ENV_TRAFFIC_BASELINE,
    ENV_VPC_A_ALLOWED_PORTS,
    ENV_VPC_A_CIDR,
    ENV_VPC_A_LOG_GROUP,
    ENV_VPC_B_ALLOWED_PORTS,
    ENV_VPC_B_CIDR,
    ENV_VPC_B_LOG_GROUP,
    PLAIN_NUMBER_PATTERN,
    VPC_A,
    VPC_B,
)

PROJECT = "vpcpeer"

# Every value CloudWatch Logs accepts for PutRetentionPolicy.
VALID_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
     2922, 3288, 3653}
)

# VPC prefixes that leave room for the four /24 subnets at the reference's offsets
# (public .1/.2, private .10/.11): anything from /16 to /20 holds at least 16 /24s.
MIN_VPC_PREFIX = 16
MAX_VPC_PREFIX = 20
SUBNET_PREFIX = 24
PUBLIC_SUBNET_INDEXES = (1, 2)
PRIVATE_SUBNET_INDEXES = (10, 11)
AVAILABILITY_ZONE_COUNT = 2

FLOW_LOG_AGGREGATION_SECONDS = (60, 600)

# Code signing of the analyzer (CKV_AWS_272). "enforce": the stack signs the reproducible zip
# with an AWS Signer job and Lambda refuses any code not signed by the stack's profile; "off":
# no signing (the embedded AWS, which has neither signing jobs nor code-signing configs, and
# partitions without AWS Signer).
CODE_SIGNING_ENFORCE = "enforce"
CODE_SIGNING_OFF = "off"
CODE_SIGNING_MODES = (CODE_SIGNING_ENFORCE, CODE_SIGNING_OFF)

# EventBridge rate expressions: a positive whole number, the unit singular for 1 and plural above.
_RATE_RE = re.compile(r"rate\(([0-9]+) (minute|hour|day)(s?)\)", re.ASCII)
# cron(minutes hours day-of-month month day-of-week year): six fields.
_CRON_RE = re.compile(r"cron\((\S+ ){5}\S+\)", re.ASCII)
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# AWS region names: partition prefix, optional gov/iso marker, direction, digit.
_REGION_RE = re.compile(
    r"(us|eu|ap|sa|ca|me|af|il|mx|cn)(-gov|-iso|-isob|-isoe|-isof)?"
    r"-(north|south|east|west|central|northeast|southeast|northwest|southwest)-[1-9]", re.ASCII)
# Tags (the AWS tagging rules): at most 50 per resource, keys up to 128 characters and values
# up to 256, letters, digits, spaces and + - = . _ : / @, and no key under the reserved "aws:".
MAX_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
_TAG_TEXT_RE = re.compile(r"[\w\s+\-=.:/@]*")
# Reserved concurrency must leave 100 of the account's default 1,000 unreserved.
MAX_RESERVED_CONCURRENCY = 900
_PLAIN_NUMBER_RE = re.compile(PLAIN_NUMBER_PATTERN, re.ASCII)


class InvalidStackConfig(ValueError):
    """A stack configuration value is wrong; the message names the key and the fix."""

    def __init__(self, key: str, problem: str, fix: str) -> None:
        self.key = key
        self.problem = problem
        self.fix = fix
        super().__init__(f"{PROJECT}:{key}: {problem}. {fix}")


@dataclass(frozen=True)
class SubnetPlan:
    """The /24 subnets of one VPC, index i of each list in availability zone i."""

    public: tuple[str, ...]
    private: tuple[str, ...]


@dataclass(frozen=True)
class StackConfig:
    """Validated configuration of one vpcpeer stack."""

    stack: str
    region: str
    alert_email: str
    vpc_a_cidr: str = "10.0.0.0/16"
    vpc_b_cidr: str = "10.1.0.0/16"
    vpc_a_allowed_ports: tuple[int, ...] = DEFAULT_ALLOWED_PORTS[VPC_A]
    vpc_b_allowed_ports: tuple[int, ...] = DEFAULT_ALLOWED_PORTS[VPC_B]
    # A year of flow logs and function logs: what an audit of network access asks for (CKV_AWS_338).
    retention_days: int = 365
    traffic_volume_threshold: int = 500
    rejected_connections_threshold: int = 50
    anomaly_threshold_percent: float = DEFAULT_ANOMALY_THRESHOLD_PERCENT
    traffic_baseline: float = float(DEFAULT_TRAFFIC_BASELINE)
    baseline: str = DEFAULT_BASELINE
    lambda_schedule: str = "rate(1 hour)"
    analyzer_schedule_enabled: bool = False
    analyzer_engine: str = "insights"
    create_dashboard: bool = True
    single_nat_gateway: bool = False
    flow_log_aggregation_seconds: int = 60
    lambda_zip_path: str = "../build/lambda_pkg.zip"
    lambda_reserved_concurrency: int = 2
    lambda_timeout_seconds: int = 300
    lambda_memory_mb: int = 256
    code_signing: str = CODE_SIGNING_ENFORCE
    environment: str = "dev"
    owner: str = "Platform Team"
    name_prefix: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        """Prefix of every physical name, so two stacks can share an account."""
        return self.name_prefix or f"{PROJECT}-{self.stack}"

    @property
    def common_tags(self) -> dict[str, str]:
        """Tags applied to every taggable resource."""
        return {
            "Environment": self.environment,
            "Owner": self.owner,
            "ManagedBy": "Pulumi",
            "Project": PROJECT,
            "Stack": self.stack,
            **dict(self.tags),
        }

    def allowed_ports(self, vpc: str) -> tuple[int, ...]:
        """Ports allowed *into* ``vpc`` ("VPC-A" or "VPC-B") from its peer."""
        return {VPC_A: self.vpc_a_allowed_ports, VPC_B: self.vpc_b_allowed_ports}[vpc]

    def cidr(self, vpc: str) -> str:
        """CIDR block of ``vpc`` ("VPC-A" or "VPC-B")."""
        return {VPC_A: self.vpc_a_cidr, VPC_B: self.vpc_b_cidr}[vpc]

    def analyzer_environment(self, *, topic_arn: Any, ledger_table: Any,
                             log_groups: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The analyzer's environment (DESIGN "Contracts"): what the Pulumi program deploys on
        the function (values may be Pulumi outputs) and what ``vpcpeer analyze`` reads files with.
        ``log_groups`` defaults to the names the stack gives its flow-log groups."""
        groups = log_groups or {vpc: flow_log_group_name(self.prefix, vpc) for vpc in (VPC_A, VPC_B)}
        return {
            ENV_VPC_A_LOG_GROUP: groups[VPC_A],
            ENV_VPC_B_LOG_GROUP: groups[VPC_B],
            ENV_VPC_A_CIDR: self.vpc_a_cidr,
            ENV_VPC_B_CIDR: self.vpc_b_cidr,
            ENV_VPC_A_ALLOWED_PORTS: ",".join(str(p) for p in self.vpc_a_allowed_ports),
            ENV_VPC_B_ALLOWED_PORTS: ",".join(str(p) for p in self.vpc_b_allowed_ports),
            ENV_SNS_TOPIC_ARN: topic_arn,
            ENV_TRAFFIC_BASELINE: f"{self.traffic_baseline:g}",
            ENV_ANOMALY_THRESHOLD: f"{self.anomaly_threshold_percent:g}",
            ENV_ANALYZER_ENGINE: self.analyzer_engine,
            ENV_BASELINE: self.baseline,
            ENV_STACK_NAME: self.stack,
            ENV_ALERT_LEDGER_TABLE: ledger_table,
        }


def flow_log_group_name(prefix: str, vpc: str) -> str:
    """Name of the flow-log group of ``vpc`` ("VPC-A"/"VPC-B")."""
    return f"/aws/vpc/flowlogs/{prefix}/{vpc.lower()}"


def subnet_plan(vpc_cidr: str) -> SubnetPlan:
    """Derive the public and private /24 subnets of a VPC the way the reference does."""
    network = ipaddress.ip_network(vpc_cidr)
    subnets = list(network.subnets(new_prefix=SUBNET_PREFIX))
    return SubnetPlan(
        public=tuple(str(subnets[i]) for i in PUBLIC_SUBNET_INDEXES),
        private=tuple(str(subnets[i]) for i in PRIVATE_SUBNET_INDEXES),
    )


# --- parsing -----------------------------------------------------------------------------

def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidStackConfig(key, f"expected a non-empty string, got {value!r}", "Set a text value.")
    return value.strip()


def _int(key: str, value: Any, *, minimum: int | None = None) -> int:
    parsed: int | None = None
    if isinstance(value, bool):
        parsed = None
    elif isinstance(value, int):
        parsed = value
    elif isinstance(value, float) and value.is_integer():
        parsed = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]+\s*", value, re.ASCII):
        parsed = int(value)
    if parsed is None:
        raise InvalidStackConfig(key, f"expected a whole number, got {value!r}", "Set an integer value.")
    if minimum is not None and parsed < minimum:
        raise InvalidStackConfig(key, f"must be at least {minimum}, got {parsed}", f"Set a value >= {minimum}.")
    return parsed


def _number(key: str, value: Any) -> float:
    """A finite number: nan would make every comparison false (every hour a spike, or no
    rule ever firing) and inf would switch a rule off; text must be plain ASCII digits."""
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and _PLAIN_NUMBER_RE.fullmatch(value.strip()):
        number = float(value.strip())
    if number is None or not math.isfinite(number):
        raise InvalidStackConfig(key, f"expected a finite number, got {value!r}", "Set a plain number, e.g. 20 or 0.5.")
    return number


def _check_tags(tags: Mapping[str, str], common: Mapping[str, str]) -> None:
    """The tagging rules AWS enforces only at deploy time, checked before anything is built."""
    for key, value in tags.items():
        if not key or len(key) > MAX_TAG_KEY or not _TAG_TEXT_RE.fullmatch(key):
            raise InvalidStackConfig("tags", f"key {key[:40]!r} is not a valid tag key",
                                     f"Use 1-{MAX_TAG_KEY} letters, digits, spaces or + - = . _ : / @.")
        if key.lower().startswith("aws:"):
            raise InvalidStackConfig("tags", f"key {key!r} uses the reserved aws: prefix", "Pick a key without it.")
        if len(value) > MAX_TAG_VALUE or not _TAG_TEXT_RE.fullmatch(value):
            raise InvalidStackConfig("tags", f"the value of {key!r} is not a valid tag value",
                                     f"Use at most {MAX_TAG_VALUE} letters, digits, spaces or + - = . _ : / @.")
    total = len({**common, **tags})
    if total > MAX_TAGS:
        raise InvalidStackConfig("tags", f"{total} tags with the {len(common)} every resource carries",
                                 f"AWS allows {MAX_TAGS} per resource; drop {total - MAX_TAGS}.")


def _schedule(value: str) -> str | None:
    """What is wrong with an EventBridge schedule expression, or None."""
    rate = _RATE_RE.fullmatch(value)
    if rate:
        count, unit, plural = int(rate.group(1)), rate.group(2), rate.group(3)
        if count < 1:
            return "runs every 0 units"
        if (count == 1) == bool(plural):
            return f"EventBridge wants rate({count} {unit}{'' if count == 1 else 's'})"
        return None
    if _CRON_RE.fullmatch(value):
        return None
    return "is not a rate(...) or cron(...) expression"


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidStackConfig(key, f"expected true or false, got {value!r}", "Set true or false.")


def _ports(key: str, value: Any) -> tuple[int, ...]:
    """Parse a port list given as a list, a JSON list or a comma-separated string."""
    items: Any = value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError:
                raise InvalidStackConfig(key, f"is not a valid JSON list: {value!r}", 'Use e.g. [443, 8080] or "443,8080".') from None
        else:
            items = [part.strip() for part in text.split(",")] if text else []
    if not isinstance(items, (list, tuple)) or not items:
        raise InvalidStackConfig(key, f"expected a non-empty list of ports, got {value!r}", "List at least one TCP port, e.g. [443].")
    ports: list[int] = []
    for item in items:
        port = None
        if isinstance(item, int) and not isinstance(item, bool):
            port = item
        elif isinstance(item, float) and item.is_integer():
            port = int(item)
        elif isinstance(item, str) and item.strip().isascii() and item.strip().isdigit():
            port = int(item.strip())
        if port is None or not 1 <= port <= 65535:
            raise InvalidStackConfig(key, f"port {item!r} is not an integer in 1-65535", "Use whole port numbers between 1 and 65535.")
        if port in ports:
            raise InvalidStackConfig(key, f"port {port} is listed twice", "List each port once.")
        ports.append(port)
    return tuple(ports)


def _vpc_cidr(key: str, value: Any) -> ipaddress.IPv4Network:
    text = _text(key, value)
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise InvalidStackConfig(key, f"{text!r} is not a valid CIDR block ({exc})", "Use IPv4 CIDR notation, e.g. 10.0.0.0/16.") from None
        raise InvalidStackConfig(key, f"{text!r} has host bits set", f"Use the network address {loose}.") from None
    if network.version != 4:
        raise InvalidStackConfig(key, f"{text!r} is not IPv4", "VPC primary CIDR blocks are IPv4, e.g. 10.0.0.0/16.")
    if not MIN_VPC_PREFIX <= network.prefixlen <= MAX_VPC_PREFIX:
        raise InvalidStackConfig(
            key,
            f"prefix /{network.prefixlen} is outside /{MIN_VPC_PREFIX}-/{MAX_VPC_PREFIX}",
            f"Use a prefix between /{MIN_VPC_PREFIX} and /{MAX_VPC_PREFIX} so the four /{SUBNET_PREFIX} subnets fit.",
        )
    return network


# The ``vpcpeer:*`` keys a stack file may set.
CONFIG_KEYS = {f.name for f in StackConfig.__dataclass_fields__.values()} - {"stack", "region"}


def validate_config(raw: Mapping[str, Any], *, stack: str, region: str | None) -> StackConfig:
    """Turn raw ``vpcpeer:*`` config values (strings or YAML types) into a StackConfig.

    ``raw`` holds keys without the ``vpcpeer:`` namespace. Raises InvalidStackConfig on
    the first bad value, naming the key.
    """
    unknown = sorted(set(raw) - CONFIG_KEYS)
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, sorted(CONFIG_KEYS), n=1)
        fix = f"Did you mean {PROJECT}:{close[0]}?" if close else f"Known keys: {', '.join(sorted(CONFIG_KEYS))}."
        raise InvalidStackConfig(key, "is not a vpcpeer setting", fix)

    if not region:
        raise InvalidStackConfig("aws:region", "is not set", "Set aws:region, e.g. us-east-1.")
    if not _REGION_RE.fullmatch(region):
        raise InvalidStackConfig("aws:region", f"{region!r} is not an AWS region name", "Use e.g. us-east-1 or eu-west-1.")

    defaults = StackConfig(stack=stack, region=region, alert_email="-")
    values: dict[str, Any] = {}

    email = raw.get("alert_email")
    if email is None or (isinstance(email, str) and not email.strip()):
        raise InvalidStackConfig(
            "alert_email", "is missing",
            f"Set it as a secret: pulumi config set --secret {PROJECT}:alert_email you@example.com",
        )
    email = _text("alert_email", email)
    if not _EMAIL_RE.match(email):  # the value is a secret: never echoed
        raise InvalidStackConfig("alert_email", "is not an email address", "Use an address like ops@example.com.")
    values["alert_email"] = email

    a_net = _vpc_cidr("vpc_a_cidr", raw.get("vpc_a_cidr", defaults.vpc_a_cidr))
    b_net = _vpc_cidr("vpc_b_cidr", raw.get("vpc_b_cidr", defaults.vpc_b_cidr))
    if a_net.overlaps(b_net):
        raise InvalidStackConfig(
            "vpc_b_cidr", f"{b_net} overlaps vpc_a_cidr {a_net}",
            "Peered VPCs need disjoint CIDR blocks; pick e.g. 10.1.0.0/16 next to 10.0.0.0/16.",
        )
    values["vpc_a_cidr"], values["vpc_b_cidr"] = str(a_net), str(b_net)

    for key in ("vpc_a_allowed_ports", "vpc_b_allowed_ports"):
        if key in raw:
            values[key] = _ports(key, raw[key])

    if "retention_days" in raw:
        days = _int("retention_days", raw["retention_days"])
        if days not in VALID_RETENTION_DAYS:
            raise InvalidStackConfig(
                "retention_days", f"{days} is not a CloudWatch Logs retention value",
                f"Use one of {', '.join(str(d) for d in sorted(VALID_RETENTION_DAYS))}.",
            )
        values["retention_days"] = days

    for key in ("traffic_volume_threshold", "rejected_connections_threshold"):
        if key in raw:
            values[key] = _int(key, raw[key], minimum=1)

    if "anomaly_threshold_percent" in raw:
        pct = _number("anomaly_threshold_percent", raw["anomaly_threshold_percent"])
        if not 0 < pct <= 100:
            raise InvalidStackConfig("anomaly_threshold_percent", f"{pct:g} is outside (0, 100]", "Use a percentage above 0 and at most 100, e.g. 20.")
        values["anomaly_threshold_percent"] = pct

    if "traffic_baseline" in raw:
        baseline = _number("traffic_baseline", raw["traffic_baseline"])
        if baseline <= 0:
            raise InvalidStackConfig("traffic_baseline", f"{baseline:g} is not positive", "Use the expected requests per hour, e.g. 417 for 10k/day.")
        values["traffic_baseline"] = baseline

    if "lambda_schedule" in raw:
        schedule = _text("lambda_schedule", raw["lambda_schedule"])
        problem = _schedule(schedule)
        if problem:
            raise InvalidStackConfig("lambda_schedule", f"{schedule!r}: {problem}",
                                     "Use rate(1 hour), rate(2 hours) or cron(15 * * * ? *).")
        values["lambda_schedule"] = schedule

    if "baseline" in raw:
        mode = _text("baseline", raw["baseline"])
        if mode not in BASELINE_MODES:
            raise InvalidStackConfig("baseline", f"{mode!r} is not a baseline", f"Use one of {', '.join(BASELINE_MODES)}.")
        values["baseline"] = mode

    if "analyzer_engine" in raw:
        engine = _text("analyzer_engine", raw["analyzer_engine"])
        if engine not in ANALYZER_ENGINES:
            raise InvalidStackConfig("analyzer_engine", f"{engine!r} is not an engine", f"Use one of {', '.join(ANALYZER_ENGINES)}.")
        values["analyzer_engine"] = engine

    for key in ("analyzer_schedule_enabled", "create_dashboard", "single_nat_gateway"):
        if key in raw:
            values[key] = _bool(key, raw[key])

    if "flow_log_aggregation_seconds" in raw:
        seconds = _int("flow_log_aggregation_seconds", raw["flow_log_aggregation_seconds"])
        if seconds not in FLOW_LOG_AGGREGATION_SECONDS:
            raise InvalidStackConfig("flow_log_aggregation_seconds", f"{seconds} is not allowed", "VPC Flow Logs aggregate over 60 or 600 seconds.")
        values["flow_log_aggregation_seconds"] = seconds

    if "lambda_reserved_concurrency" in raw:
        concurrency = _int("lambda_reserved_concurrency", raw["lambda_reserved_concurrency"], minimum=1)
        if concurrency > MAX_RESERVED_CONCURRENCY:
            raise InvalidStackConfig(
                "lambda_reserved_concurrency", f"{concurrency} would leave the account less than 100 unreserved",
                f"Use at most {MAX_RESERVED_CONCURRENCY} (of the default 1,000); one analysis an hour needs 1-2.")
        values["lambda_reserved_concurrency"] = concurrency
    if "lambda_timeout_seconds" in raw:
        timeout = _int("lambda_timeout_seconds", raw["lambda_timeout_seconds"], minimum=30)
        if timeout > 900:
            raise InvalidStackConfig("lambda_timeout_seconds", f"{timeout} exceeds Lambda's 900 s limit", "Use at most 900.")
        values["lambda_timeout_seconds"] = timeout
    if "lambda_memory_mb" in raw:
        memory = _int("lambda_memory_mb", raw["lambda_memory_mb"], minimum=128)
        if memory > 10240:
            raise InvalidStackConfig("lambda_memory_mb", f"{memory} exceeds Lambda's 10240 MB limit", "Use 128-10240.")
        values["lambda_memory_mb"] = memory

    if "code_signing" in raw:
        mode = _text("code_signing", raw["code_signing"])
        if mode not in CODE_SIGNING_MODES:
            raise InvalidStackConfig("code_signing", f"{mode!r} is not a signing mode",
                                     f"Use one of {', '.join(CODE_SIGNING_MODES)}.")
        values["code_signing"] = mode

    for key in ("lambda_zip_path", "environment", "owner"):
        if key in raw:
            values[key] = _text(key, raw[key])
    if "name_prefix" in raw:
        prefix = _text("name_prefix", raw["name_prefix"])
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,30}", prefix):
            raise InvalidStackConfig("name_prefix", f"{prefix!r} is not a usable name prefix", "Use 1-31 lowercase letters, digits or dashes, starting with a letter.")
        values["name_prefix"] = prefix
    if "tags" in raw:
        tags = raw["tags"]
        if isinstance(tags, str):
            try:
                tags = json.loads(tags)
            except json.JSONDecodeError:
                tags = None
        if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
            raise InvalidStackConfig("tags", f"expected a map of text to text, got {raw['tags']!r}", 'Use e.g. {"CostCenter": "net"}.')
        _check_tags(tags, defaults.common_tags)
        values["tags"] = dict(tags)

    return StackConfig(stack=stack, region=region, **values)
