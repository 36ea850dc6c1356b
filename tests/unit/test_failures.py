"""Which failures are permanent (a step fails at once) and which a retry may fix."""

from __future__ import annotations

import boto3
import dagster as dg
import pytest
from botocore.stub import Stubber

from infra.config import InvalidStackConfig
from infra.stack_files import StackNotRolledOut
from lambda_pkg.delivery import Delivery
from lambda_pkg.errors import PublishError, ThrottledError
from lambda_pkg.publish import publish_message
from vpcpeer_orchestration.assets.failures import as_failure, permanent_failures
from vpcpeer_orchestration.local.traffic_model import FlowLogEmulatorError

TOPIC = "arn:aws:sns:us-east-1:123456789012:alerts"


@pytest.mark.parametrize("exc", [StackNotRolledOut("dev was never rolled out"),
                                 InvalidStackConfig("retention_days", "2 is not allowed", "Use 1."),
                                 FlowLogEmulatorError("no rollout yet"),
                                 PublishError("topic gone", permanent=True)])
def test_permanent_errors_become_failures_without_retries(exc: Exception) -> None:
    failure = as_failure(exc)
    assert isinstance(failure, dg.Failure) and failure.allow_retries is False
    assert failure.description.startswith(type(exc).__name__) and str(exc) in failure.description


@pytest.mark.parametrize("exc", [PublishError("503"), ThrottledError("slow down"), ConnectionError("restarting")])
def test_transient_errors_stay_retryable(exc: Exception) -> None:
    assert as_failure(exc) is None

    @permanent_failures
    def step() -> None:
        raise exc

    with pytest.raises(type(exc)):
        step()


def test_generators_are_wrapped_too() -> None:
    @permanent_failures
    def steps():
        yield 1
        raise StackNotRolledOut("never rolled out")

    with pytest.raises(dg.Failure, match="StackNotRolledOut: never rolled out"):
        list(steps())


@pytest.mark.parametrize(("code", "permanent"), [("NotFound", True), ("AuthorizationError", True),
                                                 ("KMSDisabled", True), ("InternalError", False),
                                                 ("Throttling", False)])
def test_sns_refusals_are_permanent_and_outages_are_not(code: str, permanent: bool) -> None:
    sns = boto3.client("sns", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(sns) as stub:
        stub.add_client_error("publish", service_error_code=code, http_status_code=400)
        with pytest.raises(PublishError) as caught:
            publish_message(sns, TOPIC, "subject", "body", {})
    assert caught.value.permanent is permanent


def test_a_delivery_is_permanent_only_when_every_failure_is() -> None:
    both = Delivery(failed={"a": "gone", "b": "503"}, permanent={"a"})
    with pytest.raises(PublishError) as caught:
        both.raise_for_failures()
    assert not caught.value.permanent
    gone = Delivery(failed={"a": "gone"}, permanent={"a"}).merge(Delivery())
    with pytest.raises(PublishError) as caught:
        gone.raise_for_failures()
    assert caught.value.permanent
