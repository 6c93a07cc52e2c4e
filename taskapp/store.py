"""The one DynamoDB table of taskapp (TASKS_TABLE), and the settings its code reads.

Key spaces (single-table design; every key attribute is a string). Each module documents its
own access patterns next to its code; this is the map:

    item                 pk                 sk                      index keys (all projections ALL)
    task                 TASK#<task_id>     TASK                    gsi1-gsi4: OWNER#/ASSIGNEE#<sub> (services.py)
    attachment           TASK#<task_id>     FILE#<file_id>          -                              (files.py)
    profile              USER#<sub>         PROFILE                 -                              (profiles.py)
    notification         USER#<sub>         NOTE#<note_id>          gsi1: UNREAD#<sub> while unread (notifications.py)
    a job's bell notice  USER#<sub>         JOBNOTE#<job_id>        -  (the job has had its one notice)
    job                  JOB#<job_id>       JOB                     gsi3: JOBS#<sub>, gsi2: JOBKIND#<sub>#<kind>
                                                                    (jobs.py)

A task and its attachments share a partition, so one Query finds a task's files and one
transaction deletes them with it. A user's profile, unread count and notifications share one
partition: the bell on every page is one GetItem of the profile. The sparse gsi1/gsi3 keys
reuse the task indexes under their own prefixes; no key ever starts with another space's prefix.

Code here runs in a request (settings from the Flask app) or in an event handler (settings
loaded once per invocation through `handler_settings`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from flask import current_app, has_app_context

from shared.platform.aws import client, plain_numbers
from shared.platform.errors import ValidationFailed
from shared.platform.settings import Settings

_handler_settings: ContextVar[Settings | None] = ContextVar("taskapp_handler_settings", default=None)


def settings() -> Settings:
    if has_app_context():
        return current_app.config["SETTINGS"]
    loaded = _handler_settings.get()
    return loaded if loaded is not None else Settings.load("taskapp")


@contextmanager
def handler_settings() -> Iterator[Settings]:
    """For event handlers: the Lambda environment (locally the outputs file) read once per invocation."""
    token = _handler_settings.set(Settings.load("taskapp"))
    try:
        yield _handler_settings.get()
    finally:
        _handler_settings.reset(token)


def table() -> str:
    return settings().resource("TASKS_TABLE")


def ddb():
    return client("dynamodb")


def _numbers(value: Any) -> Any:
    """Floats as Decimal (DynamoDB's numbers; boto3 refuses floats), inside dicts and lists too."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_numbers(v) for v in value]
    return value


def dump(item: dict) -> dict:
    """A plain dict as DynamoDB attribute values (None values are left out; floats become numbers)."""
    from boto3.dynamodb.types import TypeSerializer

    ser = TypeSerializer()
    return {k: ser.serialize(_numbers(v)) for k, v in item.items() if v is not None}




def load(raw: dict) -> dict:
    """DynamoDB attribute values as a plain dict (numbers as int or float, never Decimal)."""
    from boto3.dynamodb.types import TypeDeserializer

    de = TypeDeserializer()
    return {k: plain_numbers(de.deserialize(v)) for k, v in raw.items()}


def key(pk: str, sk: str) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def get(pk: str, sk: str, consistent: bool = True) -> dict | None:
    raw = ddb().get_item(TableName=table(), Key=key(pk, sk), ConsistentRead=consistent).get("Item")
    return load(raw) if raw else None


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def without_keys(item: dict) -> dict:
    """An item as callers see it: no storage keys."""
    return {k: v for k, v in item.items() if k not in ("pk", "sk") and not k.startswith("gsi")}


# --- cursors: opaque to callers, checked on the way back ------------------------------------------


MAX_CURSOR = 4096  # characters: a few keys of ours in base64 are far shorter


def is_start_key(start, names: set[str]) -> bool:
    """Whether `start` is a DynamoDB key made of exactly the attributes `names`, each a string DynamoDB
    takes as a key (a whole check: a key DynamoDB would refuse must be a 400 here, never its error)."""
    return isinstance(start, dict) and set(start) == names and all(
        isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) and 0 < len(v["S"].encode()) <= 1024
        for v in start.values())


def encode_cursor(state: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict:
    """The state inside a cursor; 400 naming `cursor` when it is not one of ours."""
    state = None
    if len(cursor) <= MAX_CURSOR:
        try:
            state = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
            state = None
    if not isinstance(state, dict):
        raise ValidationFailed({"cursor": "Not a cursor from this list"})
    return state


def query_page(limit: int, cursor: str | None, **kwargs) -> tuple[list[dict], str | None]:
    """One page of a Query (up to `limit` plain items) and the cursor of the next page, or None.

    The cursor is DynamoDB's LastEvaluatedKey; one that is not a key of this query's partition
    (`:pk` in ExpressionAttributeValues) is refused with 400 naming `cursor`."""
    if cursor:
        start = decode_cursor(cursor)
        index = kwargs.get("IndexName")
        partition = f"{index}pk" if index else "pk"
        names = {"pk", "sk", *((f"{index}pk", f"{index}sk") if index else ())}
        if not is_start_key(start, names) or start[partition] != kwargs["ExpressionAttributeValues"][":pk"]:
            raise ValidationFailed({"cursor": "Not a cursor from this list"})  # edited, or from another list
        kwargs["ExclusiveStartKey"] = start
    page = ddb().query(TableName=table(), Limit=limit, **kwargs)
    last = page.get("LastEvaluatedKey")
    return [load(raw) for raw in page["Items"]], encode_cursor(last) if last else None

