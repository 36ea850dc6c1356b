"""Fixtures for integration tests that need the embedded AWS."""

from __future__ import annotations

import os

import pytest

from vpcpeer_orchestration.local.server import LocalAws, _alive


@pytest.fixture(scope="module")
def local_aws(tmp_path_factory):
    """A private embedded AWS for this module, stopped (and checked gone) afterwards.

    VPCPEER_HOME points at it for the module, so CLI subprocesses find the same one.
    """
    home = tmp_path_factory.mktemp("embedded-aws")
    saved = {k: os.environ.get(k) for k in ("VPCPEER_HOME", "VPCPEER_AWS_ENDPOINT")}
    os.environ["VPCPEER_HOME"] = str(home)
    os.environ.pop("VPCPEER_AWS_ENDPOINT", None)
    aws = LocalAws(home)
    record = aws.start()
    try:
        yield aws
    finally:
        aws.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert not _alive(record.pid), "the moto server outlived the tests"


@pytest.fixture(scope="module")
def inprocess_moto():
    """A moto server thread in this process for the module, on a free port; its URL.

    moto's in-process backends are global to the test process (``mock_aws`` tests and other
    in-process servers use them too), so they are reset before and after the module.
    """
    import urllib.request

    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"

    def reset() -> None:
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30)

    reset()
    try:
        yield endpoint
    finally:
        reset()
        server.stop()
