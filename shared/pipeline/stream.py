"""Stream (seed: "DynamoDB to EventBridge"): events-table stream -> the EventBridge bus.

Only INSERTs are events (an item is written once; MODIFY/REMOVE are ignored). Each becomes
one EventBridge entry: Source = EVENT_SOURCE, DetailType = the event type, Detail = the
envelope JSON. The bus's rules send it on to SQS queues (email, to-childsys, to-reqsys).

Failed entries are returned as batchItemFailures by the record's SequenceNumber: Lambda
(and the local runner) checkpoint before the first failed record and retry from there.
A record that cannot be rebuilt into an envelope is logged and skipped: it would block
the shard forever, and the event itself stays in the table.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from shared.pipeline import settings
from shared.platform.aws import client
from shared.platform.batch import validation_summary
from shared.platform.events import Envelope

log = logging.getLogger(__name__)
PUT_EVENTS_LIMIT = 10
EVENT_SOURCE = "daycare.waitlist"  # the `source` of every event on the bus; the rules match on it


def _plain(value: Any) -> Any:
    """DynamoDB's Decimals back to JSON numbers."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_plain(v) for v in value]
    return value


def envelope_from_image(image: dict) -> Envelope:
    """The envelope an events-table item (a stream NewImage, DynamoDB JSON) was made from."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    item = _plain({key: deserializer.deserialize(value) for key, value in image.items()})
    application = item.get("application")
    if isinstance(application, str):  # tolerate items that stored it as JSON text
        application = json.loads(application)
    return Envelope(event_id=item["event_id"], type=item["type"], occurred_at=item["occurred_at"],
                    version=item.get("version", 1), application=application, actor=item.get("actor"))


def handler(event: dict, context: Any = None) -> dict:
    bus = settings().resource("EVENT_BUS_NAME")
    pending: list[tuple[str, Envelope]] = []  # (sequence number, envelope)
    for record in event.get("Records") or []:
        if record.get("eventName") != "INSERT":
            continue
        data = record.get("dynamodb") or {}
        sequence = data.get("SequenceNumber", "")
        try:
            pending.append((sequence, envelope_from_image(data["NewImage"])))
        except (KeyError, TypeError, ValueError) as err:
            detail = validation_summary(err) if isinstance(err, ValidationError) else type(err).__name__
            log.error("stream record %s is not an event item (%s); skipped, it stays in the table", sequence, detail)

    failed: list[str] = []
    events = client("events")
    for start in range(0, len(pending), PUT_EVENTS_LIMIT):
        chunk = pending[start:start + PUT_EVENTS_LIMIT]
        entries = [{"Source": EVENT_SOURCE, "DetailType": str(env.type), "Detail": env.to_json(), "EventBusName": bus}
                   for _, env in chunk]
        try:
            result = events.put_events(Entries=entries)["Entries"]
        except Exception:
            log.exception("put_events failed for %d events; they will be retried", len(chunk))
            failed.extend(sequence for sequence, _ in chunk)
            continue
        for (sequence, env), entry in zip(chunk, result, strict=False):
            if entry.get("ErrorCode") or not entry.get("EventId"):
                log.warning("event %s (%s) refused by EventBridge: %s %s; it will be retried", env.event_id,
                            env.type, entry.get("ErrorCode"), entry.get("ErrorMessage"))
                failed.append(sequence)
            else:
                log.info("event %s (%s) for %s published", env.event_id, env.type, env.request_id)
        failed.extend(sequence for sequence, _ in chunk[len(result):])  # fewer results than entries: retry
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in failed]}
