"""Browser sessions that end: each signed-in cookie names a record in SESSIONS_TABLE (DynamoDB).

The cookie (signed by SECRET_KEY) carries the claims and a random session id; the record, keyed by a
hash of that id, is what makes the cookie good. Signing out deletes the record, so a copy of the
cookie taken before no longer opens any page; the record also keeps the sign-in's Cognito refresh
token, which sign-out revokes. DynamoDB's TTL (`expires`, epoch seconds) clears records of sessions
nobody signed out of; until it runs (it may take a day), the expiry is checked here too.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time

from flask import current_app

from shared.platform.aws import client

log = logging.getLogger(__name__)


def _table() -> str:
    return current_app.config["SETTINGS"].resource("SESSIONS_TABLE")


def _key(session_id: str) -> dict:
    return {"id": {"S": "session#" + hashlib.sha256(session_id.encode()).hexdigest()}}


def create(sub: str, expires_at: int, refresh_token: str | None) -> str:
    """A new session's id (for the cookie); its record lasts until `expires_at` (epoch seconds)."""
    session_id = secrets.token_urlsafe(32)
    item = {**_key(session_id), "sub": {"S": sub}, "expires": {"N": str(int(expires_at))},
            "app": {"S": current_app.name}}
    if refresh_token:
        item["refresh_token"] = {"S": refresh_token}
    client("dynamodb").put_item(TableName=_table(), Item=item)
    return session_id


def alive(session_id: str, sub: str) -> bool:
    """Whether the session's record exists, is this user's and has not expired."""
    if not session_id or len(session_id) > 100:
        return False
    item = client("dynamodb").get_item(TableName=_table(), Key=_key(session_id), ConsistentRead=True).get("Item")
    return bool(item) and item["sub"]["S"] == sub and int(item["expires"]["N"]) > time.time()


def end(session_id: str) -> None:
    """Remove the session's record and revoke the Cognito refresh token it kept. A failed revocation is
    logged, never shown: the record is gone already, which is what ends the browser session."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not session_id or len(session_id) > 100:
        return
    old = client("dynamodb").delete_item(TableName=_table(), Key=_key(session_id), ReturnValues="ALL_OLD")
    refresh_token = (old.get("Attributes") or {}).get("refresh_token", {}).get("S")
    if not refresh_token:
        return
    try:
        client("cognito-idp").revoke_token(Token=refresh_token,
                                           ClientId=current_app.config["SETTINGS"].cognito_client_id)
    except (BotoCoreError, ClientError) as err:
        log.warning("cognito revoke_token failed: %s", type(err).__name__)
