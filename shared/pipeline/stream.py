"""Stream (seed: "DynamoDB to EventBridge"): events-table stream -> the EventBridge bus.

Only INSERTs are events (an item is written once; MODIFY/REMOVE are ignored). Each becomes
one EventBridge entry: Source = EVENT_SOURCE, DetailType = the event type, Detail = the
envelope JSON. The bus's rules send it on to SQS queues (email, to-childsys, to-reqsys).

Failed entries are returned as batchItemFailures by the record's SequenceNumber: Lambda
(and the local runner) checkpoint before the first failed record and retry from there, a
bounded number of times; then the batch's description goes to the stream's on-failure
queue (`<events table>-stream-dlq`), where the monitor shows it and replays its events from
the table (shared.pipeline.monitor.replay_stream_failures).
A record that cannot be rebuilt into an envelope is logged and skipped: it would block
the shard forever, and the event itself stays in the table.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from pydantic import ValidationError

from shared.pipeline import settings
from shared.platform.aws import client, plain_numbers
from shared.platform.batch import validation_summary
from shared.platform.events import Envelope
from shared.platform.logs import bind, emit_metrics, fields, setup

log = logging.getLogger(__name__)
PUT_EVENTS_LIMIT = 10
EVENT_SOURCE = "daycare.waitlist"  # the `source` of every event on the bus; the rules match on it
# The stream mapping's bounds (shared.tools.provision sets them in AWS, shared.tools.runner plays them locally):
# a failing batch is split in two (bisect) and retried this many times, never past the record age; then
# its description goes to the on-failure queue, instead of blocking the shard or vanishing.
MAXIMUM_RETRY_ATTEMPTS = 10
MAXIMUM_RECORD_AGE_SECONDS = 6 * 3600
FAILURE_QUEUE_SUFFIX = "-stream-dlq"


def failure_queue_name(table: str) -> str:
    """The on-failure destination of a table's stream mapping: an SQS queue named after the table."""
    return f"{table}{FAILURE_QUEUE_SUFFIX}"




def envelope_from_image(image: dict) -> Envelope:
    """The envelope an events-table item (a stream NewImage, DynamoDB JSON) was made from."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    item = plain_numbers({key: deserializer.deserialize(value) for key, value in image.items()})
    application = item.get("application")
    if isinstance(application, str):  # tolerate items that stored it as JSON text
        application = json.loads(application)
    return Envelope(event_id=item["event_id"], type=item["type"], occurred_at=item["occurred_at"],
                    version=item.get("version", 1), application=application, actor=item.get("actor"))


def publish(pending: list[tuple[str, Envelope]], bus: str) -> list[str]:
    """Put the envelopes on the bus, ten per call; returns the keys (first of each pair) of those refused."""
    failed: list[str] = []
    events = client("events")
    for start in range(0, len(pending), PUT_EVENTS_LIMIT):
        chunk = pending[start:start + PUT_EVENTS_LIMIT]
        entries = [{"Source": EVENT_SOURCE, "DetailType": str(env.type), "Detail": env.to_json(), "EventBusName": bus}
                   for _, env in chunk]
        try:
            result = events.put_events(Entries=entries)["Entries"]
        except Exception as err:
            log.warning("put_events failed for %d events; they will be retried: %s", len(chunk), err)
            failed.extend(key for key, _ in chunk)
            continue
        for (key, env), entry in zip(chunk, result, strict=False):
            if entry.get("ErrorCode") or not entry.get("EventId"):
                log.warning("event refused by EventBridge: %s %s; it will be retried", entry.get("ErrorCode"),
                            entry.get("ErrorMessage"), extra=fields(env))
                failed.append(key)
            else:
                log.info("event published to the bus", extra=fields(env))
        failed.extend(key for key, _ in chunk[len(result):])  # fewer results than entries: retry
    return failed


def handler(event: dict, context: Any = None) -> dict:
    setup("pipeline")
    bus = settings().resource("EVENT_BUS_NAME")
    pending: list[tuple[str, Envelope]] = []  # (sequence number, envelope)
    records = event.get("Records") or []
    oldest = None
    for record in records:
        data = record.get("dynamodb") or {}
        created = data.get("ApproximateCreationDateTime")
        if isinstance(created, int | float) and (oldest is None or created < oldest):
            oldest = created
        if record.get("eventName") != "INSERT":
            continue
        sequence = data.get("SequenceNumber", "")
        try:
            pending.append((sequence, envelope_from_image(data["NewImage"])))
        except (KeyError, TypeError, ValueError) as err:
            detail = validation_summary(err) if isinstance(err, ValidationError) else type(err).__name__
            log.error("stream record %s is not an event item (%s); skipped, it stays in the table", sequence, detail)

    with bind(hop="stream", aws_request_id=getattr(context, "aws_request_id", None)):
        failed = publish(pending, bus)
    emit_metrics("stream", processed=len(records) - len(failed), failed=len(failed),
                 oldest_age_ms=(time.time() - oldest) * 1000 if oldest else None)
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in failed]}
