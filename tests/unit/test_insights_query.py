"""The Logs Insights evaluator for the embedded AWS: every expectation is computed
independently of the evaluator (Counter, ipaddress, plain sorting) over the same lines."""

from __future__ import annotations

import ipaddress
import random
import re
from collections import Counter, defaultdict
from datetime import datetime, timezone

import pytest

from lambda_pkg.constants import FLOW_LOG_V2_FIELDS, INSIGHTS_FIELDS
from lambda_pkg.engines import insights
from lambda_pkg.engines.insights import build_query, row_to_record
from lambda_pkg.records import FlowRecord
from lambda_pkg.window import Window
from tests.flowgen import nodata_line, v2_line
from vpcpeer_orchestration.local import insights_query as iq
from vpcpeer_orchestration.local.insights_query import InsightsQueryError, Query, QueryResult, parse_query, run_query

WINDOW = Window(datetime(2026, 1, 1, 10, tzinfo=timezone.utc), datetime(2026, 1, 1, 11, tzinfo=timezone.utc))
CIDR_A, CIDR_B = "10.0.0.0/16", "10.1.0.0/16"
NET_A, NET_B = ipaddress.ip_network(CIDR_A), ipaddress.ip_network(CIDR_B)


def make_events(n: int = 3000, seed: int = 11) -> list[dict]:
    """Flow-log events around WINDOW: peering, internet, IPv6, rejects, NODATA, out of range."""
    rng = random.Random(seed)
    a_hosts = [f"10.0.1.{i}" for i in range(4, 16)]
    b_hosts = [f"10.1.2.{i}" for i in range(4, 16)]
    others = ["203.0.113.9", "198.51.100.20", "2001:db8::1", "2001:db8::2"]
    events = []
    for i in range(n):
        ts = WINDOW.start_ms + rng.randint(-600_000, 3_600_000 + 600_000)  # some before/after
        roll = rng.random()
        if roll < 0.05:
            line = nodata_line(rng.choice(("NODATA", "SKIPDATA")))
        else:
            src = rng.choice(a_hosts + b_hosts + others)
            dst = rng.choice(a_hosts + b_hosts)
            if ":" in src:
                dst = rng.choice(["2001:db8::9", "2001:db8::a"])
            line = v2_line(src, dst, rng.choice((50000, 50001, 443)), rng.choice((443, 3306, 8080, 22)),
                           proto=rng.choice((6, 17)), packets=rng.randint(1, 40), nbytes=rng.randint(40, 9000),
                           action=rng.choice(("ACCEPT", "ACCEPT", "REJECT")))
        events.append({"timestamp": ts, "message": line, "logStreamName": f"eni-{i % 3}-all",
                       "logGroupName": "/vpcpeer/a", "ingestionTime": ts + 1000})
    return events


EVENTS = make_events()


def split(line: str) -> dict[str, str]:
    """A v2 line as the Insights fields, by the project's own field table."""
    return {INSIGHTS_FIELDS[name]: value for name, value in zip(FLOW_LOG_V2_FIELDS, line.split(" "))}


def as_dicts(result: QueryResult) -> list[dict[str, str]]:
    return [{cell["field"]: cell["value"] for cell in row} for row in result.results]


def in_net(address: str, net: ipaddress.IPv4Network) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.version == 4 and ip in net


# --------------------------------------------------------------------------- the engine's query


@pytest.fixture(scope="module")
def engine_result() -> QueryResult:
    return run_query(build_query(WINDOW, CIDR_A, CIDR_B), EVENTS)


def test_the_engines_query_gives_the_independently_counted_groups(engine_result: QueryResult) -> None:
    records: Counter = Counter()
    nbytes: Counter = Counter()
    packets: Counter = Counter()
    for e in EVENTS:
        f = split(e["message"])
        if f["logStatus"] != "OK" or not WINDOW.contains_ms(e["timestamp"]):
            continue
        key = (f["srcAddr"], f["dstAddr"], f["srcPort"], f["dstPort"], f["protocol"], f["action"],
               "1" if in_net(f["srcAddr"], NET_A) else "0", "1" if in_net(f["srcAddr"], NET_B) else "0")
        records[key] += 1
        nbytes[key] += int(f["bytes"])
        packets[key] += int(f["packets"])
    assert len(records) > 100 and max(records.values()) > 1  # groups really aggregate

    result = engine_result
    got = {}
    for row in as_dicts(result):
        key = tuple(row[k] for k in ("srcAddr", "dstAddr", "srcPort", "dstPort", "protocol", "action", "srcInA", "srcInB"))
        assert key not in got
        got[key] = (int(row["records"]), int(row["bytes"]), int(row["packets"]))
    assert got == {k: (records[k], nbytes[k], packets[k]) for k in records}
    assert result.statistics == {
        "recordsMatched": float(sum(records.values())),
        "recordsScanned": float(len(EVENTS)),
        "bytesScanned": float(sum(len(e["message"].encode()) for e in EVENTS)),
    }


def test_the_engine_reads_the_rows_and_its_cidr_cross_check_passes(engine_result: QueryResult) -> None:
    result = engine_result
    weights: Counter = Counter()
    for cells in result.results:
        record, weight = row_to_record(cells, NET_A, NET_B)  # raises on an inconsistent row
        assert isinstance(record, FlowRecord)
        weights[record.srcaddr] += weight
    expected = Counter(split(e["message"])["srcAddr"] for e in EVENTS
                       if WINDOW.contains_ms(e["timestamp"]) and e["message"].endswith(" OK"))
    assert weights == expected
    assert len(result.results) < insights.ROW_LIMIT


def test_the_engines_window_is_half_open_on_event_time() -> None:
    line = v2_line("10.0.1.5", "10.1.2.5", 50000, 443)
    events = [{"timestamp": t, "message": line} for t in
              (WINDOW.start_ms - 1, WINDOW.start_ms, WINDOW.end_ms - 1, WINDOW.end_ms)]
    rows = as_dicts(run_query(build_query(WINDOW, CIDR_A, CIDR_B), events))
    assert [r["records"] for r in rows] == ["2"]


def test_the_discovered_field_names_are_the_projects() -> None:
    assert iq.FLOW_LOG_FIELDS == tuple(INSIGHTS_FIELDS[name] for name in FLOW_LOG_V2_FIELDS)
    event = EVENTS[0] if EVENTS[0]["message"].endswith(" OK") else EVENTS[1]
    row = as_dicts(run_query("fields " + ", ".join(f"`{n}`" for n in iq.FLOW_LOG_FIELDS), [event]))[0]
    assert {k: v for k, v in row.items() if k != "@ptr"} == split(event["message"])


# --------------------------------------------------------------------------- filter


def test_filter_with_isipv4insubnet_and_boolean_operators() -> None:
    lines = [e["message"] for e in EVENTS]
    fields = [split(line) for line in lines]

    def count(text: str) -> int:
        return int(as_dicts(run_query(text, EVENTS))[0]["n"])

    ok = [f for f in fields if f["logStatus"] == "OK"]
    assert count('filter isIpv4InSubnet(srcAddr, "10.0.0.0/16") | stats count(*) as n') == \
        sum(in_net(f["srcAddr"], NET_A) for f in ok)
    # host bits in the CIDR are masked; IPv6 and "-" are never in an IPv4 subnet
    assert count("filter not isIpv4InSubnet(srcAddr, '10.0.7.7/16') | stats count(*) as n") == \
        len(fields) - sum(in_net(f["srcAddr"], NET_A) for f in ok)
    assert count('filter (isIpv4InSubnet(srcAddr, "10.0.0.0/16") or isIpv4InSubnet(srcAddr, "10.1.0.0/16"))'
                 ' and action = "REJECT" | stats count(*) as n') == \
        sum((in_net(f["srcAddr"], NET_A) or in_net(f["srcAddr"], NET_B)) and f["action"] == "REJECT" for f in ok)
    assert count("filter dstPort in [22, 3306] and protocol != 17 | stats count(*) as n") == \
        sum(f["dstPort"] in ("22", "3306") and f["protocol"] != "17" for f in ok)
    assert count("filter dstPort not in [22, 3306] and logStatus = 'OK' | stats count(*) as n") == \
        sum(f["dstPort"] not in ("22", "3306") for f in ok)
    assert count("filter ispresent(srcAddr) and srcAddr like /^2001:/ | stats count(*) as n") == \
        sum(f["srcAddr"].startswith("2001:") for f in ok)
    assert count('filter @message like "REJECT" and @logStream =~ /-1-/ | stats count(*) as n') == \
        sum("REJECT" in e["message"] and "-1-" in e["logStreamName"] for e in EVENTS)


def test_numeric_fields_compare_as_numbers_not_text() -> None:
    events = [{"timestamp": 1, "message": v2_line("10.0.0.1", "10.0.0.2", 1, port, nbytes=b)}
              for port, b in ((900, 9), (1024, 10), (8080, 100))]
    rows = as_dicts(run_query("filter dstPort < 1024 or bytes >= 100 | fields dstPort | sort dstPort asc", events))
    assert [r["dstPort"] for r in rows] == ["900", "8080"]  # as text "8080" < "900" and "1024" < "900"
    rows = as_dicts(run_query('filter dstPort = "1024" | fields bytes * 2 + 1 as x, bytes / 4 as y, -bytes as z', events))
    assert rows[0]["x"] == "21" and rows[0]["y"] == "2.5" and rows[0]["z"] == "-10"


def test_timestamps_and_frommillis() -> None:
    t = WINDOW.start_ms + 61_234
    rows = as_dicts(run_query(f"filter @timestamp >= fromMillis({t}) | fields @timestamp, toMillis(@timestamp) as ms,"
                              " @ingestionTime, @log, @logStream",
                              [{"timestamp": t, "message": "x", "ingestionTime": t + 5, "logGroupName": "g", "logStreamName": "s"},
                               {"timestamp": t - 1, "message": "y"}]))
    assert rows == [{"@timestamp": "2026-01-01 10:01:01.234", "ms": str(t), "@ingestionTime": "2026-01-01 10:01:01.239",
                     "@log": "g", "@logStream": "s", "@ptr": rows[0]["@ptr"]}]


# --------------------------------------------------------------------------- stats


def test_stats_by_several_fields_with_every_aggregate() -> None:
    text = ("filter logStatus = 'OK' | stats count(*), count(srcPort) as c, count_distinct(dstAddr) as d,"
            " sum(bytes) as s, min(bytes), max(bytes), avg(packets) as p by srcAddr, action, protocol")
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for e in EVENTS:
        f = split(e["message"])
        if f["logStatus"] == "OK":
            groups[(f["srcAddr"], f["action"], f["protocol"])].append(f)
    rows = as_dicts(run_query(text, EVENTS))
    assert len(rows) == len(groups)
    for row in rows:
        members = groups[(row["srcAddr"], row["action"], row["protocol"])]
        sizes = [int(f["bytes"]) for f in members]
        packets = [int(f["packets"]) for f in members]
        assert row["count(*)"] == row["c"] == str(len(members))
        assert row["d"] == str(len({f["dstAddr"] for f in members}))
        assert row["s"] == str(sum(sizes))
        assert row["min(bytes)"] == str(min(sizes)) and row["max(bytes)"] == str(max(sizes))
        avg = sum(packets) / len(packets)
        assert float(row["p"]) == pytest.approx(avg)
        assert row["p"] == (str(int(avg)) if avg.is_integer() else repr(avg))
    # result columns: the by fields first, then the aggregates in query order
    assert list(rows[0]) == ["srcAddr", "action", "protocol", "count(*)", "c", "d", "s", "min(bytes)", "max(bytes)", "p"]


def test_stats_by_bin_and_arithmetic_over_aggregates() -> None:
    ok = [e for e in EVENTS if e["message"].endswith(" OK")]
    per_bin: Counter = Counter(e["timestamp"] // 300_000 * 300_000 for e in ok)
    bytes_per_bin: Counter = Counter()
    for e in ok:
        bytes_per_bin[e["timestamp"] // 300_000 * 300_000] += int(split(e["message"])["bytes"])
    rows = as_dicts(run_query("filter logStatus = 'OK' | stats count(*) as n, sum(bytes) / count(*) as mean by bin(5m)"
                              " | sort n desc", EVENTS))
    got = {r["bin(5m)"]: (int(r["n"]), float(r["mean"])) for r in rows}
    expected = {iq._format_time(b): (n, pytest.approx(bytes_per_bin[b] / n)) for b, n in per_bin.items()}
    assert got == expected
    assert [int(r["n"]) for r in rows] == sorted(per_bin.values(), reverse=True)


def test_stats_of_stats() -> None:
    text = ("filter isIpv4InSubnet(srcAddr, '10.0.0.0/8') | stats sum(bytes) as b, count(*) as n by srcAddr, dstAddr"
            " | filter n > 1"
            " | stats count(*) as pairs, max(b) as top, sum(n) as flows by srcAddr | sort flows desc, srcAddr asc")
    pair_bytes: Counter = Counter()
    pair_count: Counter = Counter()
    for e in EVENTS:
        f = split(e["message"])
        if f["logStatus"] == "OK" and in_net(f["srcAddr"], ipaddress.ip_network("10.0.0.0/8")):
            pair_bytes[(f["srcAddr"], f["dstAddr"])] += int(f["bytes"])
            pair_count[(f["srcAddr"], f["dstAddr"])] += 1
    expected: dict[str, dict[str, int]] = {}
    for (src, _), n in pair_count.items():
        if n > 1:
            row = expected.setdefault(src, {"pairs": 0, "top": 0, "flows": 0})
            row["pairs"] += 1
            row["flows"] += n
    for (src, dst), b in pair_bytes.items():
        if pair_count[(src, dst)] > 1:
            expected[src]["top"] = max(expected[src]["top"], b)
    rows = as_dicts(run_query(text, EVENTS))
    assert {r["srcAddr"]: {k: int(r[k]) for k in ("pairs", "top", "flows")} for r in rows} == expected
    # srcAddr ascending in AWS's natural order: digit runs compare as numbers
    assert [r["srcAddr"] for r in rows] == sorted(
        expected, key=lambda s: (-expected[s]["flows"], tuple(int(octet) for octet in s.split("."))))


def test_stats_of_stats_only_sees_the_first_stats_fields() -> None:
    text = "stats count(*) as c by srcAddr | stats sum(bytes) as b"
    with pytest.raises(InsightsQueryError, match="'bytes' is not defined by the preceding stats") as err:
        parse_query(text)
    assert err.value.position == text.index("bytes")
    text = "stats count(*) by srcAddr | sort srcAddr | stats count(*) as n"
    with pytest.raises(InsightsQueryError, match="after the second stats") as err:
        parse_query(text)
    assert err.value.position == text.index("sort")
    text = "stats count(*) as a by srcAddr | stats count(*) as b by a | stats count(*) as c"
    with pytest.raises(InsightsQueryError, match="at most 2 stats") as err:
        parse_query(text)
    assert err.value.position == text.rindex("stats")
    with pytest.raises(InsightsQueryError, match="@timestamp"):
        parse_query("stats count(*) as n by srcAddr | stats avg(n) by bin(5m)")
    # a field defined after the first stats may be referenced; backticks reach default names
    rows = as_dicts(run_query("stats count(*) by srcAddr | fields `count(*)` * 2 as twice | stats sum(twice) as t",
                              EVENTS))
    assert rows == [{"t": str(2 * len(EVENTS))}]


def test_stats_over_no_events_returns_no_rows() -> None:
    result = run_query("filter logStatus = 'NOPE' | stats count(*) as n", EVENTS)
    assert result.results == []
    assert result.statistics["recordsMatched"] == 0.0 and result.statistics["recordsScanned"] == float(len(EVENTS))


# --------------------------------------------------------------------------- sort, limit, caps


def test_sort_and_limit_top_n() -> None:
    totals: Counter = Counter()
    for e in EVENTS:
        f = split(e["message"])
        if f["logStatus"] == "OK":
            totals[f["srcAddr"]] += int(f["bytes"])
    rows = as_dicts(run_query("stats sum(bytes) as b by srcAddr | sort b desc | limit 3", EVENTS))
    assert [(r["srcAddr"], int(r["b"])) for r in rows] == sorted(totals.items(), key=lambda kv: -kv[1])[:3]
    rows = as_dicts(run_query("filter logStatus = 'OK' | stats sum(bytes) as b by srcAddr | sort b | limit 2",
                              EVENTS))  # ascending by default
    assert [int(r["b"]) for r in rows] == sorted(totals.values())[:2]
    # a null sorts first ascending (NODATA records have no numeric bytes, so no sum)
    rows = as_dicts(run_query("stats sum(bytes) as b by srcAddr | sort b asc | limit 1", EVENTS))
    assert rows == [{"srcAddr": "-"}]


def test_events_without_sort_come_newest_first_and_limit_keeps_the_newest() -> None:
    rows = as_dicts(run_query("fields @timestamp, @message | limit 5", EVENTS))
    newest = sorted(EVENTS, key=lambda e: -e["timestamp"])[:5]
    assert [r["@message"] for r in rows] == [e["message"] for e in newest]
    assert all(set(r) == {"@timestamp", "@message", "@ptr"} for r in rows)
    rows = as_dicts(run_query("filter bytes > 8000 | fields bytes | sort bytes asc | limit 4", EVENTS))
    assert [int(r["bytes"]) for r in rows] == sorted(int(split(e["message"])["bytes"]) for e in EVENTS
                                                      if e["message"].endswith(" OK") and int(split(e["message"])["bytes"]) > 8000)[:4]


def test_sort_uses_the_documented_natural_order() -> None:
    documented = ["!:", "#", "*%04", "0#", "5A", "111A", "2345_", "@", "@_", "A", "A9876fghj", "a12345hfh",
                  "0", "1", "2", "3"]
    shuffled = documented[:]
    random.Random(3).shuffle(shuffled)
    events = [{"timestamp": i, "message": m} for i, m in enumerate(shuffled)]
    assert [r["@message"] for r in as_dicts(run_query("sort @message asc", events))] == documented
    assert [r["@message"] for r in as_dicts(run_query("sort @message desc", events))] == documented[::-1]


def test_at_most_ten_thousand_rows() -> None:
    assert iq.MAX_RESULT_ROWS == insights.ROW_LIMIT == 10_000
    assert iq.DEFAULT_LIMIT == 10_000
    events = [{"timestamp": i, "message": v2_line(f"10.0.{i // 250}.{i % 250}", "10.1.0.1", 50000, 443)}
              for i in range(10_050)]
    in_window = [dict(e, timestamp=WINDOW.start_ms + e["timestamp"]) for e in events]
    result = run_query(build_query(WINDOW, CIDR_A, CIDR_B), in_window)
    assert len(result.results) == 10_000  # a full result is what makes the engine split its window
    assert result.statistics["recordsMatched"] == 10_050.0
    assert len(run_query("fields srcAddr | limit 20000", events).results) == 10_000
    assert len(run_query("fields srcAddr", EVENTS, limit=7).results) == 7
    assert len(run_query("fields srcAddr | limit 3", EVENTS, limit=7).results) == 3


def test_events_are_read_once_as_a_stream() -> None:
    consumed = []

    def stream():
        for e in EVENTS:
            consumed.append(1)
            yield e

    result = run_query("fields srcAddr | limit 1", stream())
    assert len(consumed) == len(EVENTS) and result.statistics["recordsScanned"] == float(len(EVENTS))


def test_statistics_count_utf8_bytes() -> None:
    events = [{"timestamp": 1, "message": "héllo"}, {"timestamp": 2, "message": "abc"}]
    result = run_query("filter @message like 'h' | fields @message", events)
    assert result.statistics == {"recordsMatched": 1.0, "recordsScanned": 2.0, "bytesScanned": 9.0}


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("text", "construct", "needle"), [
    ('fields @message | parse @message "* *" as a, b', "unsupported command 'parse'", "parse"),
    ("filter action = 'REJECT' | dedup srcAddr", "unsupported command 'dedup'", "dedup"),
    ("display srcAddr", "unsupported command 'display'", "display"),
    ("fields srcAddr | frobnicate", "unknown command 'frobnicate'", "frobnicate"),
    ("filter strlen(srcAddr) > 3 and bogus(srcAddr) = 1", "unknown function bogus()", "bogus"),
    ("stats pct(bytes, 95) by srcAddr", "unsupported function pct()", "pct"),
    ("stats count(*) by bin(1mo)", "calendar time unit", "mo"),
    ("filter srcAddr == '10.0.0.1'", "'==' is not supported", "=="),
    ("filter bytes ^ 2 > 1", "unexpected character '^'", "^"),
])
def test_unsupported_constructs_raise_with_their_offset(text: str, construct: str, needle: str) -> None:
    with pytest.raises(InsightsQueryError) as err:
        parse_query(text)
    assert construct in str(err.value)
    assert err.value.position == text.index(needle)
    assert str(err.value).endswith(f"at offset {err.value.position}")
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty query"),
    ("   # only a comment", "empty query"),
    ("filter srcAddr = 'unterminated", "unterminated string"),
    ("filter srcPort =", "expected a field, a literal"),
    ("filter srcPort = 1 srcAddr", "expected '|'"),
    ("fields srcAddr |", "expected a command"),
    ("filter srcPort", "boolean condition"),
    ("filter action = 'ACCEPT' and srcPort", "boolean condition"),
    ("filter not srcPort", "boolean condition"),
    ("filter sum(bytes) > 1", "only allowed in stats"),
    ("stats srcAddr", "outside an aggregate"),
    ("stats 1 + 1", "no aggregate"),
    ("stats sum(count(*))", "cannot be nested"),
    ("stats count(*) as n, sum(bytes) as n", "defines 'n' twice"),
    ("limit 0", "positive whole number"),
    ("limit ten", "positive whole number"),
    ("sort", "a field name to sort by"),
    ("filter dstPort in (1, 2)", "to open the list"),
    ("filter isIpv4InSubnet(srcAddr, '10.0.0.0/33')", "IPv4 CIDR"),
    ("filter isIpv4InSubnet(srcAddr)", "takes 2 arguments"),
    ("filter srcAddr like /unterminated", "unterminated regular expression"),
    ("filter srcAddr like /(/", "invalid regular expression"),
    ("fields 5m", "only allowed as the argument of bin()"),
])
def test_malformed_queries_raise(text: str, message: str) -> None:
    with pytest.raises(InsightsQueryError, match=re.escape(message)) as err:
        parse_query(text)
    assert err.value.position is not None and 0 <= err.value.position <= len(text)


def test_run_query_parses_text_and_rejects_a_bad_api_limit() -> None:
    with pytest.raises(InsightsQueryError):
        run_query("parse @message 'x'", EVENTS)
    with pytest.raises(InsightsQueryError):
        run_query("fields srcAddr", EVENTS, limit=10_001)


def test_a_parsed_query_is_a_value(engine_result: QueryResult) -> None:
    text = build_query(WINDOW, CIDR_A, CIDR_B)
    query = parse_query(text)
    assert isinstance(query, Query) and query == parse_query(text) and hash(query) == hash(parse_query(text))
    assert query.text == text and len(query.stats) == 1
    assert query != parse_query(build_query(WINDOW, CIDR_A, "10.2.0.0/16"))
    assert run_query(query, EVENTS) == engine_result


def test_keywords_and_functions_are_case_insensitive_and_comments_are_skipped() -> None:
    text = ("FILTER logStatus = 'OK' AND NOT ISIPV4INSUBNET(srcAddr, '10.0.0.0/16')  # not from A\n"
            "| STATS COUNT(*) AS n BY action\n| SORT action DESC")
    rows = as_dicts(run_query(text, EVENTS))
    expected = Counter(split(e["message"])["action"] for e in EVENTS
                       if e["message"].endswith(" OK") and not in_net(split(e["message"])["srcAddr"], NET_A))
    assert [(r["action"], int(r["n"])) for r in rows] == sorted(expected.items(), reverse=True)


def test_each_filter_tests_its_own_condition() -> None:
    """Two filters around a fields command: the first sees the raw events, the second the
    field the fields command defined (a late-bound predicate once made both test the last)."""
    events = [{"timestamp": 1, "message": v2_line("10.0.1.5", "10.1.2.5", 50000, port, action=action)}
              for port, action in ((443, "REJECT"), (22, "REJECT"), (443, "ACCEPT"))]
    query = 'filter dstPort = 443 | fields action = "REJECT" as rejected | filter rejected = 1 | stats count(*) as n'
    assert as_dicts(run_query(query, events)) == [{"n": "1"}]


def test_concat_and_substr() -> None:
    events = [{"timestamp": 1, "message": v2_line("10.0.1.5", "10.1.2.5", 50000, 443, action="REJECT")}]
    query = ('fields concat("#", substr(dstAddr, 0, strlen(dstAddr) * (action = "REJECT"))) as probed,'
             ' concat("#", substr(dstAddr, 0, strlen(dstAddr) * (action = "ACCEPT"))) as accepted,'
             ' substr(srcAddr, 5) as tail, substr(srcAddr, 0, 4) as head | stats count(*) by probed, accepted, tail, head')
    assert as_dicts(run_query(query, events)) == [
        {"probed": "#10.1.2.5", "accepted": "#", "tail": "1.5", "head": "10.0", "count(*)": "1"}]
    with pytest.raises(InsightsQueryError, match=r"substr\(\) takes 2 to 3 arguments, got 1"):
        parse_query("fields substr(srcAddr) as x")
    with pytest.raises(InsightsQueryError, match=r"concat\(\) takes at least 1 argument, got 0"):
        parse_query("fields concat() as x")
