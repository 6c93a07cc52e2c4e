"""SQS batches as Lambda hands them over: every record processed, failures reported by id.

`process_sqs_batch` returns the `batchItemFailures` of a ReportBatchItemFailures mapping: a failed
record is retried and after the queue's maxReceiveCount lands in its dead-letter queue; the rest are
deleted. Used by the pipeline's handlers and by taskapp's queue consumers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("shared.batch")


class RecordFailed(RuntimeError):
    """An expected, possibly passing failure (a target down, an HTTP error): logged as a warning
    without a traceback; the record is retried."""


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


def process_sqs_batch(event: dict, fn: Callable[[dict], Any]) -> dict[str, list[dict[str, str]]]:
    """Call `fn(record)` for every SQS record; returns `{"batchItemFailures": [...]}`.

    A record whose `fn` raises is reported (by messageId) for retry; the others count as done.
    FIFO queues keep order within a message group: once a record of a group fails, the later
    records of that group are not processed and are reported too (as Lambda requires).
    """
    failures: list[dict[str, str]] = []
    failed_groups: set[str] = set()
    for record in event.get("Records") or []:
        message_id = record.get("messageId", "")
        fifo = str(record.get("eventSourceARN", "")).endswith(".fifo")
        group = (record.get("attributes") or {}).get("MessageGroupId") if fifo else None
        if group is not None and group in failed_groups:
            failures.append({"itemIdentifier": message_id})
            continue
        try:
            fn(record)
        except MalformedMessage as err:
            log.error("message %s from %s is malformed and will go to the dead-letter queue: %s",
                      message_id, _queue_name(record), err)
            failures.append({"itemIdentifier": message_id})
        except RecordFailed as err:
            log.warning("message %s from %s failed (receive %s), will be retried: %s", message_id,
                        _queue_name(record), _receives(record), err)
            failures.append({"itemIdentifier": message_id})
        except Exception:
            log.exception("message %s from %s failed (receive %s), will be retried", message_id,
                          _queue_name(record), _receives(record))
            failures.append({"itemIdentifier": message_id})
        else:
            continue
        if group is not None:
            failed_groups.add(group)
    return {"batchItemFailures": failures}


def _queue_name(record: dict) -> str:
    return str(record.get("eventSourceARN", "?")).rsplit(":", 1)[-1]


def _receives(record: dict) -> str:
    return str((record.get("attributes") or {}).get("ApproximateReceiveCount", "?"))
