"""10,000+ generated hostile flow-log lines: no exception escapes, nothing is parsed leniently.

Each line is a valid v2 record with up to three mutations (a field replaced by a token
Python's int() or str.split() would take: 4_43, +443, other scripts' digits, non-breaking
or ideographic spaces, tabs, leading zeros, out-of-range numbers, bad addresses), or
arbitrary text. The oracle here is written from the format's grammar, not from the parser:
a record counts if and only if its fields are separated by single ASCII spaces and every
field the analyzer reads from a CloudWatch event is canonical (start and end are read, and
checked, only when flow-log files are windowed by start: tests/unit/test_flowfiles.py).
docs/reliability.md cites the figures this test asserts.
"""

from __future__ import annotations

import ipaddress
import random
import re
from datetime import datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambda_pkg.aggregate import traffic_for
from lambda_pkg.window import Window
from tests.analyzer_env import config

WINDOW = Window(datetime(2026, 1, 1, 10, tzinfo=timezone.utc), datetime(2026, 1, 1, 11, tzinfo=timezone.utc))
START = WINDOW.start_ms // 1000
LINES_PER_EXAMPLE = 100
EXAMPLES = 120  # 12,000 lines
_NUMBER = re.compile(r"0|[1-9][0-9]*", re.ASCII)
HOSTILE_NUMBERS = ["4_43", "+443", "-1", "0443", "٤٤٣", "４４３", "443\u00a0", "1e3", "65536", "256", "", " ", "0x1bb",
                   "443.0", "²", "99999999999999999999999"]
HOSTILE_ADDRESSES = ["10.0.1.500", "010.0.1.5", "10.0.1", "::g", "10.0.1.5 ", "-", "١٠.٠.١.٥", "10.0.1.5%eth0"]
HOSTILE_SEPARATORS = ["  ", "\t", "\u00a0", "\u2003", "\u3000", "\u200b", "\x0b", "\x1c"]
HOSTILE_WORDS = ["accept", "DROP", "ACCEPT\u00a0", "ok", "OK ", "NODATA", "SKIPDATA", "-"]


def grammar_accepts(line: str) -> bool:
    """The v2 grammar for the fields the analyzer reads, from the format, not from the parser."""
    fields = line.removesuffix("\n").removesuffix("\r").split(" ")
    if len(fields) != 14 or fields[13] != "OK" or fields[12] not in ("ACCEPT", "REJECT"):
        return False
    for address in fields[3:5]:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            return False
    numbers = fields[5:10]  # ports, protocol, packets, bytes (start and end: see the module docstring)
    if not all(_NUMBER.fullmatch(n) for n in numbers):
        return False
    sport, dport, proto = (int(n) for n in numbers[:3])
    return sport <= 65535 and dport <= 65535 and proto <= 255


def hostile_line(seed: int) -> str:
    """A valid record with up to three hostile mutations, chosen by ``seed`` (one Hypothesis
    draw per line keeps 10,000 lines fast; Hypothesis still varies and shrinks the seeds)."""
    rng = random.Random(seed)
    fields = ["2", "123456789012", "eni-0a1b2c3d",
              rng.choice(["10.0.1.5", "10.1.2.7", "198.51.100.9", "2001:db8::1", "52.1.2.3"]),
              rng.choice(["10.0.10.3", "10.1.10.4", "203.0.113.5", "2001:db8::2"]),
              str(rng.randint(0, 65535)), str(rng.randint(0, 65535)), rng.choice(["6", "17", "1"]),
              str(rng.randint(1, 99)), str(rng.randint(40, 99999)), str(START + rng.randint(0, 3000)), str(START + 3060),
              rng.choice(["ACCEPT", "REJECT"]), "OK"]
    separators = [" "] * 13
    for _ in range(rng.randint(0, 3)):
        kind = rng.randint(0, 3)
        if kind == 0:
            fields[rng.randint(5, 9)] = rng.choice(HOSTILE_NUMBERS)
        elif kind == 1:
            fields[rng.randint(3, 4)] = rng.choice(HOSTILE_ADDRESSES)
        elif kind == 2:
            separators[rng.randint(0, 12)] = rng.choice(HOSTILE_SEPARATORS)
        else:
            fields[rng.randint(12, 13)] = rng.choice(HOSTILE_WORDS)
    line = fields[0] + "".join(sep + field for sep, field in zip(separators, fields[1:]))
    return line + rng.choice(["", "", "\n", "\r\n"])


def test_ten_thousand_hostile_lines_escape_nothing_and_are_read_strictly() -> None:
    seen = {"lines": 0, "accepted": 0, "escaped": 0, "lenient": 0, "too_strict": 0}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow,
                                                                                         HealthCheck.data_too_large])
    @given(st.lists(st.integers(0, 2**32 - 1), min_size=LINES_PER_EXAMPLE, max_size=LINES_PER_EXAMPLE),
           st.lists(st.text(max_size=200), max_size=10))
    def check(seeds: list[int], texts: list[str]) -> None:
        lines = [hostile_line(seed) for seed in seeds] + texts
        seen["lines"] += len(lines)
        traffic = traffic_for(config(), WINDOW)["VPC-A"]
        try:
            traffic.add_lines(lines, [WINDOW.start_ms] * len(lines))
            report = traffic.report()
        except Exception:  # noqa: BLE001 - counted, then failed on
            seen["escaped"] += 1
            raise
        expected = sum(grammar_accepts(line) for line in lines)
        seen["accepted"] += report["total_requests"]
        seen["lenient"] += max(0, report["total_requests"] - expected)
        seen["too_strict"] += max(0, expected - report["total_requests"])
        assert report["total_requests"] == expected, [line for line in lines if not grammar_accepts(line)][:5]

    check()
    assert seen["lines"] >= 10_000, seen
    assert seen["escaped"] == seen["lenient"] == seen["too_strict"] == 0, seen
    assert 0 < seen["accepted"] < seen["lines"], seen  # both kinds of line were really generated
    print(f"hostile lines: {seen}")
