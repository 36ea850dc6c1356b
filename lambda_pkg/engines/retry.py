"""Bounded exponential backoff with full jitter for throttled AWS calls."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambda_pkg.errors import QueryFailedError, ThrottledError

THROTTLING_CODES = frozenset({
    "ThrottlingException", "Throttling", "LimitExceededException", "TooManyRequestsException",
    "RequestLimitExceeded", "ServiceUnavailableException", "ServiceUnavailable",
})

_HINTS = {
    "AccessDeniedException": "grant the analyzer role this action on the log group (see infra/policies.py)",
    "ResourceNotFoundException": "check the log group name in VPC_A_LOG_GROUP / VPC_B_LOG_GROUP",
    "InvalidParameterException": "the request was rejected; check the window and query",
    "MalformedQueryException": "the Logs Insights query text is invalid",
}


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "Unknown")


@dataclass
class RetryPolicy:
    """Retries throttling up to ``attempts`` calls in all; other errors raise at once."""

    attempts: int = 6
    base_seconds: float = 0.5
    cap_seconds: float = 8.0
    sleep: Callable[[float], None] | None = None  # None: time.sleep, looked up per call
    rng: Callable[[], float] = field(default=random.random)

    def call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        """Call ``fn(**kwargs)``; ``what`` names the operation in error messages."""
        for attempt in range(1, self.attempts + 1):
            try:
                return fn(**kwargs)
            except ClientError as exc:
                code = error_code(exc)
                if code in THROTTLING_CODES:
                    if attempt == self.attempts:
                        raise ThrottledError(f"{what}: still throttled ({code}) after {attempt} attempts") from exc
                    (self.sleep or time.sleep)(self.rng() * min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1)))
                    continue
                message = exc.response.get("Error", {}).get("Message", str(exc))
                hint = _HINTS.get(code, "see the error code in the AWS documentation")
                raise QueryFailedError(f"{what} failed: {code}: {message} ({hint})") from exc
            except BotoCoreError as exc:
                raise QueryFailedError(f"{what} failed: {exc}") from exc
        raise AssertionError("unreachable")
