"""Flow-log files for the analyzer at a terminal: plain or gzip, v2 or custom format, read in parts.

VPC Flow Logs delivered to S3 are gzip files whose first line names the fields
(``version account-id interface-id ...``); files exported from CloudWatch Logs are plain
lines in the log group's format. A file is read in byte ranges so several processes can
share one large file: a part owns every line that *starts* inside its range, reading past
its end to finish the last one. The lines carry no event time, so records are windowed by
their ``start`` field.

Whatever a file holds costs linear time and bounded memory: it is read in BLOCK_BYTES
blocks, invalid UTF-8 becomes malformed records (never an exception), and a line longer
than MAX_LINE_BYTES (a record is a few hundred bytes) is counted as ``line_too_long``
and skipped without being held.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lambda_pkg.aggregate import VpcTraffic
from lambda_pkg.errors import AnalyzerError
from lambda_pkg.records import LINE_TOO_LONG, Addresses, FlowLogFormat, FormatError
from lambda_pkg.settings import AnalyzerConfig
from lambda_pkg.window import Window

MAX_LINE_BYTES = 64 * 1024
BLOCK_BYTES = 4 << 20
GZIP_MAGIC = b"\x1f\x8b"
# A header line: field names only (a record always holds addresses, which never match).
_HEADER = re.compile(r"[a-z][a-z0-9-]*(?: [a-z][a-z0-9-]*)+\r?\n?")


class FlowFileError(AnalyzerError, ValueError):
    """A flow-log file cannot be read as given; the message names the file and the fix."""


@dataclass(frozen=True)
class FlowLogFile:
    """One VPC's flow-log file, opened far enough to know its format and where records begin."""

    label: str
    path: Path
    format: FlowLogFormat
    data_start: int  # bytes before the first record (the header line, if any)
    size: int  # bytes on disk
    compressed: bool


@dataclass(frozen=True)
class Part:
    """The lines of ``file`` starting in [start, end) (end None: to the end of the file)."""

    file: FlowLogFile
    start: int
    end: int | None

    @property
    def size(self) -> int:
        return (self.file.size if self.end is None else self.end) - self.start


def open_flow_log(label: str, path: str | os.PathLike[str], given: FlowLogFormat | None = None) -> FlowLogFile:
    """Open ``path`` for ``label``: its format is the header's, else ``given``, else v2."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as raw:
            compressed = raw.read(2) == GZIP_MAGIC
        with _binary(path, compressed) as handle:
            first = handle.readline(MAX_LINE_BYTES)
    except FileNotFoundError:
        raise FlowFileError(f"{label}: {path}: no such file") from None
    except IsADirectoryError:
        raise FlowFileError(f"{label}: {path} is a directory; give one file per --files") from None
    except (OSError, EOFError) as exc:  # unreadable, or a truncated/corrupt gzip
        raise FlowFileError(f"{label}: {path}: cannot be read ({exc})") from None
    text = first.decode("utf-8", errors="replace")
    if _HEADER.fullmatch(text):
        try:
            announced = FlowLogFormat.from_header(text)
        except FormatError as exc:
            raise FlowFileError(f"{label}: {path}: its header line is not a usable flow-log format: {exc}") from None
        if given is not None and given.fields != announced.fields:
            raise FlowFileError(f"{label}: {path}: its header announces the format {' '.join(announced.fields)!r}, "
                                f"which differs from --format; drop --format or give the file's own format")
        fmt, data_start = announced, len(first)
    else:
        fmt, data_start = given or FlowLogFormat(), 0
    if "start" not in fmt.fields:
        raise FlowFileError(f"{label}: {path}: the format has no start field, by which file records are windowed; "
                            "add ${start} to the flow log's format")
    return FlowLogFile(label, path, fmt, data_start, size, compressed)


def parts(file: FlowLogFile, target_bytes: int) -> list[Part]:
    """``file`` cut into parts of about ``target_bytes`` (a compressed file is one part)."""
    if file.compressed or file.size - file.data_start <= target_bytes:
        return [Part(file, file.data_start, None)]
    bounds = list(range(file.data_start, file.size, target_bytes))
    return [Part(file, start, end) for start, end in zip(bounds, [*bounds[1:], None])]


def read_part(config: AnalyzerConfig, window: Window, part: Part, addresses: Addresses | None = None) -> VpcTraffic:
    """The aggregation of one part's records (top level, so a worker process can run it)."""
    spec = config.vpc(part.file.label)
    peer = next(v for v in config.vpcs if v is not spec)
    traffic = VpcTraffic(spec, peer, window, part.file.format, addresses)
    try:
        for lines, too_long in _blocks(part):
            traffic.add_lines(lines)
            if too_long:
                traffic.lines += too_long
                traffic.malformed[LINE_TOO_LONG] += too_long
    except (OSError, EOFError, zlib.error) as exc:  # a gzip cut short or corrupt, a disk error
        raise FlowFileError(f"{part.file.label}: {part.file.path}: cannot be read to its end ({exc}); "
                            "nothing of it was reported") from None
    return traffic.settle()


def _binary(path: Path, compressed: bool) -> BinaryIO:
    return gzip.open(path, "rb") if compressed else path.open("rb")  # type: ignore[return-value]


class _Lines:
    """Cuts a byte stream into lines, holding at most MAX_LINE_BYTES of a partial line."""

    def __init__(self) -> None:
        self.carry = b""
        self.skipping = False  # inside a line already counted as too long

    def feed(self, block: bytes) -> Iterator[tuple[list[str], int]]:
        """(complete lines, lines too long) in ``block`` with what was carried before it."""
        pos, too_long = 0, 0
        if self.skipping:
            newline = block.find(b"\n")
            if newline < 0:
                return
            pos, self.skipping = newline + 1, False
        cut = block.rfind(b"\n")
        if cut < pos:
            self.carry += block[pos:]
        else:
            lines, too_long = _decode(self.carry + block[pos:cut])
            self.carry = block[cut + 1:]
            if lines:
                yield lines, too_long
                too_long = 0
        if len(self.carry) > MAX_LINE_BYTES:
            self.carry, self.skipping = b"", True
            too_long += 1
        if too_long:
            yield [], too_long

    def close(self) -> Iterator[tuple[list[str], int]]:
        """The last line, if the stream did not end with a newline."""
        if self.carry and not self.skipping:
            yield _decode(self.carry)
        self.carry = b""

    @property
    def inside_line(self) -> bool:
        return bool(self.carry) or self.skipping


def _blocks(part: Part) -> Iterator[tuple[list[str], int]]:
    """(lines, lines too long to keep) per block of the part, each line without its newline."""
    file = part.file
    lines = _Lines()
    with _binary(file.path, file.compressed) as handle:
        remaining = None if part.end is None else part.end - part.start
        if file.compressed:
            _skip(handle, file.data_start)
        elif part.start > file.data_start:
            handle.seek(part.start - 1)
            if handle.read(1) != b"\n":  # the line straddling our start is the previous part's
                remaining = _discard_line(handle, remaining)
        else:
            handle.seek(part.start)
        while remaining is None or remaining > 0:
            block = handle.read(BLOCK_BYTES if remaining is None else min(BLOCK_BYTES, remaining))
            if not block:
                break
            if remaining is not None:
                remaining -= len(block)
            yield from lines.feed(block)
        while part.end is not None and lines.inside_line:  # finish the last line we own
            rest = handle.readline(MAX_LINE_BYTES + 1)
            if not rest:
                break
            yield from lines.feed(rest)
        yield from lines.close()


def _decode(data: bytes) -> tuple[list[str], int]:
    """The lines of ``data`` (complete lines, newlines between); over-long lines counted and dropped."""
    lines = data.decode("utf-8", errors="replace").split("\n")
    if max(map(len, lines)) <= MAX_LINE_BYTES // 4:  # characters: at most 4 bytes each
        return lines, 0
    kept = [line for line in lines if len(line.encode("utf-8", errors="replace")) <= MAX_LINE_BYTES]
    return kept, len(lines) - len(kept)


def _skip(handle: BinaryIO, count: int) -> None:
    while count > 0:
        chunk = handle.read(min(count, BLOCK_BYTES))
        if not chunk:
            return
        count -= len(chunk)


def _discard_line(handle: BinaryIO, remaining: int | None) -> int | None:
    """Read past the next newline, holding at most a block; returns what is left of the range."""
    while True:
        chunk = handle.readline(BLOCK_BYTES)
        if remaining is not None:
            remaining -= len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return remaining
