"""boto3 clients, created on first use and cached.

boto3 is imported inside `client()` so that importing an app costs nothing until a
request needs AWS (Lambda cold start). boto3 honours AWS_ENDPOINT_URL itself, which
points every client at the emulator locally and is unset in AWS.
"""

from __future__ import annotations

import os
import threading
from functools import cache
from typing import Any

_lock = threading.Lock()
MAX_RECEIVES = 5  # deliveries of an SQS message before it moves to its dead-letter queue (every queue's redrive)


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "ap-northeast-2"


@cache
def _client(service: str, region_name: str, endpoint_url: str | None):
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=10)
    with _lock:  # boto3's default session is not thread-safe while creating clients
        return boto3.session.Session().client(service, region_name=region_name, config=config)


def emulator_environment(endpoint: str) -> dict[str, str]:
    """The variables that point boto3 at the emulator as if it were AWS: any credentials do, and
    DynamoDB Streams there need the account-id endpoint mode off (DESIGN.md section 4)."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_REGION": "ap-northeast-2", "AWS_DEFAULT_REGION": "ap-northeast-2",
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled"}


def client(service: str):
    """A cached client for `service`; a new endpoint (tests) gets a new client."""
    return _client(service, region(), os.environ.get("AWS_ENDPOINT_URL"))


def clear_cache() -> None:
    _client.cache_clear()


def plain_numbers(value: Any) -> Any:
    """What boto3 reads from DynamoDB, with its Decimals back as JSON numbers (int when whole) and sets as lists."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: plain_numbers(item) for key, item in value.items()}
    if isinstance(value, list | set | tuple):
        return [plain_numbers(item) for item in value]
    return value
