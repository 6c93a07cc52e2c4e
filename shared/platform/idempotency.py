"""Effects once: claim a piece of work in DynamoDB before doing it, with the semantics of Powertools for
AWS Lambda's idempotency utility, in a few conditional writes (no extra dependency in the zips).

    with claim(table, f"email#{event_id}") as work:
        if work.done:                 # someone finished it before: do nothing
            return
        send(...)                     # leaving the block without an exception records it done
        work.data["message_id"] = ... # kept on the record

The record, keyed `id`, moves through two states:

    INPROGRESS  written with `attribute_not_exists(id)` (or over a record whose claim has lapsed): only one
                of two concurrent deliveries wins; the loser raises `InProgress`, which the batch reports as
                a failed record, so SQS hands it back later, when the winner has finished (then it is a no-op)
                or crashed (then its claim has lapsed after `in_progress_seconds`, and the work is retried).
    COMPLETED   written by the winner after the effect; kept until `expiration` (DynamoDB TTL), after which
                the same key may be claimed again (records are read as expired even before TTL deletes them).

A failure inside the block deletes the claim (only if it is still ours), so the retry need not wait for it to
lapse. Records written before this module (no `status`, only `sent_at`) count as COMPLETED.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from shared.platform.aws import client
from shared.platform.batch import RecordFailed

log = logging.getLogger(__name__)
IN_PROGRESS = "INPROGRESS"
COMPLETED = "COMPLETED"
DEFAULT_TTL = timedelta(days=7)
DEFAULT_IN_PROGRESS_SECONDS = 60  # longer than one handler call may take on one record


class InProgress(RecordFailed):
    """Another delivery of the same message holds the claim: retried later, never done twice."""


@dataclass
class Claim:
    table: str
    key: str
    token: str
    done: bool  # True when the work was completed before: nothing to do
    data: dict[str, str] = field(default_factory=dict)
    ttl: timedelta = DEFAULT_TTL

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self.done:
            return False
        if exc_type is None:
            complete(self)
        else:
            release(self)
        return False


def _key(key: str) -> dict:
    return {"id": {"S": key}}


def claim(table: str, key: str, *, in_progress_seconds: int = DEFAULT_IN_PROGRESS_SECONDS,
          ttl: timedelta = DEFAULT_TTL) -> Claim:
    """Claim `key` for this caller; returns a Claim (`done` if completed before) or raises InProgress."""
    now = int(time.time())
    token = uuid.uuid4().hex
    dynamodb = client("dynamodb")
    try:
        dynamodb.put_item(
            TableName=table,
            Item={**_key(key), "status": {"S": IN_PROGRESS}, "token": {"S": token},
                  "in_progress_expiry": {"N": str(now + in_progress_seconds)},
                  "expiration": {"N": str(now + int(ttl.total_seconds()))}},
            ConditionExpression=("attribute_not_exists(id) OR expiration < :now"
                                 " OR (#status = :in_progress AND in_progress_expiry < :now)"),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":now": {"N": str(now)}, ":in_progress": {"S": IN_PROGRESS}},
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        current = dynamodb.get_item(TableName=table, Key=_key(key), ConsistentRead=True).get("Item") or {}
        status = current.get("status", {}).get("S")
        if status == IN_PROGRESS:
            raise InProgress(f"{key} is being handled by another delivery; retried later") from None
        if not current:  # deleted between the two calls (a released claim): the retry will claim it
            raise InProgress(f"{key} was released meanwhile; retried later") from None
        return Claim(table, key, token, done=True, ttl=ttl)
    return Claim(table, key, token, done=False, ttl=ttl)


def complete(work: Claim) -> None:
    """Record the work done (only if the claim is still ours; if it lapsed and was retaken, the other
    delivery will record it)."""
    values = {":done": {"S": COMPLETED}, ":token": {"S": work.token},
              ":expiration": {"N": str(int(time.time() + work.ttl.total_seconds()))}}
    sets = ["#status = :done", "expiration = :expiration"]
    for i, (_name, value) in enumerate(sorted(work.data.items())):
        sets.append(f"#d{i} = :d{i}")
        values[f":d{i}"] = {"S": str(value)}
    dynamodb = client("dynamodb")
    try:
        dynamodb.update_item(
            TableName=work.table, Key=_key(work.key), UpdateExpression="SET " + ", ".join(sets)
            + " REMOVE in_progress_expiry", ConditionExpression="#token = :token",
            ExpressionAttributeNames={"#status": "status", "#token": "token",
                                      **{f"#d{i}": name for i, name in enumerate(sorted(work.data))}},
            ExpressionAttributeValues=values)
    except dynamodb.exceptions.ConditionalCheckFailedException:
        pass


def release(work: Claim) -> None:
    """Give the claim back after a failure, so a retry need not wait for it to lapse."""
    dynamodb = client("dynamodb")
    try:
        dynamodb.delete_item(TableName=work.table, Key=_key(work.key), ConditionExpression="#token = :token",
                             ExpressionAttributeNames={"#token": "token"},
                             ExpressionAttributeValues={":token": {"S": work.token}})
    except dynamodb.exceptions.ConditionalCheckFailedException:
        pass
    except Exception as err:  # it lapses by itself
        log.warning("could not release the claim on %s (it lapses by itself): %s", work.key, err)


def record_status(table: str, key: str) -> dict[str, Any] | None:
    """The record of `key` (plain strings), for tests and the monitor."""
    item = client("dynamodb").get_item(TableName=table, Key=_key(key), ConsistentRead=True).get("Item")
    return {name: next(iter(value.values())) for name, value in item.items()} if item else None
