"""Realistic flow-log inputs for the benchmarks, written as files the tools under comparison read.

Varied like the real thing, so no cache makes them look fast: 300 hosts per VPC, 3,000
internet hosts, ephemeral source ports, replies, NODATA, a few malformed lines and 3 % of
background probes on random ports. ``port_scan`` is the adversary's input: every one of the
65,535 ports probed by 2,000 sources. Deterministic for a seed; one record per line, event
time in the record's ``start`` field, default v2 format.
"""

from __future__ import annotations

import argparse
import gzip
import random
from collections.abc import Iterator
from pathlib import Path

ACCOUNT = "123456789012"
WINDOW_START = 1_767_261_600  # 2026-01-01T10:00:00Z
WINDOW_SECONDS = 3600
V2_HEADER = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
             "action log-status")


def _hosts(rng: random.Random, prefix: str, count: int) -> list[str]:
    return [f"{prefix}.{rng.choice((1, 2, 10, 11))}.{rng.randint(4, 250)}" for _ in range(count)]


def _line(rng: random.Random, eni: str, src: str, dst: str, sport: int, dport: int, action: str, proto: int = 6) -> str:
    start = WINDOW_START + rng.randrange(WINDOW_SECONDS - 60)
    packets = rng.randint(1, 60)
    return (f"2 {ACCOUNT} {eni} {src} {dst} {sport} {dport} {proto} {packets} {packets * rng.randint(40, 1500)} "
            f"{start} {start + 60} {action} OK")


def normal(records: int, seed: int = 1) -> Iterator[str]:
    """A VPC-A log's hour of mixed traffic."""
    rng = random.Random(seed)
    a, b = _hosts(rng, "10.0", 300), _hosts(rng, "10.1", 300)
    internet = [f"{rng.randint(11, 200)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
                for _ in range(3000)]
    enis = [f"eni-{rng.getrandbits(68):017x}" for _ in range(300)]
    for i in range(records):
        eni = enis[i % len(enis)]
        roll = rng.random()
        if roll < 0.01:
            start = WINDOW_START + rng.randrange(WINDOW_SECONDS - 60)
            yield f"2 {ACCOUNT} {eni} - - - - - - - {start} {start + 60} - NODATA"
        elif roll < 0.012:
            yield rng.choice(("garbage", "2 x eni a b c d e f g h i j k", ""))
        elif roll < 0.40:  # B -> A on A's ports, and the reply
            src, dst, sport, dport = rng.choice(b), rng.choice(a), rng.randint(32768, 60999), rng.choice((443, 8080))
            yield _line(rng, eni, src, dst, sport, dport, "ACCEPT")
        elif roll < 0.70:  # A -> B on B's ports, or replies to B
            src, dst, sport, dport = rng.choice(a), rng.choice(b), rng.randint(32768, 60999), rng.choice((443, 3306))
            yield _line(rng, eni, src, dst, sport, dport, "ACCEPT")
        elif roll < 0.97:  # internet via NAT: out and the replies in
            host, peer = rng.choice(a), rng.choice(internet)
            sport = rng.randint(32768, 60999)
            if rng.random() < 0.5:
                yield _line(rng, eni, host, peer, sport, rng.choice((443, 80, 123)), "ACCEPT")
            else:
                yield _line(rng, eni, peer, host, rng.choice((443, 80, 123)), sport, "ACCEPT")
        else:  # background probes on random ports, rejected
            yield _line(rng, eni, rng.choice(internet), rng.choice(a), rng.randint(1024, 65535),
                        rng.randint(1, 65535), "REJECT")


def port_scan(records: int, seed: int = 2, sources: int = 2000) -> Iterator[str]:
    """Every port probed, from ``sources`` internet addresses, all rejected."""
    rng = random.Random(seed)
    a = _hosts(rng, "10.0", 300)
    scanners = [f"198.51.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(sources)]
    enis = [f"eni-{rng.getrandbits(68):017x}" for _ in range(300)]
    for i in range(records):
        port = i % 65535 + 1
        yield _line(rng, enis[i % len(enis)], scanners[(i * 7919) % sources], rng.choice(a),
                    rng.randint(32768, 60999), port, "REJECT")


KINDS = {"normal": normal, "port-scan": port_scan}


def write(path: Path, kind: str, records: int, *, header: bool = False) -> Path:
    """Write ``records`` lines of ``kind`` (gzip if the name ends in .gz); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.suffix == ".gz" else open
    partial = path.with_name(path.name + ".partial")  # an interrupted run leaves no short file behind
    with opener(partial, "wt") as handle:
        if header:
            handle.write(V2_HEADER + "\n")
        for line in KINDS[kind](records):
            handle.write(line + "\n")
    partial.replace(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("records", type=int)
    parser.add_argument("path", type=Path)
    args = parser.parse_args()
    print(write(args.path, args.kind, args.records))


if __name__ == "__main__":
    main()
