"""The event envelope and the SQS publisher, against the emulator."""

import json
import uuid

import pytest
from pydantic import ValidationError

from shared.platform.events import Envelope, EventType, publish, publish_batch

SEED_BODY = {
    "child_id": "202301013333333",
    "child_name": "namae",
    "child_birthday": "20230101",
    "user_id": "user",
    "parent_name": "onamae",
    "parent_tel": "010-0000-0000",
    "parent_address": "address",
    "parent_postcode": "00001",
    "parent_email": "user@email.com",
    "nursery_id": "A00017",
}


def receive_all(sqs, url, expected):
    messages = []
    for _ in range(10):
        batch = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"], WaitTimeSeconds=0,
        ).get("Messages", [])
        messages += batch
        if len(messages) >= expected:
            break
    return messages


def test_envelope_round_trips_and_derives_the_seed_request_id():
    envelope = Envelope(type=EventType.REQUEST, application=SEED_BODY)
    again = Envelope.from_json(envelope.to_json())
    assert again == envelope
    assert again.request_id == "202301013333333A00017"
    assert uuid.UUID(again.event_id)
    assert again.occurred_at.tzinfo is not None


def test_envelope_rejects_unknown_types_and_fields():
    with pytest.raises(ValidationError):
        Envelope(type="DELETE", application=SEED_BODY)
    with pytest.raises(ValidationError):
        Envelope.model_validate({"type": "REQUEST", "application": SEED_BODY, "extra": 1})


def test_publish_to_fifo_queue_sets_group_and_dedup_ids(sqs):
    url = sqs.create_queue(
        QueueName=f"pub-{uuid.uuid4().hex[:8]}.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    envelope = Envelope(type=EventType.CANCEL, application=SEED_BODY)
    publish(url, envelope)
    publish(url, envelope)  # a retried send of the same event is deduplicated by SQS

    messages = receive_all(sqs, url, 1)
    assert len(messages) == 1
    message = messages[0]
    assert message["Attributes"]["MessageGroupId"] == "202301013333333A00017"
    assert message["Attributes"]["MessageDeduplicationId"] == envelope.event_id
    assert message["MessageAttributes"]["type"]["StringValue"] == "CANCEL"
    assert Envelope.from_json(message["Body"]) == envelope


def test_publish_batch_sends_every_envelope_across_batches(sqs):
    url = sqs.create_queue(QueueName=f"pub-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    envelopes = [Envelope(type=EventType.REQUEST, application={**SEED_BODY, "child_id": str(i)}) for i in range(23)]

    sent = publish_batch(url, envelopes)

    assert sent == [e.event_id for e in envelopes]
    bodies = [json.loads(m["Body"]) for m in receive_all(sqs, url, 23)]
    assert sorted(b["event_id"] for b in bodies) == sorted(sent)
    assert all("MessageGroupId" not in b for b in bodies)


def test_publish_to_a_missing_queue_raises(sqs):
    from botocore.exceptions import ClientError

    missing = sqs.create_queue(QueueName=f"gone-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sqs.delete_queue(QueueUrl=missing)
    with pytest.raises(ClientError):
        publish(missing, Envelope(type=EventType.ACCEPT, application=SEED_BODY))
