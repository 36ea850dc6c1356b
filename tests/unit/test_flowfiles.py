"""Flow-log files read in parts: any cut gives the single pass's report, and whatever a file
holds (CRLF, invalid UTF-8, an endless line, a header, a broken gzip) is counted, not fatal."""

from __future__ import annotations

import gzip
import random
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lambda_pkg.aggregate import VpcTraffic
from lambda_pkg.flowfiles import MAX_LINE_BYTES, FlowFileError, open_flow_log, parts, read_part
from lambda_pkg.records import LINE_TOO_LONG, FlowLogFormat
from lambda_pkg.window import Window
from tests.analyzer_env import config
from tests.flowgen import random_lines, v2_line

WINDOW = Window(datetime(2023, 11, 14, 22, tzinfo=timezone.utc), datetime(2023, 11, 14, 23, tzinfo=timezone.utc))
V2_HEADER = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"


def lines(n: int = 3000, seed: int = 3) -> list[str]:
    """v2 records with starts around WINDOW (random_lines' start is inside it)."""
    rng = random.Random(seed)
    out = []
    for line in random_lines(n, seed=seed, malformed_every=29):
        fields = line.split(" ")
        if len(fields) == 14 and fields[10].isdigit():
            start = WINDOW.start_ms // 1000 + rng.randint(-900, 4500)
            fields[10], fields[11] = str(start), str(start + 60)
        out.append(" ".join(fields))
    return out


def hostile_bytes() -> bytes:
    body = [line.encode() for line in lines()]
    body[100] = b"x" * (3 * MAX_LINE_BYTES)  # one endless line
    body[200] = body[200].replace(b"10.", b"\xff\xfe.", 1)  # invalid UTF-8
    body[300] += b"\r"  # CRLF
    return b"\n".join(body) + b"\n\n"  # and a blank line at the end


def report_of(path: Path, target: int | None) -> dict:
    file = open_flow_log("VPC-A", path)
    cfg = config()
    spec, peer = cfg.vpcs
    total = VpcTraffic(spec, peer, WINDOW)
    for part in parts(file, target or file.size):
        total.merge(read_part(cfg, WINDOW, part))
    return total.report()


@pytest.mark.parametrize("target", [97, 1000, 4099, 65_536, 200_000])
def test_any_cut_gives_the_single_pass_report(tmp_path, target) -> None:
    path = tmp_path / "flows.log"
    path.write_bytes(hostile_bytes())
    whole = report_of(path, None)
    assert whole["total_requests"] > 1000 and whole["out_of_window_records"] > 100
    assert whole["malformed_records"][LINE_TOO_LONG] == 1
    assert whole["lines_read"] == 3000 + 1  # every line counted once, the blank last one too
    assert len(parts(open_flow_log("VPC-A", path), target)) > 1 or target >= path.stat().st_size
    assert report_of(path, target) == whole


def test_a_header_names_the_format_and_gzip_is_read_whole(tmp_path) -> None:
    plain = tmp_path / "plain.log"
    plain.write_text("\n".join(lines()) + "\n")
    # The same records in another field order, announced by the header, gzip-compressed.
    order = [10, 3, 4, 5, 6, 7, 8, 9, 12, 13, 0, 1, 2, 11]
    names = V2_HEADER.split(" ")
    packed = tmp_path / "flows.log.gz"
    with gzip.open(packed, "wt") as out:
        out.write(" ".join(names[i] for i in order) + "\n")
        for line in lines():
            fields = line.split(" ")
            out.write((" ".join(fields[i] for i in order) if len(fields) == 14 else line) + "\n")
    file = open_flow_log("VPC-A", packed)
    assert file.compressed and file.format.fields == tuple(names[i] for i in order)
    assert len(parts(file, 100)) == 1
    ours, theirs = report_of(packed, None), report_of(plain, None)
    assert ours["total_requests"] > 1000
    for field in ("lines_read", "malformed_records"):  # rearranged garbage fails differently
        ours.pop(field), theirs.pop(field)
    assert ours == theirs


def test_files_that_cannot_be_read_say_which_and_why(tmp_path) -> None:
    with pytest.raises(FlowFileError, match="no such file"):
        open_flow_log("VPC-A", tmp_path / "nope.log")
    with pytest.raises(FlowFileError, match="is a directory"):
        open_flow_log("VPC-A", tmp_path)
    broken = tmp_path / "broken.log.gz"
    broken.write_bytes(gzip.compress(("\n".join(lines()) + "\n").encode())[:5000])  # cut short in transit
    file = open_flow_log("VPC-A", broken)
    with pytest.raises(FlowFileError, match="broken.log.gz.*(ended|truncated|cannot be read)"):
        read_part(config(), WINDOW, parts(file, file.size)[0])
    headed = tmp_path / "headed.log"
    headed.write_text(V2_HEADER + "\n" + v2_line("10.1.1.1", "10.0.1.1", 40000, 443) + "\n")
    with pytest.raises(FlowFileError, match="differs from --format"):
        open_flow_log("VPC-A", headed, FlowLogFormat.parse("${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} "
                                                           "${packets} ${bytes} ${start} ${action} ${log-status}"))
