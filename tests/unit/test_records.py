"""Flow-record parsing: every shape of line, never an exception."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambda_pkg import records as r
from tests.flowgen import nodata_line, v2_line


@pytest.fixture(scope="module")
def parser() -> r.RecordParser:
    return r.RecordParser()


def test_a_v2_line_parses_into_typed_fields(parser: r.RecordParser) -> None:
    rec = parser.parse(v2_line("10.1.1.5", "10.0.10.7", 50123, 443, packets=7, nbytes=1234, action="REJECT"))
    assert rec == r.FlowRecord("OK", "10.1.1.5", "10.0.10.7", 50123, 443, 6, 7, 1234, "REJECT", 4)


@pytest.mark.parametrize("status", ["NODATA", "SKIPDATA"])
def test_nodata_and_skipdata_are_records_without_traffic(parser: r.RecordParser, status: str) -> None:
    assert parser.parse(nodata_line(status)) == r.FlowRecord(status)


def test_ipv6_addresses_are_accepted(parser: r.RecordParser) -> None:
    rec = parser.parse(v2_line("2001:db8::1", "2001:db8::2", 50000, 443))
    assert isinstance(rec, r.FlowRecord) and rec.ip_version == 6


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", r.EMPTY),
        ("   \t ", r.EMPTY),
        (v2_line("10.1.1.5", "10.0.1.1", 1, 443).rsplit(" ", 1)[0], r.FIELD_COUNT),
        (v2_line("10.1.1.5", "10.0.1.1", 1, 443) + " extra", r.FIELD_COUNT),
        (v2_line("10.1.1.5", "10.0.1.1", 1, 443, status="WEIRD"), r.BAD_STATUS),
        (v2_line("10.1.1.5", "10.0.1.1", 1, 443, action="DROP"), r.BAD_ACTION),
        (v2_line("10.1.1.5", "10.0.1.1", 1, 443).replace(" 840 ", " lots "), r.BAD_NUMBER),
        (v2_line("10.1.1.5", "10.0.1.1", 1, 70000), r.BAD_NUMBER),
        (v2_line("10.1.1.5", "10.0.1.1", -1, 443), r.BAD_NUMBER),
        (v2_line("10.1.1.500", "10.0.1.1", 1, 443), r.BAD_ADDRESS),
        (v2_line("not-an-ip", "10.0.1.1", 1, 443), r.BAD_ADDRESS),
        (v2_line("-", "10.0.1.1", 1, 443), r.MISSING_VALUE),
        (v2_line("10.1.1.5", "10.0.1.1", 1, 443).replace(" 840 ", " - "), r.MISSING_VALUE),
    ],
)
def test_bad_lines_are_reasons_not_records(parser: r.RecordParser, line: str, reason: str) -> None:
    assert parser.parse(line) == reason


def test_custom_format_with_v3_to_v5_fields() -> None:
    fmt = r.FlowLogFormat.parse(
        "${version} ${vpc-id} ${subnet-id} ${instance-id} ${interface-id} ${account-id} ${type} ${srcaddr} "
        "${dstaddr} ${srcport} ${dstport} ${pkt-srcaddr} ${pkt-dstaddr} ${protocol} ${bytes} ${packets} "
        "${start} ${end} ${action} ${tcp-flags} ${log-status} ${flow-direction} ${traffic-path}"
    )
    line = ("5 vpc-1 subnet-1 i-1 eni-1 123456789012 IPv4 10.1.1.5 10.0.1.9 40000 8080 10.1.1.5 10.0.1.9 "
            "6 5000 12 1700000000 1700000060 ACCEPT 19 OK ingress -")
    rec = r.RecordParser(fmt).parse(line)
    assert rec == r.FlowRecord("OK", "10.1.1.5", "10.0.1.9", 40000, 8080, 6, 12, 5000, "ACCEPT", 4)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${version} ${srcaddr}", "lacks"),
        ("version srcaddr", "is not a"),
        ("${srcaddr} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${action} ${log-status}", "twice"),
    ],
)
def test_unusable_formats_are_rejected(text: str, message: str) -> None:
    with pytest.raises(r.FormatError, match=message):
        r.FlowLogFormat.parse(text)


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(["2", "-", "OK", "NODATA", "SKIPDATA", "ACCEPT", "REJECT", "10.0.0.1", "::1",
                              "999", "abc", "65536", "1e3", "0", "eni-1"]), max_size=20).map(" ".join),
))
def test_no_line_makes_the_parser_raise(line: str) -> None:
    result = r.RecordParser().parse(line)
    assert isinstance(result, r.FlowRecord) or result in r.MALFORMED_REASONS
    if isinstance(result, r.FlowRecord) and result.log_status == "OK":
        assert result.srcaddr and result.dstaddr and result.action in r.ACTIONS
