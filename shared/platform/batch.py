"""SQS batches as Lambda hands them over: every record processed, failures reported by id, retried with backoff.

`process_sqs_batch` returns the `batchItemFailures` of a ReportBatchItemFailures mapping: a failed
record is retried and after the queue's maxReceiveCount lands in its dead-letter queue; the rest are
deleted. Used by the pipeline's handlers and by taskapp's queue consumers.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("shared.batch")
BACKOFF_BASE = 30  # seconds hidden after the first failed receive; doubled after each further one
BACKOFF_CAP = 900  # at most 15 minutes between tries: with PIPELINE_MAX_RECEIVES, about 1 h 45 min of retries
PIPELINE_MAX_RECEIVES = 12  # receives before the DLQ: 30+60+120+240+480+6*900 s = 1 h 45 min (an hour's outage)
FAILURE_PREFIX = "failure#"
FAILURE_TTL_SECONDS = 14 * 86400  # as long as a dead-letter queue keeps a message


class RecordFailed(RuntimeError):
    """An expected, possibly passing failure (a target down, an HTTP error): logged as a warning
    without a traceback; the record is retried. `status` is the target's HTTP status, if it answered."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class MalformedMessage(ValueError):
    """A record that can never succeed (bad JSON, not an envelope). It is reported as failed,
    so after maxReceiveCount SQS moves it to the dead-letter queue where an admin sees it.
    The message says why, naming fields and ids only, never body content."""


def validation_summary(err: Exception) -> str:
    """A pydantic ValidationError as 'field: error type' pairs, without the offending input."""
    errors = getattr(err, "errors", None)
    if not callable(errors):
        return type(err).__name__
    try:
        items = errors(include_input=False, include_url=False)
    except TypeError:
        items = errors()
    return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())) or 'body'}: {e.get('type')}" for e in items)


def backoff_seconds(receives: int) -> int:
    """The visibility timeout after a failed receive: BACKOFF_BASE * 2^(receives-1), capped at BACKOFF_CAP."""
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, min(receives, 20) - 1))


def process_sqs_batch(event: dict, fn: Callable[[dict], Any], *, hop: str | None = None,
                      failures_table: str | None = None, context: Any = None,
                      backoff: bool = True) -> dict[str, list[dict[str, str]]]:
    """Call `fn(record)` for every SQS record; returns `{"batchItemFailures": [...]}`.

    A record whose `fn` raises is reported (by messageId) for retry; the others count as done.
    FIFO queues keep order within a message group: once a record of a group fails, the later
    records of that group are not processed and are reported too (as Lambda requires).

    A failed record is hidden for a growing time (`backoff_seconds` of its receive count, by
    ChangeMessageVisibility) so that an outage is ridden out before the redrive policy dead-letters it;
    a malformed one comes back at once (it can only end in the DLQ). With `failures_table`, the last
    failure's reason (error, HTTP status) is kept under `failure#<messageId>` for the monitor's DLQ page.
    With `hop`, one metrics line (shared.platform.logs) counts the batch.
    """
    from shared.platform import logs

    failures: list[dict[str, str]] = []
    failed_groups: set[str] = set()
    records = event.get("Records") or []
    retried = 0
    oldest: int | None = None
    aws_request_id = getattr(context, "aws_request_id", None)
    for record in records:
        message_id = record.get("messageId", "")
        attributes = record.get("attributes") or {}
        receives = _int(attributes.get("ApproximateReceiveCount"), 1)
        retried += receives > 1
        sent = _int(attributes.get("SentTimestamp"), 0)
        if sent and (oldest is None or sent < oldest):
            oldest = sent
        fifo = str(record.get("eventSourceARN", "")).endswith(".fifo")
        group = attributes.get("MessageGroupId") if fifo else None
        if group is not None and group in failed_groups:
            failures.append({"itemIdentifier": message_id})
            _retry_later(record, backoff_seconds(receives) if backoff else None)
            continue
        try:
            with logs.bind(hop=hop, aws_request_id=aws_request_id):
                fn(record)
        except MalformedMessage as err:
            log.error("message %s from %s is malformed and will go to the dead-letter queue: %s",
                      message_id, _queue_name(record), err, extra=_fields(record, hop, aws_request_id))
            failures.append({"itemIdentifier": message_id})
            _remember(failures_table, record, err, "malformed")
            _retry_later(record, 0 if backoff else None)
        except Exception as err:
            wait = backoff_seconds(receives) if backoff else None
            if isinstance(err, RecordFailed):
                log.warning("message %s from %s failed (receive %s), will be retried%s: %s", message_id,
                            _queue_name(record), receives, f" in {wait} s" if wait else "", err,
                            extra=_fields(record, hop, aws_request_id))
            else:
                log.exception("message %s from %s failed (receive %s), will be retried%s", message_id,
                              _queue_name(record), receives, f" in {wait} s" if wait else "",
                              extra=_fields(record, hop, aws_request_id))
            failures.append({"itemIdentifier": message_id})
            _remember(failures_table, record, err, "failed")
            _retry_later(record, wait)
        else:
            continue
        if group is not None:
            failed_groups.add(group)
    if hop:
        logs.emit_metrics(hop, processed=len(records) - len(failures), failed=len(failures), retried=retried,
                          oldest_age_ms=(time.time() * 1000 - oldest) if oldest else None)
    return {"batchItemFailures": failures}


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _fields(record: dict, hop: str | None, aws_request_id: str | None) -> dict[str, Any]:
    """The correlation id (event id) of a failed record, found in its body if it is an envelope."""
    found: dict[str, Any] = {"hop": hop, "aws_request_id": aws_request_id, "message_id": record.get("messageId")}
    try:
        body = json.loads(record.get("body") or "")
        detail = body.get("detail", body) if isinstance(body, dict) else {}
        detail = json.loads(detail) if isinstance(detail, str) else detail
        if isinstance(detail, dict):
            found.update(correlation_id=detail.get("event_id"), event_type=detail.get("type"))
    except (ValueError, TypeError, AttributeError):
        pass
    return {k: v for k, v in found.items() if v is not None}


def _queue_url(arn: str) -> str | None:
    """The URL of the queue an event source ARN names (arn:aws:sqs:region:account:name), without an API
    call: SQS's URL is https://sqs.<region>.amazonaws.com/<account>/<name> (the emulator's: endpoint/account/name)."""
    import os

    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        return None
    base = os.environ.get("AWS_ENDPOINT_URL") or f"https://sqs.{parts[3]}.amazonaws.com"
    return f"{base.rstrip('/')}/{parts[4]}/{parts[5]}"


def _retry_later(record: dict, seconds: int | None) -> None:
    """Hide a failed record for `seconds` (best effort: without it the queue's own timeout applies)."""
    if seconds is None or not record.get("receiptHandle"):
        return
    from shared.platform.aws import client

    try:
        url = _queue_url(str(record.get("eventSourceARN", "")))
        if url:
            client("sqs").change_message_visibility(QueueUrl=url, ReceiptHandle=record["receiptHandle"],
                                                    VisibilityTimeout=int(seconds))
    except Exception as err:
        log.warning("could not set the retry delay of message %s: %s", record.get("messageId"), err)


def failure_reason(err: BaseException) -> dict[str, str]:
    """What the monitor shows of a failure: the error's kind, its message, and an HTTP status if any."""
    reason = {"error": type(err).__name__, "reason": str(err)[:500]}
    status = getattr(err, "status", None)
    if status is not None:
        reason["status"] = str(status)
    return reason


def _remember(table: str | None, record: dict, err: BaseException, outcome: str) -> None:
    """Keep the last failure's reason of a message, by its id, for when it reaches the dead-letter queue."""
    if not table or not record.get("messageId"):
        return
    from shared.platform.aws import client

    item = {"id": {"S": f"{FAILURE_PREFIX}{record['messageId']}"}, "outcome": {"S": outcome},
            "queue": {"S": _queue_name(record)},
            "receives": {"N": str(_int((record.get("attributes") or {}).get("ApproximateReceiveCount"), 1))},
            "at": {"S": datetime.now(UTC).isoformat()},
            "expiration": {"N": str(int(time.time()) + FAILURE_TTL_SECONDS)},
            **{k: {"S": v} for k, v in failure_reason(err).items() if v}}
    try:
        client("dynamodb").put_item(TableName=table, Item=item)
    except Exception as exc:
        log.warning("could not record why message %s failed: %s", record.get("messageId"), exc)


def _queue_name(record: dict) -> str:
    return str(record.get("eventSourceARN", "?")).rsplit(":", 1)[-1]


def _receives(record: dict) -> str:
    return str((record.get("attributes") or {}).get("ApproximateReceiveCount", "?"))
