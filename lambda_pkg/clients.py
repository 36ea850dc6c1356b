"""The one botocore configuration of every AWS client vpcpeer creates."""

from __future__ import annotations

from typing import Any

from lambda_pkg.constants import AWS_MAX_ATTEMPTS, AWS_RETRY_MODE

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 30


def client_config(max_attempts: int = AWS_MAX_ATTEMPTS) -> Any:
    """botocore Config: standard-mode retries (the only retry layer per call) and timeouts.

    ``total_max_attempts`` counts the first call; botocore's ``max_attempts`` key counts
    retries only (a budget of 5 there makes 6 calls).
    """
    from botocore.config import Config

    return Config(retries={"mode": AWS_RETRY_MODE, "total_max_attempts": max_attempts},
                  connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=READ_TIMEOUT_SECONDS)
