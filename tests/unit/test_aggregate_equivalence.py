"""The columnar aggregation reports exactly what the one-record-at-a-time reference does.

Random chunks of lines mix every kind of record the rules treat differently (each side of
the peering, the internet, IPv6; service, ephemeral and low ports; TCP, UDP, ICMP; replies;
NODATA; out-of-window events) with every kind of malformed line (wrong field counts, tabs,
double spaces, signs, underscores, other scripts' digits, leading zeros, out-of-range
numbers, bad addresses), so the fast path and its fallbacks are both exercised.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from lambda_pkg.aggregate import VpcTraffic, traffic_for
from lambda_pkg.records import FlowRecord
from lambda_pkg.window import Window
from tests import reference_aggregate
from tests.analyzer_env import config

WINDOW = Window(datetime(2026, 1, 1, 10, tzinfo=timezone.utc), datetime(2026, 1, 1, 11, tzinfo=timezone.utc))
ADDRESSES = ["10.0.1.5", "10.0.10.9", "10.0.2.33", "10.1.1.7", "10.1.10.2", "10.1.2.200", "52.1.2.3", "198.51.100.7",
             "203.0.113.9", "2001:db8::1"]
BAD_ADDRESSES = ["10.0.1.500", "999.1.1.1", "-"]
PORTS = ["443", "8080", "3306", "22", "80", "123", "0", "5432", "33000", "60999", "1023", "1024", "65535",
         *(str(p) for p in range(1, 40))]
BAD_PORTS = ["65536", "4_43", "+443", "0443", "٤٤٣", "-", "x"]
PROTOCOLS = ["6", "6", "6", "17", "1", "99"]


def pick(rng: random.Random, good: list[str], bad: list[str], bad_share: float = 0.02) -> str:
    return rng.choice(bad) if rng.random() < bad_share else rng.choice(good)


def line(rng: random.Random, clean: bool = False) -> str:
    roll = 1.0 if clean else rng.random()
    start = WINDOW.start_ms // 1000 + rng.randint(-100, 3700)
    if roll < 0.05:
        return f"2 1 eni-1 - - - - - - - {start} {start + 60} - {rng.choice(['NODATA', 'SKIPDATA'])}"
    if roll < 0.08:
        return rng.choice(["", "   ", "garbage", "2 x eni a b c d e f g h i j k", "2\t1 eni-1 10.0.1.5 10.1.1.7 1 2 6 1 1 1 2 ACCEPT OK"])
    bad_share = 0.0 if clean else 0.02
    fields = ["2", "1", "eni-1", pick(rng, ADDRESSES, BAD_ADDRESSES, bad_share),
              pick(rng, ADDRESSES, BAD_ADDRESSES, bad_share), pick(rng, PORTS, BAD_PORTS, bad_share),
              pick(rng, PORTS, BAD_PORTS, bad_share), pick(rng, PROTOCOLS, ["256", "-"], bad_share),
              str(rng.randint(1, 50)), str(rng.randint(40, 9000)), str(start), str(start + 60),
              pick(rng, ["ACCEPT", "REJECT", "REJECT"], ["DROP"], bad_share), pick(rng, ["OK"], ["WEIRD"], bad_share)]
    if clean:
        return " ".join(fields)
    if rng.random() < 0.03:
        fields[9] = rng.choice(["+5", "5_0", "٣", "-", "07", ""])
    if rng.random() < 0.01:
        fields[rng.choice([3, 5, 6, 7, 8, 12])] = ""  # an empty value: the field count still matches
    text = " ".join(fields) + rng.choice(["", "", "", "\n", "\r\n"])
    if rng.random() < 0.02:
        text = text.replace(" ", "  ", 1)
    return text


def reports(lines: list[tuple[str, int]], label: str = "VPC-A") -> tuple[dict, dict]:
    new = traffic_for(config(), WINDOW)[label]
    old = reference_aggregate.traffic_for(config(), WINDOW)[label]
    for text, ts in lines:
        new.add_line(text, ts)
        old.add_line(text, ts)
    new_report, old_report = new.report(), old.report()
    assert new_report["evidence"].pop("truncated") == []
    return new_report, old_report


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=0, max_value=400),
       st.sampled_from(["VPC-A", "VPC-B"]))
def test_random_lines_give_the_reference_report(seed: int, count: int, label: str) -> None:
    rng = random.Random(seed)
    lines = [(line(rng), WINDOW.start_ms + rng.randint(-60_000, 3_660_000)) for _ in range(count)]
    new, old = reports(lines, label)
    assert new == old


def test_a_large_chunk_with_rare_bad_lines_gives_the_reference_report() -> None:
    rng = random.Random(3)
    lines = [(line(rng), WINDOW.start_ms + rng.randint(0, 3_599_999)) for _ in range(70_000)]  # more than a chunk
    new, old = reports(lines)
    assert new == old and new["total_requests"] > 10_000


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_weighted_rows_give_the_reference_report(seed: int) -> None:
    rng = random.Random(seed)
    new = traffic_for(config(), WINDOW)["VPC-A"]
    old = reference_aggregate.traffic_for(config(), WINDOW)["VPC-A"]
    good_addresses = [a for a in ADDRESSES if a[0] != "9" and "500" not in a]
    for _ in range(rng.randint(0, 200)):
        record = FlowRecord("OK", rng.choice(good_addresses), rng.choice(good_addresses), rng.choice([443, 33000, 22, 0]),
                            rng.choice([443, 8080, 3306, 22, 40000, 0]), rng.choice([6, 17, 1]), rng.randint(1, 9),
                            rng.randint(40, 900), rng.choice(["ACCEPT", "REJECT"]),
                            6 if ":" in "" else 4)
        record = record._replace(ip_version=6 if ":" in record.srcaddr else 4)
        weight = rng.randint(1, 30)
        new.add(record, weight)
        old.add(record, weight)
    new_report = new.report()
    new_report["evidence"].pop("truncated")
    assert new_report == old.report()


def test_files_are_windowed_by_the_start_field() -> None:
    traffic = VpcTraffic(config().vpc("VPC-A"), config().vpc("VPC-B"), WINDOW)
    start = WINDOW.start_ms // 1000
    base = "2 1 eni-1 10.1.1.5 10.0.1.1 40000 443 6 1 100 {t} {e} ACCEPT OK"
    traffic.add_lines([base.format(t=t, e=t + 60) for t in (start - 1, start, start + 3599, start + 3600)]
                      + ["2 1 eni-1 10.1.1.5 10.0.1.1 40000 443 6 1 100 soon 1 ACCEPT OK"])
    report = traffic.report()
    assert report["total_requests"] == 2 and report["out_of_window_records"] == 2
    assert report["malformed_records"] == {"bad_number": 1}


ONE_BAD_VALUE = [(3, "10.0.1.500"), (4, "-"), (5, "65536"), (6, "4_43"), (6, "+443"), (6, "0443"), (6, "٤٤٣"), (7, "256"),
                 (8, ""), (8, "07"), (9, "+5"), (9, "٣"), (9, ""), (12, "DROP"), (13, "WEIRD"), (3, ""),
                 (4, "self"), (4, "external"), (3, "self")]


def test_one_bad_value_among_clean_lines_is_counted_and_the_rest_kept() -> None:
    """The kernel trusts a chunk until validation: one bad value of each kind sends it the slow way."""
    for index, value in ONE_BAD_VALUE:
        rng = random.Random(index)
        lines = [(line(rng, clean=True), WINDOW.start_ms + rng.randint(0, 3_599_999)) for _ in range(2_000)]
        fields = lines[777][0].split(" ")
        fields[index] = value
        lines[777] = (" ".join(fields), lines[777][1])
        new, old = reports(lines)
        assert new == old, (index, value)
        assert sum(new["malformed_records"].values()) == 1, (index, value, new["malformed_records"])


def test_clean_lines_give_the_reference_report() -> None:
    rng = random.Random(11)
    lines = [(line(rng, clean=True), WINDOW.start_ms + rng.randint(-60_000, 3_660_000)) for _ in range(5_000)]
    new, old = reports(lines)
    assert new == old and new["malformed_records"] == {}
