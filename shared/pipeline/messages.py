"""Reading what a queue hands a handler: the event envelope in an SQS body."""

from __future__ import annotations

import json

from pydantic import ValidationError

from shared.platform.batch import MalformedMessage, validation_summary
from shared.platform.events import Envelope


def envelope_in(body: str) -> Envelope:
    """The envelope an SQS body carries, bare (the integrated-events queue) or as an EventBridge event's
    `detail` (the queues after the bus; a detail may come as a JSON string); MalformedMessage saying why,
    naming no content."""
    try:
        event = json.loads(body)
    except ValueError:
        raise MalformedMessage("body is not JSON") from None
    detail = event.get("detail", event) if isinstance(event, dict) else None
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except ValueError:
            raise MalformedMessage("detail is not JSON") from None
    try:
        return Envelope.model_validate(detail)
    except ValidationError as err:
        raise MalformedMessage(f"not an event envelope ({validation_summary(err)})") from None
