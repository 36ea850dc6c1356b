"""AWS calls of the engines, with error codes turned into typed errors.

Retrying is botocore's job (``lambda_pkg.clients``: standard mode, bounded jittered
backoff for throttling and transient errors); by the time an error reaches this module the
client has used its attempts, so nothing here loops again.
"""

from __future__ import annotations

from collections.abc import Callable
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


def attempts_made(exc: ClientError) -> int:
    """Calls the client made, retries included (botocore records them in the response)."""
    return int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)) + 1


def call(what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    """Call ``fn(**kwargs)`` once; ``what`` names the operation in error messages."""
    try:
        return fn(**kwargs)
    except ClientError as exc:
        code = error_code(exc)
        if code in THROTTLING_CODES:
            raise ThrottledError(f"{what}: still throttled ({code}) after {attempts_made(exc)} attempt(s)") from exc
        message = exc.response.get("Error", {}).get("Message", str(exc))
        hint = _HINTS.get(code, "see the error code in the AWS documentation")
        raise QueryFailedError(f"{what} failed: {code}: {message} ({hint})") from exc
    except BotoCoreError as exc:
        raise QueryFailedError(f"{what} failed: {exc}") from exc
