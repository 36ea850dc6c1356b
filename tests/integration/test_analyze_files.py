"""`vpcpeer analyze --files`: the handler's report from flow-log files, checked against the
handler itself on moto and against SQL over the same files; and the command's errors."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from lambda_pkg.handler import lambda_handler
from lambda_pkg.window import Window, last_complete_hour
from tests.analyzer_env import ENV, config
from tests.flowgen import nodata_line, v2_line
from tests.integration.test_handler_moto import Context, aws, write  # noqa: F401  (aws: the moto fixture)
from vpcpeer_orchestration.cli import EXIT_CONFIG
from vpcpeer_orchestration.offline import analyze_files

# The fields the analysis needs, as a custom --format.
CORE = "${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${action} ${log-status}"
# What only the files' reader and the Logs service see differently: how many lines were read
# (the service filters the window first), which lines could not be windowed, and coverage.
READER_FIELDS = ("lines_read", "out_of_window_records", "malformed_records", "coverage")


def records(window: Window, n: int, seed: int) -> list[str]:
    """Varied v2 records whose start falls before, inside and after ``window``: peer traffic,
    replies, internet sources, rejects, a scan, other protocols, NODATA and malformed lines."""
    rng = random.Random(seed)
    lo, hi = window.start_ms // 1000, window.end_ms // 1000
    a = [f"10.0.{rng.choice((1, 2, 10))}.{rng.randint(4, 250)}" for _ in range(40)]
    b = [f"10.1.{rng.choice((1, 2, 10))}.{rng.randint(4, 250)}" for _ in range(40)]
    internet = [f"{rng.randint(11, 200)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(30)]
    lines = []
    for i in range(n):
        start = rng.randint(lo - 600, hi + 600)
        roll = rng.random()
        if roll < 0.02:
            lines.append(rng.choice([nodata_line(start=start), nodata_line("SKIPDATA", start=start)]))
            continue
        if roll < 0.03:
            lines.append(rng.choice(["garbage", f"2 x eni a b c d e f g h {start} j k"]))
            continue
        if roll < 0.40:
            src, dst, sport, dport = rng.choice(b), rng.choice(a), rng.randint(32768, 60999), rng.choice((443, 8080, 5432))
        elif roll < 0.70:
            src, dst, sport, dport = rng.choice(a), rng.choice(b), rng.choice((443, 8080)), rng.randint(32768, 60999)
        elif roll < 0.85:
            src, dst, sport, dport = rng.choice(internet), rng.choice(a), rng.randint(1024, 65535), rng.choice((22, 443, 3389))
        elif roll < 0.95:
            src, dst, sport, dport = "198.51.100.7", rng.choice(a[:3]), 40000 + i % 7, rng.randint(1, 65535)
        else:
            src, dst, sport, dport = rng.choice(a), rng.choice(internet), rng.randint(32768, 60999), 443
        action = "REJECT" if dport in (22, 3389, 5432) or src == "198.51.100.7" or rng.random() < 0.03 else "ACCEPT"
        lines.append(v2_line(src, dst, sport, dport, proto=rng.choice((6, 6, 6, 17, 1)), packets=rng.randint(1, 50),
                             nbytes=rng.randint(40, 90_000), action=action, start=start))
    return lines


def start_of(line: str) -> int | None:
    fields = line.split(" ")
    return int(fields[10]) if len(fields) == 14 and fields[10].isdigit() else None


@pytest.fixture
def window() -> Window:
    return last_complete_hour(datetime.now(timezone.utc), timedelta(minutes=10))


def write_files(tmp_path: Path, window: Window) -> dict[str, list[str]]:
    lines = {"VPC-A": records(window, 3000, 1), "VPC-B": records(window, 2000, 2)}
    with gzip.open(tmp_path / "a.log.gz", "wt") as out:  # as S3 delivers them: gzip, header line
        out.write("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
                  "action log-status\n")
        out.writelines(line + "\n" for line in lines["VPC-A"])
    (tmp_path / "b.log").write_text("".join(line + "\r\n" for line in lines["VPC-B"]))
    return lines


def test_files_give_the_handlers_report_for_the_same_records(aws, tmp_path, window) -> None:  # noqa: F811
    lines = write_files(tmp_path, window)
    for label, group in (("VPC-A", ENV["VPC_A_LOG_GROUP"]), ("VPC-B", ENV["VPC_B_LOG_GROUP"])):
        # As CloudWatch Logs would hold them: each event at its record's start (malformed ones inside the window).
        write(aws["logs"], group, [((start_of(line) or window.start_ms // 1000 + 1) * 1000, line)
                                   for line in lines[label]])
    from_logs = lambda_handler({"window": window.to_json(), "orchestrated": True}, Context())
    from_files = analyze_files(config(), window, {"VPC-A": [tmp_path / "a.log.gz"], "VPC-B": [tmp_path / "b.log"]},
                               jobs=2)
    assert from_files["engine"] == "files" and from_logs["window"] == from_files["window"]
    for label in ("VPC-A", "VPC-B"):
        got, want = dict(from_files["vpcs"][label]), dict(from_logs["vpcs"][label])
        for field in READER_FIELDS:
            got.pop(field), want.pop(field)
        assert want["total_requests"] > 500 and want["evidence"]["scan_candidates"]
        assert got == want, label
    assert [a["key"] for a in from_files["anomalies"]] == [a["key"] for a in from_logs["anomalies"]]
    vpc_a = from_files["vpcs"]["VPC-A"]
    assert vpc_a["lines_read"] == len(lines["VPC-A"])  # files: every line read, windowed here
    assert vpc_a["malformed_records"] and vpc_a["out_of_window_records"] > 0


def test_headline_fields_equal_sql_over_the_same_files(tmp_path, window) -> None:
    write_files(tmp_path, window)
    report = analyze_files(config(), window, {"VPC-A": [tmp_path / "a.log.gz"], "VPC-B": [tmp_path / "b.log"]}, jobs=1)
    lo, hi = window.seconds
    db = duckdb.connect()
    for label, path in (("VPC-A", tmp_path / "a.log.gz"), ("VPC-B", tmp_path / "b.log")):
        # DuckDB reads the file itself (gzip, CRLF); the SQL knows nothing of the analyzer.
        db.execute(f"""CREATE OR REPLACE VIEW ok AS
            SELECT f[4] AS src, f[5] AS dst, f[7] AS dport, f[9]::BIGINT AS packets, f[10]::BIGINT AS bytes,
                   f[13] AS action
            FROM (SELECT string_split(rtrim(line, chr(13)), ' ') AS f
                  FROM read_csv('{path}', columns={{'line': 'VARCHAR'}}, delim=chr(1), header=false, quote='',
                                escape=''))
            WHERE len(f) = 14 AND f[14] = 'OK' AND regexp_full_match(f[11], '[0-9]+')
              AND f[11]::BIGINT >= {lo} AND f[11]::BIGINT < {hi}""")
        total, nbytes, packets, sources, dests, rejected = db.execute("""
            SELECT count(*), sum(bytes), sum(packets), count(DISTINCT src), count(DISTINCT dst),
                   count(*) FILTER (WHERE action = 'REJECT') FROM ok""").fetchone()
        external = db.execute("""SELECT count(*) FROM ok WHERE NOT (src LIKE '10.0.%' OR src LIKE '10.1.%')""").fetchone()[0]
        top = db.execute("SELECT src, count(*) c FROM ok GROUP BY src ORDER BY c DESC, src LIMIT 10").fetchall()
        ports = dict(db.execute("SELECT dport, count(*) FROM ok GROUP BY dport").fetchall())
        vpc = report["vpcs"][label]
        assert total > 500
        assert (vpc["total_requests"], vpc["total_bytes"], vpc["total_packets"], vpc["unique_sources"],
                vpc["unique_destinations"], vpc["rejected_connections"], vpc["external_traffic_count"]) == \
               (total, nbytes, packets, sources, dests, rejected, external), label
        assert vpc["top_source_ips"] == [[ip, c] for ip, c in top]
        assert vpc["port_breakdown"] == ports


def vpcpeer(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vpcpeer_orchestration.cli", *args], capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "VPCPEER_HOME": str(home)})


def test_the_command_prints_the_report_and_names_what_to_fix(tmp_path, window) -> None:
    write_files(tmp_path, window)
    start, end = window.to_json()["start"], window.to_json()["end"]
    ok = vpcpeer("analyze", "--files", f"VPC-A={tmp_path / 'a.log.gz'}", "--files", f"VPC-B={tmp_path / 'b.log'}",
                 "--start", start, "--end", end, "--json", home=tmp_path / "home")
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert set(report["vpcs"]) == {"VPC-A", "VPC-B"} and report["vpcs"]["VPC-A"]["total_requests"] > 500
    text = vpcpeer("analyze", "--files", f"VPC-A={tmp_path / 'a.log.gz'}", "--start", start, "--end", end,
                   home=tmp_path / "home")
    assert text.returncode == 0 and "VPC-A 10.0.0.0/16:" in text.stdout and "anomalies:" in text.stdout

    for args, message in (
        (["--files", f"VPC-A={tmp_path / 'missing.log'}"], "missing.log: no such file"),
        (["--files", f"VPC-C={tmp_path / 'b.log'}"], "VPC-C: not a VPC of this stack"),
        (["--files", str(tmp_path / "b.log")], "give LABEL=PATH"),
        (["--files", f"VPC-A={tmp_path / 'a.log.gz'}", "--format", f"{CORE} ${{start}}"], "differs from --format"),
        (["--files", f"VPC-B={tmp_path / 'b.log'}", "--format", CORE], "no start field"),
        (["--files", f"VPC-B={tmp_path / 'b.log'}", "--format", "${version} ${srcaddr} ${start}"], "lacks dstaddr"),
    ):
        failed = vpcpeer("analyze", *args, "--start", start, "--end", end, home=tmp_path / "home")
        assert failed.returncode == EXIT_CONFIG, (args, failed.stderr)
        assert message in failed.stderr and "Traceback" not in failed.stderr, failed.stderr
    backwards = vpcpeer("analyze", "--files", f"VPC-B={tmp_path / 'b.log'}", "--start", end, "--end", start,
                        home=tmp_path / "home")
    assert backwards.returncode == EXIT_CONFIG and "Traceback" not in backwards.stderr


def test_large_inputs_report_progress_per_part(tmp_path, window, monkeypatch) -> None:
    import vpcpeer_orchestration.offline as offline

    write_files(tmp_path, window)
    monkeypatch.setattr(offline, "PROGRESS_BYTES", 0)  # these files count as large
    monkeypatch.setattr(offline, "MIN_PART_BYTES", 50_000)  # and the plain one is cut in parts
    said: list[str] = []
    report = analyze_files(config(), window, {"VPC-A": [tmp_path / "a.log.gz"], "VPC-B": [tmp_path / "b.log"]},
                           jobs=2, say=said.append)
    parts = report["engine_stats"]["parts"]
    assert parts >= 3 and said[0].startswith("reading 2 file(s)") and len(said) == parts + 1
    assert said[-1].startswith(f"  {parts}/{parts} parts, {report['engine_stats']['bytes'] / 1e6:,.0f} MB")
