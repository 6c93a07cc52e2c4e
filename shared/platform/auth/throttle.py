"""Sign-in throttling in the app: too many wrong passwords for one account from one address.

MAX_FAILURES failed sign-ins (login form or POST /auth/token) within WINDOW_SECONDS, for one
(email, client address) pair, lock that pair for LOCK_SECONDS: every attempt then answers 429, the
right password too, without asking Cognito. The counts live in SESSIONS_TABLE (DynamoDB, with a TTL),
so every Lambda instance sees the same ones. In AWS a WAF rate-based rule in front of API Gateway
(shared/tools/provision.py) also limits requests per address, and Cognito has its own lockout;
this is the limit that also holds locally and is tested.
"""

from __future__ import annotations

import hashlib
import time

from flask import current_app, request

from shared.platform.aws import client

MAX_FAILURES = 10
WINDOW_SECONDS = 300
LOCK_SECONDS = 900


def _table() -> str:
    return current_app.config["SETTINGS"].resource("SESSIONS_TABLE")


def _key(email: str) -> dict:
    address = request.remote_addr or ""
    digest = hashlib.sha256(f"{email.strip().lower()}|{address}".encode()).hexdigest()
    return {"id": {"S": f"signin#{digest}"}}


def locked(email: str, now: float | None = None) -> bool:
    """Whether sign-in for `email` from this address is locked now."""
    now = now if now is not None else time.time()
    item = client("dynamodb").get_item(TableName=_table(), Key=_key(email), ConsistentRead=True).get("Item") or {}
    return int(item.get("locked_until", {}).get("N", "0")) > now


def failed(email: str, now: float | None = None) -> bool:
    """Count a failed sign-in; True when it locks the pair."""
    now = int(now if now is not None else time.time())
    ddb = client("dynamodb")
    key = _key(email)
    try:  # a new window when the last one is over
        ddb.put_item(TableName=_table(), Item={**key, "failures": {"N": "0"}, "window_until": {
            "N": str(now + WINDOW_SECONDS)}, "expires": {"N": str(now + WINDOW_SECONDS + LOCK_SECONDS)}},
            ConditionExpression="attribute_not_exists(id) OR window_until < :now",
            ExpressionAttributeValues={":now": {"N": str(now)}})
    except ddb.exceptions.ConditionalCheckFailedException:
        pass
    counted = ddb.update_item(TableName=_table(), Key=key, UpdateExpression="ADD failures :one",
                              ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="ALL_NEW")
    if int(counted["Attributes"]["failures"]["N"]) < MAX_FAILURES:
        return False
    ddb.update_item(TableName=_table(), Key=key, UpdateExpression="SET locked_until = :until, expires = :expires",
                    ExpressionAttributeValues={":until": {"N": str(now + LOCK_SECONDS)},
                                               ":expires": {"N": str(now + LOCK_SECONDS + WINDOW_SECONDS)}})
    return True


def succeeded(email: str) -> None:
    """A right password (when not locked) clears the count."""
    client("dynamodb").delete_item(TableName=_table(), Key=_key(email))
