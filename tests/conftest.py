"""Test fixtures: the moto server as the AWS emulator, reached through boto3 as in production."""

from __future__ import annotations

import os
import socket

import pytest

from shared import aws


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def aws_endpoint(tmp_path_factory):
    """A moto server for the whole test session, with the environment pointing at it."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "ap-northeast-2",
        "AWS_DEFAULT_REGION": "ap-northeast-2",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "STAGE": "test",
        "AWS_OUTPUTS_FILE": str(tmp_path_factory.mktemp("aws") / "aws-test.json"),
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.delenv("AWS_PROFILE", raising=False)
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
        aws.clear_cache()
        yield endpoint
    server.stop()
    aws.clear_cache()


@pytest.fixture(scope="session")
def resources(aws_endpoint) -> dict[str, str]:
    """Every resource of the system, provisioned once on the emulator; the outputs."""
    from shared import provision

    return provision.apply("test").outputs


@pytest.fixture
def sqs(aws_endpoint):
    return aws.client("sqs")


def pytest_report_header(config):
    url = os.environ.get("TEST_MYSQL_URL")
    return f"MySQL tests: {'on ' + url.split('@')[-1] if url else 'off (TEST_MYSQL_URL unset)'}"
