"""Synthetic flow-log lines for tests and benchmarks (deterministic for a seed)."""

from __future__ import annotations

import random

ACCOUNT = "123456789012"


def v2_line(src: str, dst: str, sport: int, dport: int, *, proto: int = 6, packets: int = 10,
            nbytes: int = 840, action: str = "ACCEPT", status: str = "OK", start: int = 1_700_000_000,
            eni: str = "eni-0a1b2c3d") -> str:
    """A default-format (v2) record."""
    return f"2 {ACCOUNT} {eni} {src} {dst} {sport} {dport} {proto} {packets} {nbytes} {start} {start + 60} {action} {status}"


def nodata_line(status: str = "NODATA", start: int = 1_700_000_000) -> str:
    return f"2 {ACCOUNT} eni-0a1b2c3d - - - - - - - {start} {start + 60} - {status}"


def random_lines(n: int, seed: int = 7, *, malformed_every: int = 0) -> list[str]:
    """Plausible peering traffic: A<->B on allowed ports, replies, some internet and rejects."""
    rng = random.Random(seed)
    a_hosts = [f"10.0.{rng.choice((1, 2, 10, 11))}.{rng.randint(4, 250)}" for _ in range(60)]
    b_hosts = [f"10.1.{rng.choice((1, 2, 10, 11))}.{rng.randint(4, 250)}" for _ in range(60)]
    internet = [f"{rng.randint(11, 200)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(40)]
    lines = []
    for i in range(n):
        if malformed_every and i % malformed_every == 0:
            lines.append(rng.choice(["", "garbage", nodata_line(), nodata_line("SKIPDATA"), "2 x eni a b c d e f g h i j k"]))
            continue
        roll = rng.random()
        if roll < 0.45:
            src, dst, sport, dport = rng.choice(b_hosts), rng.choice(a_hosts), rng.randint(32768, 60999), rng.choice((443, 8080))
        elif roll < 0.80:
            src, dst, sport, dport = rng.choice(a_hosts), rng.choice(b_hosts), rng.randint(32768, 60999), rng.choice((443, 3306))
        elif roll < 0.95:
            src, dst, sport, dport = rng.choice(internet), rng.choice(a_hosts + b_hosts), 443, rng.randint(32768, 60999)
        else:
            src, dst, sport, dport = rng.choice(b_hosts), rng.choice(a_hosts), rng.randint(32768, 60999), rng.choice((22, 3389, 5432))
        action = "REJECT" if dport in (22, 3389, 5432) or rng.random() < 0.03 else "ACCEPT"
        lines.append(v2_line(src, dst, sport, dport, packets=rng.randint(1, 50), nbytes=rng.randint(40, 90000), action=action))
    return lines
