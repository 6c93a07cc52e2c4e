"""The pipeline monitor's service: queue depths, dead letters, redrive, event timelines, sent emails.

No Flask here: reqsys's admin pages and JSON route (reqsys/monitor.py) call these, and so can
an ops script. Every queue comes from the provisioning outputs (`*_QUEUE_URL` / `*_DLQ_URL`,
in AWS the same names in the Lambda environment), never from a second list.

Redrive is done by hand (receive -> send to the source queue -> delete from the DLQ) rather
than with SQS `StartMessageMoveTask`: moto 5.2.5 does not implement that action (the server
answers 500 NotImplementedError), so it could neither run locally nor be tested. The manual
move is ordered so that a crash at any point duplicates a message at worst, never loses one;
every consumer of the pipeline is idempotent by event_id.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.platform.aws import client, plain_numbers

log = logging.getLogger(__name__)

QUEUE_SUFFIX = "_QUEUE_URL"
DLQ_SUFFIX = "_DLQ_URL"
DEPTH_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)
PEEK_VISIBILITY = 30  # seconds a listed message stays hidden if we die before releasing it
MOVE_VISIBILITY = 60  # seconds a message being redriven stays hidden (longer than one batch takes)
MOVE_TIME_BUDGET = 20.0  # seconds per redrive request: inside API Gateway's 29 s and Lambda's 30 s
MAX_PEEK = 100
MAX_MOVE = 1000
PREVIEW_CHARS = 300


class MonitorError(RuntimeError):
    """An AWS call of the monitor failed; the message is safe to show (no SDK metadata)."""


def _aws_error(err: Exception, action: str) -> MonitorError:
    response = getattr(err, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    log.warning("%s failed: %s", action, err)
    return MonitorError(f"{action} failed ({code or type(err).__name__})")


# --- which queues there are --------------------------------------------------------------------


@dataclass(frozen=True)
class QueuePair:
    """A queue and its dead-letter queue, as the outputs name them (key: EMAIL, TO_CHILDSYS...)."""

    key: str
    queue_url: str | None
    dlq_url: str | None

    @property
    def slug(self) -> str:
        """The key as it appears in monitor URLs: email, to-childsys, integrated-events."""
        return self.key.lower().replace("_", "-")

    @property
    def fifo(self) -> bool:
        return (self.queue_url or self.dlq_url or "").endswith(".fifo")


def resource_names(settings: Any) -> dict[str, str]:
    """Every queue URL output the settings can resolve: the outputs file locally, and in AWS the
    Lambda environment (where the outputs arrive as environment variables of the same names)."""
    import os

    names = {name for name in [*settings.resources, *os.environ] if name.endswith((QUEUE_SUFFIX, DLQ_SUFFIX))}
    found = {}
    for name in sorted(names):
        try:
            found[name] = settings.resource(name)
        except KeyError:
            continue
    return found


def queue_pairs(outputs: Mapping[str, str]) -> list[QueuePair]:
    """The queue pairs named in `outputs` (keys ending _QUEUE_URL and _DLQ_URL), sorted by key."""
    keys = {name.removesuffix(QUEUE_SUFFIX).removesuffix(DLQ_SUFFIX)
            for name in outputs if name.endswith((QUEUE_SUFFIX, DLQ_SUFFIX))}
    return [QueuePair(key, outputs.get(key + QUEUE_SUFFIX) or None, outputs.get(key + DLQ_SUFFIX) or None)
            for key in sorted(keys)]


def find_pair(outputs: Mapping[str, str], slug: str) -> QueuePair | None:
    return next((pair for pair in queue_pairs(outputs) if pair.slug == slug), None)


# --- depths ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Depth:
    key: str
    slug: str
    kind: str  # "queue" or "dlq"
    url: str
    visible: int = 0
    in_flight: int = 0
    delayed: int = 0
    error: str | None = None

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed

    @property
    def is_dlq(self) -> bool:
        return self.kind == "dlq"

    @property
    def stuck(self) -> bool:
        """A dead-letter queue holding messages: something needs an operator."""
        return self.is_dlq and self.total > 0

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "name": self.name, "url": self.url,
                "fifo": self.name.endswith(".fifo"), "visible": self.visible, "in_flight": self.in_flight,
                "delayed": self.delayed, "total": self.total,
                "stuck": self.stuck, "error": self.error}


def depth(url: str) -> dict[str, int]:
    """ApproximateNumberOfMessages / …NotVisible / …Delayed of one queue, as ints."""
    attributes = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=list(DEPTH_ATTRIBUTES))["Attributes"]
    return {name: int(attributes.get(name, 0)) for name in DEPTH_ATTRIBUTES}


def queue_depths(outputs: Mapping[str, str]) -> list[Depth]:
    """Every queue followed by its DLQ, with depths; a queue that cannot be read gets `error`."""
    rows = []
    for pair in queue_pairs(outputs):
        for kind, url in (("queue", pair.queue_url), ("dlq", pair.dlq_url)):
            if not url:
                continue
            try:
                counts = depth(url)
            except Exception as err:  # one missing queue must not hide the others
                rows.append(Depth(pair.key, pair.slug, kind, url, error=str(_aws_error(err, "reading the depth"))))
                continue
            rows.append(Depth(pair.key, pair.slug, kind, url, counts["ApproximateNumberOfMessages"],
                              counts["ApproximateNumberOfMessagesNotVisible"],
                              counts["ApproximateNumberOfMessagesDelayed"]))
    return rows


# --- what a message body says ------------------------------------------------------------------


@dataclass(frozen=True)
class BodyInfo:
    """The event envelope found in a message body (directly, in an EventBridge event's `detail`,
    or in an SNS notification's `Message`), or the reason none was found."""

    wrapper: str | None = None  # "envelope", "eventbridge", "sns"
    type: str | None = None
    request_id: str | None = None
    event_id: str | None = None
    version: Any = None
    occurred_at: str | None = None
    problem: str | None = None  # why this body is not a valid envelope (fields only, no content)


def _json_object(text: Any) -> dict | None:
    if isinstance(text, dict):
        return text
    if not isinstance(text, str | bytes):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def describe_body(body: str) -> BodyInfo:
    outer = _json_object(body)
    if outer is None:
        return BodyInfo(problem="the body is not a JSON object")
    wrapper, candidate = "envelope", outer
    if "detail" in outer and "detail-type" in outer:
        wrapper, candidate = "eventbridge", _json_object(outer.get("detail"))
    elif outer.get("Type") == "Notification" and "Message" in outer:
        wrapper, candidate = "sns", _json_object(outer.get("Message"))
    if candidate is None:
        return BodyInfo(wrapper=wrapper, problem=f"the {wrapper} payload is not a JSON object")
    application = candidate.get("application")
    request_id = candidate.get("request_id")
    if isinstance(application, dict) and not request_id:
        request_id = f"{application.get('child_id', '')}{application.get('nursery_id', '')}" or None
    problem = None
    from pydantic import ValidationError

    from shared.platform.batch import validation_summary
    from shared.platform.events import Envelope

    try:
        Envelope.model_validate(candidate)
    except ValidationError as err:
        problem = "not a valid event envelope: " + validation_summary(err)
    return BodyInfo(wrapper=wrapper, type=_str_or_none(candidate.get("type")), request_id=_str_or_none(request_id),
                    event_id=_str_or_none(candidate.get("event_id")), version=candidate.get("version"),
                    occurred_at=_str_or_none(candidate.get("occurred_at")), problem=problem)


def _str_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


# --- dead letters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    body: str
    sent_at: datetime | None
    first_received_at: datetime | None
    receive_count: int
    group_id: str | None
    source_arn: str | None  # DeadLetterQueueSourceArn: set by AWS (not by moto)
    attributes: dict[str, str]  # message attributes with string values
    info: BodyInfo
    failure: str | None = None  # the last failure's reason, as the handler recorded it (shared.platform.batch)
    stream_batch: dict[str, Any] | None = None  # a stream mapping's failed batch (its on-failure queue)

    @property
    def preview(self) -> str:
        return self.body if len(self.body) <= PREVIEW_CHARS else self.body[:PREVIEW_CHARS] + "…"

    @property
    def truncated(self) -> bool:
        return len(self.body) > PREVIEW_CHARS


def _timestamp(value: str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC) if value else None
    except (TypeError, ValueError):
        return None


def _dead_letter(message: dict) -> DeadLetter:
    system = message.get("Attributes") or {}
    attributes = {name: value.get("StringValue", "(binary)")
                  for name, value in (message.get("MessageAttributes") or {}).items()}
    body = message.get("Body") or ""
    batch = stream_batch_info(body)
    info = describe_body(body) if batch is None else BodyInfo(wrapper="stream-failure")
    failure = None
    if batch is not None:
        failure = (f"{batch.get('batchSize', '?')} stream record(s) {batch.get('startSequenceNumber')}.."
                   f"{batch.get('endSequenceNumber')} failed "
                   f"({(_json_object(body) or {}).get('requestContext', {}).get('condition', '?')}); "
                   "replay publishes their events again from the events table")
    return DeadLetter(
        message_id=message["MessageId"], body=body, sent_at=_timestamp(system.get("SentTimestamp")),
        first_received_at=_timestamp(system.get("ApproximateFirstReceiveTimestamp")),
        receive_count=int(system.get("ApproximateReceiveCount") or 0), group_id=system.get("MessageGroupId"),
        source_arn=system.get("DeadLetterQueueSourceArn"), attributes=attributes, info=info, failure=failure,
        stream_batch=batch)


def stream_batch_info(body: str) -> dict[str, Any] | None:
    """The `DDBStreamBatchInfo` of a stream mapping's on-failure message, or None for any other body."""
    outer = _json_object(body)
    batch = outer.get("DDBStreamBatchInfo") if outer else None
    return batch if isinstance(batch, dict) else None


def failure_reasons(table: str | None, message_ids: Iterable[str]) -> dict[str, str]:
    """The last failure's reason of each message (recorded by shared.platform.batch), by message id."""
    ids = list(dict.fromkeys(message_ids))
    if not table or not ids:
        return {}
    from shared.platform.batch import FAILURE_PREFIX

    found: dict[str, str] = {}
    dynamodb = client("dynamodb")
    for start in range(0, len(ids), 100):
        keys = [{"id": {"S": f"{FAILURE_PREFIX}{i}"}} for i in ids[start:start + 100]]
        try:
            response = dynamodb.batch_get_item(RequestItems={table: {"Keys": keys}})
        except Exception as err:  # informative only
            log.warning("could not read the failure reasons: %s", err)
            return found
        for item in response.get("Responses", {}).get(table, []):
            plain = {k: next(iter(v.values())) for k, v in item.items()}
            status = f"HTTP {plain['status']} · " if plain.get("status") else ""
            found[plain["id"].removeprefix(FAILURE_PREFIX)] = (
                f"{status}{plain.get('error', '?')}: {plain.get('reason', '')} "
                f"(receive {plain.get('receives', '?')}, {plain.get('at', '')})")
    return found


def _receive(url: str, count: int, visibility: int) -> list[dict]:
    return client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=max(1, min(10, count)), VisibilityTimeout=visibility,
        # long polling asks every SQS server (short polling samples some, and may answer empty)
        WaitTimeSeconds=1, MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"],
    ).get("Messages", [])


def _release(url: str, receipt_handles: Iterable[str]) -> None:
    """Make received messages visible again at once (visibility timeout 0)."""
    handles = list(receipt_handles)
    sqs = client("sqs")
    for start in range(0, len(handles), 10):
        entries = [{"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                   for i, handle in enumerate(handles[start:start + 10])]
        try:
            result = sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
        except Exception as err:  # they reappear by themselves when their visibility timeout ends
            log.warning("could not release %d message(s) of %s: %s", len(entries), url, err)
            continue
        for failure in result.get("Failed", []):
            log.warning("could not release a message of %s: %s", url, failure.get("Code"))


def peek(url: str, limit: int = MAX_PEEK, failures_table: str | None = None) -> list[DeadLetter]:
    """The messages of a (dead-letter) queue, without consuming them.

    SQS has no "peek": the messages are received with a short visibility timeout and then made
    visible again (ChangeMessageVisibility 0). Side effects an operator should know about:
    each look adds one to every listed message's ApproximateReceiveCount (harmless on a DLQ,
    which has no redrive policy of its own), and while the page loads the messages count as
    in flight. If this process dies in between, they reappear after PEEK_VISIBILITY seconds.
    On a FIFO queue SQS hides the rest of a message group while some of it is in flight, so at
    most the first messages of each group can be listed.
    """
    try:
        expected = min(limit, depth(url)["ApproximateNumberOfMessages"])
    except Exception as err:
        raise _aws_error(err, "reading the queue") from None
    seen: dict[str, DeadLetter] = {}
    held: list[str] = []
    try:
        while len(seen) < expected:
            batch = _receive(url, expected - len(seen), PEEK_VISIBILITY)
            if not batch:
                break
            for message in batch:
                held.append(message["ReceiptHandle"])
                seen.setdefault(message["MessageId"], _dead_letter(message))
    except Exception as err:
        raise _aws_error(err, "listing the messages") from None
    finally:
        _release(url, held)
    reasons = failure_reasons(failures_table, [m for m, letter in seen.items() if letter.failure is None])
    letters = [replace(letter, failure=reasons[m]) if m in reasons else letter for m, letter in seen.items()]
    return sorted(letters, key=lambda m: (m.sent_at or datetime.min.replace(tzinfo=UTC), m.message_id))


# --- redrive -----------------------------------------------------------------------------------


@dataclass
class RedriveResult:
    moved: int = 0
    failed: int = 0  # could not be sent to the source queue: still in the DLQ
    duplicated: int = 0  # sent, but the delete from the DLQ failed: now in both (consumers are idempotent)
    found: bool = True  # for one message: whether it was found
    remaining: int | None = None  # visible messages left in the DLQ afterwards
    errors: list[str] = field(default_factory=list)
    replayed: int = 0  # stream failures: events published again from the events table

    def as_json(self) -> dict[str, Any]:
        return {"moved": self.moved, "failed": self.failed, "duplicated": self.duplicated, "found": self.found,
                "remaining": self.remaining, "replayed": self.replayed, "errors": self.errors}


def _resend_entry(message: dict, index: int, fifo: bool, run: str) -> dict:
    entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
    attributes = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        kept = {key: value[key] for key in ("DataType", "StringValue", "BinaryValue") if key in value}
        attributes[name] = kept
    if attributes:
        entry["MessageAttributes"] = attributes
    if fifo:
        system = message.get("Attributes") or {}
        entry["MessageGroupId"] = system.get("MessageGroupId") or message["MessageId"]
        # A new deduplication id: the original one would make the source queue drop the message as
        # a duplicate if the redrive happens within SQS's 5-minute deduplication window. Unique per
        # redrive run, and stable within it, so a message received twice in one run is sent once.
        entry["MessageDeduplicationId"] = f"redrive-{run}-{message['MessageId']}"[:128]
    return entry


def _move(pair: QueuePair, messages: list[dict], run: str, result: RedriveResult) -> list[str]:
    """Send `messages` to the source queue, then delete the sent ones from the DLQ (in that order,
    so nothing is lost). Returns the receipt handles of messages that were not sent."""
    sqs = client("sqs")
    entries = [_resend_entry(message, i, pair.fifo, run) for i, message in enumerate(messages)]
    try:
        sent = sqs.send_message_batch(QueueUrl=pair.queue_url, Entries=entries)
    except Exception as err:
        result.failed += len(messages)
        result.errors.append(str(_aws_error(err, "sending to the source queue")))
        return [message["ReceiptHandle"] for message in messages]
    sent_ids = {item["Id"] for item in sent.get("Successful", [])}
    unsent = [messages[int(item["Id"])]["ReceiptHandle"] for item in sent.get("Failed", [])]
    if unsent:
        result.failed += len(unsent)
        codes = sorted({item.get("Code", "?") for item in sent.get("Failed", [])})
        result.errors.append(f"the source queue refused {len(unsent)} message(s) ({', '.join(codes)})")
    delete = [{"Id": i, "ReceiptHandle": messages[int(i)]["ReceiptHandle"]} for i in sorted(sent_ids, key=int)]
    if not delete:
        return unsent
    try:
        deleted = sqs.delete_message_batch(QueueUrl=pair.dlq_url, Entries=delete)
        not_deleted = len(deleted.get("Failed", []))
    except Exception as err:
        not_deleted = len(delete)
        result.errors.append(str(_aws_error(err, "deleting from the dead-letter queue")))
    result.moved += len(delete) - not_deleted
    result.duplicated += not_deleted
    return unsent


def redrive(pair: QueuePair, message_id: str | None = None, limit: int = MAX_MOVE,
            time_budget: float = MOVE_TIME_BUDGET) -> RedriveResult:
    """Move the DLQ's messages (or only `message_id`) back to the source queue, keeping body,
    message attributes and (FIFO) message group; returns how many moved.

    At most `limit` messages or `time_budget` seconds per call (a web request); call again for
    more. Messages not moved (send refused, or not the one asked for) are made visible again.
    """
    if not pair.queue_url or not pair.dlq_url:
        raise MonitorError(f"{pair.key} has no source queue or no dead-letter queue")
    result = RedriveResult(found=message_id is None)
    run = uuid.uuid4().hex
    deadline = time.monotonic() + time_budget
    held: list[str] = []
    try:
        while result.moved + result.failed + result.duplicated < limit and time.monotonic() < deadline:
            batch = _receive(pair.dlq_url, limit - result.moved - result.failed - result.duplicated, MOVE_VISIBILITY)
            if not batch:
                break
            wanted = [m for m in batch if message_id is None or m["MessageId"] == message_id]
            held += [m["ReceiptHandle"] for m in batch if m not in wanted]
            if wanted:
                result.found = True
                held += _move(pair, wanted, run, result)
            if message_id is not None and result.found:
                break
    except MonitorError:
        raise
    except Exception as err:
        result.errors.append(str(_aws_error(err, "receiving from the dead-letter queue")))
    finally:
        _release(pair.dlq_url, held)
    try:
        result.remaining = depth(pair.dlq_url)["ApproximateNumberOfMessages"]
    except Exception:  # the move itself is done; the count is only informative
        result.remaining = None
    log.info("redrive %s: moved %d, failed %d, duplicated %d%s", pair.key, result.moved, result.failed,
             result.duplicated, f" (message {message_id})" if message_id else "")
    return result


# --- stream failures: replay from the events table -----------------------------------------------

REPLAY_MARGIN = timedelta(minutes=2)  # around a failed batch's arrival times: ingested_at is set just before


def _events_between(table: str, first: datetime, last: datetime) -> list[Any]:
    """The envelopes of the events ingested between two times (a Scan: an operator's action, not a hot path)."""
    from boto3.dynamodb.types import TypeSerializer

    from shared.pipeline.stream import envelope_from_image

    serialize = TypeSerializer().serialize
    scan: dict[str, Any] = {
        "TableName": table, "ConsistentRead": True, "FilterExpression": "ingested_at BETWEEN :a AND :b",
        "ExpressionAttributeValues": {":a": serialize((first - REPLAY_MARGIN).isoformat(timespec="microseconds")),
                                      ":b": serialize((last + REPLAY_MARGIN).isoformat(timespec="microseconds"))}}
    found = []
    dynamodb = client("dynamodb")
    while True:
        page = dynamodb.scan(**scan)
        for item in page.get("Items", []):
            try:
                found.append(envelope_from_image(item))
            except (KeyError, TypeError, ValueError):
                log.warning("events-table item %s is not an event; not replayed", item.get("event_id"))
        if "LastEvaluatedKey" not in page:
            return found
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def replay_stream_failures(dlq_url: str, events_table: str, bus: str, message_id: str | None = None,
                           limit: int = MAX_PEEK, time_budget: float = MOVE_TIME_BUDGET) -> RedriveResult:
    """Publish again, from the events table, the events of the stream batches described in the stream's
    on-failure queue (all, or the message `message_id`), then delete those descriptions.

    A description names a batch by shard, sequence numbers and arrival times (Lambda's on-failure record
    holds no data, and the stream keeps records 24 hours only): every event ingested around those times is
    put on the bus again. Neighbours sent twice are harmless (every consumer is idempotent by event_id);
    a description is deleted only after all its events were accepted, so nothing is lost.
    """
    from shared.pipeline.stream import publish

    result = RedriveResult(found=message_id is None)
    deadline = time.monotonic() + time_budget
    held: list[str] = []
    sqs = client("sqs")
    try:
        while result.moved + result.failed < limit and time.monotonic() < deadline:
            batch = _receive(dlq_url, limit - result.moved - result.failed, MOVE_VISIBILITY)
            if not batch:
                break
            for message in batch:
                info = stream_batch_info(message.get("Body") or "")
                if (message_id is not None and message["MessageId"] != message_id) or info is None:
                    held.append(message["ReceiptHandle"])
                    if info is None and message_id in (None, message["MessageId"]):
                        result.failed += 1
                        result.errors.append(f"message {message['MessageId']} is not a stream batch description")
                    continue
                result.found = True
                first = _iso(info.get("approximateArrivalOfFirstRecord"))
                last = _iso(info.get("approximateArrivalOfLastRecord")) or first
                if first is None:
                    held.append(message["ReceiptHandle"])
                    result.failed += 1
                    result.errors.append(f"message {message['MessageId']} has no arrival times")
                    continue
                envelopes = _events_between(events_table, first, last)
                refused = publish([(env.event_id, env) for env in envelopes], bus)
                if refused:
                    held.append(message["ReceiptHandle"])
                    result.failed += 1
                    result.errors.append(f"EventBridge refused {len(refused)} event(s); the description stays")
                    continue
                sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
                result.moved += 1
                result.replayed += len(envelopes)
            if message_id is not None and result.found:
                break
    except Exception as err:
        result.errors.append(str(_aws_error(err, "replaying the stream failures")))
    finally:
        _release(dlq_url, held)
    try:
        result.remaining = depth(dlq_url)["ApproximateNumberOfMessages"]
    except Exception:
        result.remaining = None
    log.info("stream replay: %d batch(es), %d event(s) published again, %d failed", result.moved,
             result.replayed, result.failed)
    return result


# --- event timeline ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEvent:
    event_id: str
    type: str
    version: int | None
    occurred_at: datetime | None
    occurred_at_raw: str
    ingested_at: datetime | None
    application: dict[str, Any]




def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def timeline(table: str, request_id: str) -> list[TimelineEvent]:
    """Every event of one application (request_id = child_id + nursery_id) from the events
    table, ordered by occurred_at, then version, then event_id."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    dynamodb = client("dynamodb")
    items: list[dict] = []
    query: dict[str, Any] = {"TableName": table, "KeyConditionExpression": "request_id = :r",
                             "ExpressionAttributeValues": {":r": {"S": request_id}}}
    try:
        while True:
            page = dynamodb.query(**query)
            items += [{k: deserializer.deserialize(v) for k, v in item.items()} for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    except Exception as err:
        raise _aws_error(err, "reading the events table") from None
    events = []
    for item in items:
        item = plain_numbers(item)
        version = item.get("version")
        events.append(TimelineEvent(
            event_id=str(item.get("event_id", "")), type=str(item.get("type", "")),
            version=version if isinstance(version, int) else None,
            occurred_at=_iso(item.get("occurred_at")), occurred_at_raw=str(item.get("occurred_at", "")),
            ingested_at=_iso(item.get("ingested_at")),
            application=item.get("application") if isinstance(item.get("application"), dict) else {}))
    never = datetime.min.replace(tzinfo=UTC)
    events.sort(key=lambda e: (e.occurred_at or never, e.version or 0, e.event_id))
    return events


def application_summary(events: list[TimelineEvent]) -> dict[str, Any]:
    """The application as the latest event describes it (earlier events fill fields it lacks)."""
    summary: dict[str, Any] = {}
    for event in events:
        summary.update({key: value for key, value in event.application.items() if value not in (None, "")})
    return summary


# --- sent emails (local only) ------------------------------------------------------------------


def latest_emails(limit: int = 50, to: str | None = None) -> list[dict[str, Any]]:
    """The emulator's SES outbox, newest first (only against the local emulator)."""
    from shared.pipeline.mailbox import sent_emails

    try:
        emails = sent_emails(to=to or None)
    except (RuntimeError, OSError, ValueError) as err:
        raise MonitorError(f"the emulator's mailbox cannot be read ({type(err).__name__})") from None
    return list(reversed(emails[-limit:]))
