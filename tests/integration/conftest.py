"""Fixtures for integration tests that need the embedded AWS."""

from __future__ import annotations

import os

import pytest

from vpcpeer_orchestration.local import server


@pytest.fixture(scope="module")
def local_aws(tmp_path_factory):
    """A private embedded AWS for this module, stopped (and checked gone) afterwards."""
    home = tmp_path_factory.mktemp("vpcpeer-home")
    saved = {k: os.environ.get(k) for k in ("VPCPEER_HOME", "VPCPEER_AWS_ENDPOINT")}
    os.environ["VPCPEER_HOME"] = str(home)
    os.environ.pop("VPCPEER_AWS_ENDPOINT", None)
    record = server.start()
    try:
        yield record
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert not server._alive(record.pid), "the moto server outlived the tests"
