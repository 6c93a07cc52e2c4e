"""Browser sessions that end: each signed-in cookie names a record in SESSIONS_TABLE (DynamoDB).

The cookie (signed by SECRET_KEY) carries the claims and a random session id; the record, keyed by a
hash of that id, is what makes the cookie good. Signing out deletes the record, so a copy of the
cookie taken before no longer opens any page; the record also keeps the sign-in's Cognito refresh
token, which sign-out revokes. DynamoDB's TTL (`expires`, epoch seconds) clears records of sessions
nobody signed out of; until it runs (it may take a day), the expiry is checked here too.

A record found alive is trusted for ALIVE_SECONDS before it is read again (a round trip to DynamoDB on
every page was most of a fast page's time). Signing out in this process forgets it at once; a sign-out
served by another process (another Lambda instance) reaches a copy of the cookie here within ALIVE_SECONDS.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time

from flask import current_app

from shared.platform.aws import client

log = logging.getLogger(__name__)

# 10 s: a signed-out cookie stops working within ten seconds everywhere (at once where the sign-out ran),
# short next to the time a thief needs to use a copied cookie, while a staff member clicking through
# pages has the record read about once per ten pages instead of on each.
ALIVE_SECONDS = 10
_MAX_TRUSTED = 10_000  # records trusted at once in this process; beyond it, the stale ones are dropped
_trusted: dict[str, tuple[str, float]] = {}  # record id -> (its sub, time.monotonic() to read it again by)


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
    """Whether the session's record exists, is this user's and has not expired (read again at most every
    ALIVE_SECONDS)."""
    if not session_id or len(session_id) > 100:
        return False
    key = _key(session_id)
    record_id = key["id"]["S"]
    trusted_sub, until = _trusted.get(record_id, ("", 0.0))
    if trusted_sub == sub and until > time.monotonic():
        return True
    item = client("dynamodb").get_item(TableName=_table(), Key=key, ConsistentRead=True).get("Item")
    lasts = int(item["expires"]["N"]) - time.time() if item and item["sub"]["S"] == sub else 0
    if lasts <= 0:
        _trusted.pop(record_id, None)
        return False
    _trust(record_id, sub, min(ALIVE_SECONDS, lasts))
    return True


def _trust(record_id: str, sub: str, seconds: float) -> None:
    now = time.monotonic()
    if len(_trusted) >= _MAX_TRUSTED:
        for stale in [k for k, (_, until) in list(_trusted.items()) if until <= now]:  # list(): threads may add
            _trusted.pop(stale, None)
        if len(_trusted) >= _MAX_TRUSTED:
            _trusted.clear()
    _trusted[record_id] = (sub, now + seconds)


def end(session_id: str) -> None:
    """Remove the session's record and revoke the Cognito refresh token it kept. A failed revocation is
    logged, never shown: the record is gone already, which is what ends the browser session."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not session_id or len(session_id) > 100:
        return
    record = _key(session_id)
    _trusted.pop(record["id"]["S"], None)
    old = client("dynamodb").delete_item(TableName=_table(), Key=record, ReturnValues="ALL_OLD")
    refresh_token = (old.get("Attributes") or {}).get("refresh_token", {}).get("S")
    if not refresh_token:
        return
    try:
        client("cognito-idp").revoke_token(Token=refresh_token,
                                           ClientId=current_app.config["SETTINGS"].cognito_client_id)
    except (BotoCoreError, ClientError) as err:
        log.warning("cognito revoke_token failed: %s", type(err).__name__)
