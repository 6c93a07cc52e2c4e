"""Ingest (seed: "SQS To DynamoDB"): integrated-events queue -> the DynamoDB events table.

Item: request_id (partition key), event_id (sort key), type, version, occurred_at (ISO 8601),
application (a DynamoDB map: queryable in the console, numbers as Number), actor (when known), ingested_at.
The put is conditional on the event being new, so a redelivered or duplicated message has
no effect: the table's stream then sees one INSERT per event, whatever SQS did.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shared.pipeline import envelope_in, settings
from shared.platform.aws import client
from shared.platform.batch import MalformedMessage, process_sqs_batch
from shared.platform.events import Envelope
from shared.platform.logs import fields, setup

log = logging.getLogger(__name__)


def parse(body: str) -> Envelope:
    """The envelope in an SQS body, or MalformedMessage saying why (without the content)."""
    envelope = envelope_in(body)
    if not envelope.request_id:
        raise MalformedMessage(f"event {envelope.event_id}: application has no child_id/nursery_id")
    return envelope


def to_item(envelope: Envelope) -> dict[str, Any]:
    """The events-table item for an envelope (plain Python; the resource-free serializer below types it)."""
    # DynamoDB numbers must be Decimal; a JSON round trip also drops anything not JSON-shaped
    application = json.loads(json.dumps(envelope.application), parse_float=Decimal)
    item = {
        "request_id": envelope.request_id,
        "event_id": envelope.event_id,
        "type": str(envelope.type),
        "version": envelope.version,
        "occurred_at": envelope.occurred_at.isoformat(),
        "application": application,
        "ingested_at": datetime.now(UTC).isoformat(),
    }
    if envelope.actor:
        item["actor"] = envelope.actor
    return item


def store(envelope: Envelope, table: str) -> bool:
    """Put the event unless it is already there; True if it was new."""
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    item = {key: serializer.serialize(value) for key, value in to_item(envelope).items()}
    dynamodb = client("dynamodb")
    try:
        dynamodb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(event_id)")
    except dynamodb.exceptions.ConditionalCheckFailedException:
        log.info("event already ingested; duplicate ignored", extra=fields(envelope))
        return False
    log.info("event ingested", extra=fields(envelope))
    return True


def handler(event: dict, context: Any = None) -> dict:
    setup("pipeline")
    config = settings()
    table = config.resource("EVENTS_TABLE")
    try:
        failures = config.resource("IDEMPOTENCY_TABLE")
    except KeyError:
        failures = None
    return process_sqs_batch(event, lambda record: store(parse(record["body"]), table), hop="ingest",
                             failures_table=failures, context=context)
