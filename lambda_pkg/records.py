"""VPC flow-log record parsing: default v2 and custom formats, never raising on bad input.

A line becomes either a FlowRecord or a reason string; reasons are counted by the
aggregation, so a malformed line is visible in the report and never counts as traffic.

Strict on purpose: fields are separated by single spaces (what VPC Flow Logs writes; a tab
or a non-breaking space is not a separator), and a number is canonical ASCII digits (no
sign, no ``_``, no leading zero, no other script's digits, all of which ``int()`` would
take). The aggregation's columnar fast path applies the same rules to whole chunks and
hands this parser only the lines it cannot take as they are.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import NamedTuple

from lambda_pkg.constants import FLOW_LOG_V2_FIELDS

# The fields the analysis needs, whatever the custom format.
REQUIRED_FIELDS = ("srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes", "action", "log-status")

STATUS_OK, STATUS_NODATA, STATUS_SKIPDATA = "OK", "NODATA", "SKIPDATA"
LOG_STATUSES = frozenset({STATUS_OK, STATUS_NODATA, STATUS_SKIPDATA})
ACTIONS = frozenset({"ACCEPT", "REJECT"})

# Reasons a line is not a record.
EMPTY = "empty"
FIELD_COUNT = "field_count"
BAD_STATUS = "bad_log_status"
BAD_ACTION = "bad_action"
BAD_NUMBER = "bad_number"
BAD_ADDRESS = "bad_address"
MISSING_VALUE = "missing_value"
LINE_TOO_LONG = "line_too_long"  # longer than any record: counted, never held (flow-log files)
MALFORMED_REASONS = (EMPTY, FIELD_COUNT, BAD_STATUS, BAD_ACTION, BAD_NUMBER, BAD_ADDRESS, MISSING_VALUE, LINE_TOO_LONG)

MAX_PORT = 65535
MAX_PROTOCOL = 255

_FORMAT_TOKEN = re.compile(r"\$\{([a-z0-9-]+)\}")


class FormatError(ValueError):
    """A custom log-format string is unusable."""


class FlowRecord(NamedTuple):
    """One flow record. For NODATA/SKIPDATA only ``log_status`` is meaningful."""

    log_status: str
    srcaddr: str | None = None
    dstaddr: str | None = None
    srcport: int | None = None
    dstport: int | None = None
    protocol: int | None = None
    packets: int = 0
    bytes: int = 0
    action: str | None = None
    ip_version: int = 4


@dataclass(frozen=True)
class FlowLogFormat:
    """Field positions of a flow-log format (v2 default, or a custom ``${field}`` string)."""

    fields: tuple[str, ...] = FLOW_LOG_V2_FIELDS

    @classmethod
    def from_header(cls, line: str) -> FlowLogFormat:
        """The format announced by the header line S3 delivery writes (``version account-id ...``)."""
        return cls.parse(" ".join(f"${{{name}}}" for name in line.split()))

    @classmethod
    def parse(cls, text: str | None) -> FlowLogFormat:
        """Parse a log-format string such as ``${version} ${srcaddr} ...``; None = default v2."""
        if text is None or not text.strip():
            return cls()
        tokens = text.split()
        fields = []
        for token in tokens:
            match = _FORMAT_TOKEN.fullmatch(token)
            if not match:
                raise FormatError(f"{token!r} is not a ${{field}} token")
            fields.append(match.group(1))
        missing = [f for f in REQUIRED_FIELDS if f not in fields]
        if missing:
            raise FormatError(f"the format lacks {', '.join(missing)}, which the analysis needs")
        if len(set(fields)) != len(fields):
            raise FormatError("the format names a field twice")
        return cls(tuple(fields))

    def index(self, name: str) -> int:
        return self.fields.index(name)


def is_number(text: str) -> bool:
    """Canonical non-negative decimal: ASCII digits, no sign, no separator, no leading zero."""
    return text.isascii() and text.isdigit() and (text[0] != "0" or len(text) == 1)


class Addresses:
    """IP version of each distinct address (0: not an address), cached: memory O(distinct
    addresses), one parse per address however often it appears. Shared by the parsers and
    aggregations of one analysis."""

    def __init__(self) -> None:
        self.version: dict[str, int] = {}

    def of(self, address: str) -> int:
        version = self.version.get(address)
        if version is None:
            try:
                version = ipaddress.ip_address(address).version
            except ValueError:
                version = 0
            self.version[address] = version
        return version


class RecordParser:
    """Parses lines of one format; caches address validation per distinct address."""

    def __init__(self, fmt: FlowLogFormat | None = None, addresses: Addresses | None = None) -> None:
        self.format = fmt or FlowLogFormat()
        f = self.format
        self._n = len(f.fields)
        self._i = tuple(f.index(name) for name in REQUIRED_FIELDS)
        self._ip_version = (addresses or Addresses()).of

    def parse(self, line: str) -> FlowRecord | str:
        """A FlowRecord, or the reason (one of MALFORMED_REASONS) the line is not one."""
        if not isinstance(line, str) or not line.strip():
            return EMPTY
        parts = line.rstrip("\r\n").split(" ")
        if len(parts) != self._n:
            return FIELD_COUNT
        i_src, i_dst, i_sport, i_dport, i_proto, i_pkts, i_bytes, i_action, i_status = self._i
        status = parts[i_status]
        if status not in LOG_STATUSES:
            return BAD_STATUS
        if status != STATUS_OK:
            return FlowRecord(status)
        src, dst, action = parts[i_src], parts[i_dst], parts[i_action]
        if "-" in (src, dst, action, parts[i_sport], parts[i_dport], parts[i_proto], parts[i_pkts], parts[i_bytes]):
            return MISSING_VALUE
        if action not in ACTIONS:
            return BAD_ACTION
        numbers = (parts[i_sport], parts[i_dport], parts[i_proto], parts[i_pkts], parts[i_bytes])
        if not all(is_number(n) for n in numbers):
            return BAD_NUMBER
        sport, dport, proto, packets, nbytes = (int(n) for n in numbers)
        if not (sport <= MAX_PORT and dport <= MAX_PORT and proto <= MAX_PROTOCOL):
            return BAD_NUMBER
        src_version = self._ip_version(src)
        dst_version = self._ip_version(dst)
        if not src_version or not dst_version:
            return BAD_ADDRESS
        return FlowRecord(status, src, dst, sport, dport, proto, packets, nbytes, action, src_version)
