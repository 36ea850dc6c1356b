"""Permanent failures: errors a retry cannot fix fail the step at once, with their cause.

The hourly and rollout steps retry transient failures (throttling, deadlines, an endpoint
restarting). A stack never rolled out, an invalid config, a lost embedded state, an alert
topic that is gone or refuses the role: a retry reads the same answer, and after 100-120 s
"Exceeded max_retries" would hide the cause. ``permanent_failures`` turns these into
``dg.Failure(allow_retries=False)`` whose description starts with the cause and its fix.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import dagster as dg


def _permanent_types() -> tuple[type[BaseException], ...]:
    # Imported when a step fails, never when the code location loads.
    from infra.config import InvalidStackConfig
    from infra.emulation.errors import ReplacementNotSupported, UnsupportedResourceType
    from infra.stack_files import StackNotRolledOut
    from vpcpeer_orchestration.local.server import EmbeddedStateLost
    from vpcpeer_orchestration.local.traffic_model import FlowLogEmulatorError

    return (StackNotRolledOut, InvalidStackConfig, EmbeddedStateLost, FlowLogEmulatorError, ReplacementNotSupported,
            UnsupportedResourceType)


def as_failure(exc: BaseException) -> dg.Failure | None:
    """The permanent failure ``exc`` is, or None when a retry may help."""
    from lambda_pkg.errors import PublishError

    if isinstance(exc, _permanent_types()) or (isinstance(exc, PublishError) and exc.permanent):
        return dg.Failure(description=f"{type(exc).__name__}: {exc}", allow_retries=False)
    return None


def permanent_failures(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate an asset function (plain or generator) so permanent errors are not retried."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                failure = as_failure(exc)
                if failure is None:
                    raise
                raise failure from exc
        return generator

    @functools.wraps(fn)
    def plain(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            failure = as_failure(exc)
            if failure is None:
                raise
            raise failure from exc
    return plain
