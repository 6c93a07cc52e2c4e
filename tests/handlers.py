"""Handlers the runner tests point zappa settings at; each records the events it is given."""

from __future__ import annotations

received: list[dict] = []  # every event, in delivery order
contexts: list[object] = []
_failed_once: set[str] = set()


def reset() -> None:
    received.clear()
    contexts.clear()
    _failed_once.clear()


def fail_marked(event, context):
    """SQS: reports the messages whose body is "fail" as failed, the rest as done."""
    received.append(event)
    contexts.append(context)
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "fail"]}


def bad_identifier(event, context):
    """SQS: names a message that is not in the batch (Lambda then fails the whole batch)."""
    received.append(event)
    return {"batchItemFailures": [{"itemIdentifier": "not-a-message-id"}]}


def explode(event, context):
    received.append(event)
    raise RuntimeError("handler failed")


def ok(event, context):
    received.append(event)


def stream_fail_b_once(event, context):
    """DynamoDB stream: reports the record for pk "b" as failed the first time it is seen."""
    received.append(event)
    for record in event["Records"]:
        pk = record["dynamodb"]["Keys"]["pk"]["S"]
        if pk == "b" and pk not in _failed_once:
            _failed_once.add(pk)
            return {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
    return None


def explode_on_poison(event, context):
    """DynamoDB stream: raises when the batch holds the record for pk "poison" (nothing is done then)."""
    received.append(event)
    if any(r["dynamodb"]["Keys"]["pk"]["S"] == "poison" for r in event["Records"]):
        raise RuntimeError("poison record")
