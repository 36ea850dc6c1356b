"""Analysis windows: half-open ``[start, end)`` intervals in timezone-aware UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from lambda_pkg.errors import InvalidWindow, WindowNotSettled

MAX_WINDOW = timedelta(hours=24)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Window:
    """A half-open interval of event time, ``start <= t < end``, both aware UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value.tzinfo is None or value.utcoffset() is None:
                raise InvalidWindow(f"window {name} {value.isoformat()} has no timezone; give UTC, e.g. 2026-01-01T10:00:00Z")
        if self.end <= self.start:
            raise InvalidWindow(f"window end {self.end.isoformat()} is not after start {self.start.isoformat()}")
        if self.end - self.start > MAX_WINDOW:
            raise InvalidWindow(f"window of {self.end - self.start} exceeds {MAX_WINDOW}; analyse hours separately")

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)

    @property
    def seconds(self) -> tuple[int, int]:
        """``[lo, hi)`` of whole epoch seconds inside the window (a flow record's ``start`` is one)."""
        return -(-self.start_ms // 1000), -(-self.end_ms // 1000)

    def contains_ms(self, timestamp_ms: int) -> bool:
        return self.start_ms <= timestamp_ms < self.end_ms

    def to_json(self) -> dict[str, str]:
        return {"start": _iso(self.start), "end": _iso(self.end)}


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_instant(text: Any, name: str) -> datetime:
    """Parse an ISO 8601 instant with an explicit offset (``Z`` allowed) into aware UTC."""
    if not isinstance(text, str):
        raise InvalidWindow(f"window {name} must be an ISO 8601 string, got {text!r}")
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidWindow(f"window {name} {text!r} is not ISO 8601 (e.g. 2026-01-01T10:00:00Z)") from None
    if value.tzinfo is None:
        raise InvalidWindow(f"window {name} {text!r} has no timezone; add Z for UTC")
    return value.astimezone(timezone.utc)


def last_complete_hour(now: datetime, settle_lag: timedelta) -> Window:
    """The last whole UTC hour that ended at least ``settle_lag`` ago (flow logs arrive late)."""
    if now.tzinfo is None:
        raise InvalidWindow("now must be timezone-aware")
    settled = now.astimezone(timezone.utc) - settle_lag
    end = settled.replace(minute=0, second=0, microsecond=0)
    return Window(end - HOUR, end)


def window_for_event(event: Any, now: datetime, settle_lag: timedelta) -> Window:
    """``{}`` -> last complete hour; ``{"window": {"start", "end"}}`` -> that window."""
    if event is None:
        event = {}
    if not isinstance(event, dict):
        raise InvalidWindow(f"the event must be a JSON object, got {type(event).__name__}")
    spec = event.get("window")
    if spec is None:
        return last_complete_hour(now, settle_lag)
    if not isinstance(spec, dict) or "start" not in spec or "end" not in spec:
        raise InvalidWindow('event "window" must be {"start": ISO8601, "end": ISO8601}')
    window = Window(parse_instant(spec["start"], "start"), parse_instant(spec["end"], "end"))
    require_settled(window, now, settle_lag)
    return window


def require_settled(window: Window, now: datetime, settle_lag: timedelta) -> None:
    """Refuse a window whose flow logs may still arrive: it would report (and publish) too little."""
    settled = now.astimezone(timezone.utc) - settle_lag
    if window.end > settled:
        raise WindowNotSettled(
            f"window {window.to_json()['start']} .. {window.to_json()['end']} is not settled: flow logs arrive up to "
            f"{settle_lag.total_seconds() / 60:g} min late, so analyse it after "
            f"{_iso(window.end + settle_lag)} (the end plus the settle lag)")
