"""The sync pipeline's Lambda handlers (the seed's ReqManageSys), thin and shared.

    ingest   SQS integrated-events  -> DynamoDB events table
    stream   events table stream    -> EventBridge bus (rules route to the queues below)
    email    SQS email queue        -> SES, to the application's parent_email
    forward  SQS to-childsys/reqsys -> the other app's signed sync endpoint

Each is a plain `handler(event, context)`: Zappa calls it in Lambda, `shared.tools.runner` calls
it locally. SQS handlers go through `shared.platform.batch.process_sqs_batch`.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

from shared.platform.batch import MalformedMessage, validation_summary
from shared.platform.events import Envelope
from shared.platform.settings import Settings


def settings() -> Settings:
    """Resource names (EVENTS_TABLE, EVENT_BUS_NAME...) from the Lambda environment, or locally
    from the provisioning outputs file. Loaded per invocation: cheap, and follows re-provisioning."""
    return Settings.load("pipeline")


def envelope_in(body: str) -> Envelope:
    """The envelope an SQS body carries, bare (the integrated-events queue) or as an EventBridge event's
    `detail` (the queues after the bus; a detail may come as a JSON string); MalformedMessage saying why,
    naming no content."""
    import json

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


def app(environ: dict, start_response: Callable) -> list[bytes]:
    """The WSGI callable named by the pipeline stages' `app_function` (Zappa requires one).

    The pipeline function serves no HTTP (apigateway_enabled is false); Zappa still imports its
    app at every cold start, and pointing it here rather than at `reqsys.app` keeps the pipeline
    from building reqsys (and needing its database and Cognito settings) just to handle events.
    """
    body = b'{"error": {"code": "not_found", "message": "The pipeline function serves no HTTP"}}'
    start_response("404 Not Found", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
