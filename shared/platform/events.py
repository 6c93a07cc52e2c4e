"""The one event envelope of the sync pipeline, and the one SQS publisher.

Every message on every queue is an `Envelope`: event_id, type, occurred_at,
version, the seed's application body and, when known, the actor (a parent's or staff
member's email, or "system") for the other side's audit log. FIFO queues (name ending in .fifo) get
the request id as message group, so events of one application stay in order,
and the event id as deduplication id.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.platform.aws import client

SQS_BATCH_LIMIT = 10


class EventType(StrEnum):
    """What happened to an application (the state machine is shared.waitlist.TRANSITIONS)."""

    REQUEST = "REQUEST"  # reqsys: a parent applied (again)
    CANCEL = "CANCEL"  # reqsys: the parent cancelled
    ACCEPT = "ACCEPT"  # childsys before offers existed (accepted = enrolled); still handled when in flight
    REJECT = "REJECT"  # childsys: staff rejected, with a reason
    OFFER = "OFFER"  # childsys: staff accepted and offered a place, until offer_expires_at
    CONFIRM = "CONFIRM"  # reqsys: the parent confirmed the offer (enrolment)
    DECLINE = "DECLINE"  # reqsys: the parent declined the offer
    EXPIRE = "EXPIRE"  # reqsys: the offer's deadline passed unanswered
    WITHDRAW = "WITHDRAW"  # reqsys: withdrawn because the child enrolled elsewhere
    REMIND = "REMIND"  # reqsys: the offer's deadline is near (an email only)
    VERIFY = "VERIFY"  # childsys: staff verified or rejected a priority criterion
    PROOF = "PROOF"  # reqsys: the parent uploaded a proof document for a criterion


# who emits what: reqsys (the parent's side and the offer deadline) and childsys (the daycare);
# each app's sync endpoints take exactly the other one's events (REMIND is an email only)
FROM_REQSYS = frozenset({EventType.REQUEST, EventType.CANCEL, EventType.CONFIRM, EventType.DECLINE, EventType.EXPIRE,
                         EventType.WITHDRAW, EventType.PROOF})
FROM_CHILDSYS = frozenset({EventType.OFFER, EventType.ACCEPT, EventType.REJECT, EventType.VERIFY})


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    type: EventType
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    version: int = Field(default=1, ge=1)
    application: dict[str, Any]
    actor: str | None = Field(default=None, max_length=254)

    @property
    def request_id(self) -> str:
        """The application's id: the `request_id` the body carries, else (an event from before bodies
        carried it) the seed's child_id + nursery_id."""
        carried = self.application.get("request_id")
        if carried:
            return str(carried)
        return f"{self.application.get('child_id', '')}{self.application.get('nursery_id', '')}"

    def to_json(self) -> str:
        # without an actor, the same JSON as before the field existed (consumers still on the old code)
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def from_json(cls, body: str | bytes) -> Envelope:
        return cls.model_validate_json(body)


def _message(envelope: Envelope, queue_url: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "MessageBody": envelope.to_json(),
        "MessageAttributes": {"type": {"DataType": "String", "StringValue": str(envelope.type)}},
    }
    if queue_url.endswith(".fifo"):
        message["MessageGroupId"] = envelope.request_id or envelope.event_id
        message["MessageDeduplicationId"] = envelope.event_id
    return message


def publish(queue_url: str, envelope: Envelope) -> str:
    """Send one envelope; returns the SQS message id. Raises if SQS refuses it."""
    return client("sqs").send_message(QueueUrl=queue_url, **_message(envelope, queue_url))["MessageId"]


class PublishError(RuntimeError):
    def __init__(self, failed_event_ids: list[str]):
        super().__init__(f"{len(failed_event_ids)} event(s) were not accepted by SQS")
        self.failed_event_ids = failed_event_ids


def publish_batch(queue_url: str, envelopes: Iterable[Envelope]) -> list[str]:
    """Send envelopes in batches of ten; returns the sent event ids in order.

    Raises PublishError naming the events SQS did not accept, so a caller (the
    outbox relay) keeps exactly those for the next attempt.
    """
    envelopes = list(envelopes)
    sent: list[str] = []
    failed: list[str] = []
    sqs = client("sqs")
    for start in range(0, len(envelopes), SQS_BATCH_LIMIT):
        chunk = envelopes[start : start + SQS_BATCH_LIMIT]
        entries = [{"Id": str(i), **_message(env, queue_url)} for i, env in enumerate(chunk)]
        result = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        for item in result.get("Successful", []):
            sent.append(chunk[int(item["Id"])].event_id)
        failed.extend(chunk[int(item["Id"])].event_id for item in result.get("Failed", []))
    if failed:
        raise PublishError(failed)
    return sent
