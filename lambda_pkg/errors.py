"""Typed errors of the analyzer. Every failure raises; none becomes "0 traffic"."""

from __future__ import annotations


class AnalyzerError(Exception):
    """Base class: the analysis of a window failed and nothing was published for it."""


class InvalidAnalyzerConfig(AnalyzerError, ValueError):
    """An environment variable is missing or malformed; the message names it and the fix."""

    def __init__(self, variable: str, problem: str, fix: str) -> None:
        self.variable = variable
        super().__init__(f"{variable}: {problem}. {fix}")


class InvalidEvent(AnalyzerError, ValueError):
    """The invocation event is malformed: not an object, or a known key with a wrong type."""


class InvalidWindow(InvalidEvent):
    """The event's window is malformed (not ISO 8601, not UTC-aware, empty or reversed)."""


class QueryFailedError(AnalyzerError):
    """A log query or read failed (denied, missing group, Failed/Cancelled/Unknown status)."""


class QueryTimeoutError(QueryFailedError):
    """A query did not complete before the deadline (it was stopped)."""


class ThrottledError(QueryFailedError):
    """AWS kept throttling past the retry budget."""


class InconsistentResultError(QueryFailedError):
    """Query results contradict themselves (e.g. a CIDR test disagrees with the exact one)."""


class PublishError(AnalyzerError):
    """Metrics or alerts could not be published. ``permanent``: the target refuses for good
    (topic gone, access denied, key disabled); a retry would get the same answer."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class LedgerError(PublishError):
    """The delivery ledger could not be read or written: nothing is published without it."""


class TalkerStateUnavailable(AnalyzerError):
    """The state of known talkers (lambda_pkg/talkers.py) could not be read or written: an hour
    is never judged as if nothing were known (every host new) nor learned into nothing."""


class WindowNotSettled(InvalidWindow):
    """The window ends later than now minus the settle lag: its flow logs may still arrive."""


class HistoryUnavailable(QueryFailedError):
    """The published metrics a learned baseline reads could not be read: the hour is not judged
    against the constant instead, silently."""
