"""Forward (seed: "SQS To Nursery" and "SQS To Enterwait"): to-childsys / to-reqsys queues ->
the other app's sync endpoint, as one function routing by event type.

    REQUEST, CANCEL, CONFIRM, DECLINE,       -> {CHILDSYS_URL}/enterwait/<type in lower case>
    EXPIRE, WITHDRAW, PROOF (the parent's side)
    OFFER, REJECT, VERIFY (the daycare's side) -> {REQSYS_URL}/request/<type in lower case>
    ACCEPT (the old flow, still in flight)     -> {REQSYS_URL}/request/accept

The body is the envelope JSON, signed with shared.platform.signing (SYNC_SECRET). A 2xx answer is
success (the endpoints are idempotent: a repeat answers {"status": "ignored"}); anything
else, a timeout or a network error fails that record: SQS redelivers it after the
growing delay (shared.platform.batch: 30 s doubling to 15 min, about 1 h 45 min in all before
maxReceiveCount moves it to the dead-letter queue, with the reason kept for the monitor), from where
an admin redrives it once the target is fixed. The POST carries the event id as X-Correlation-Id.

Base URLs come from CHILDSYS_URL / REQSYS_URL; locally (AWS_ENDPOINT_URL set) they default
to the `make run` ports, in AWS they are required.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from typing import Any

from shared.pipeline import envelope_in, settings
from shared.platform.batch import RecordFailed, process_sqs_batch
from shared.platform.events import FROM_CHILDSYS, FROM_REQSYS, Envelope, EventType
from shared.platform.logs import fields, setup
from shared.platform.signing import sign

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 5
LOCAL_DEFAULTS = {"CHILDSYS_URL": "http://127.0.0.1:8002", "REQSYS_URL": "http://127.0.0.1:8001"}
ROUTES: dict[EventType, tuple[str, str]] = {
    **{t: ("CHILDSYS_URL", f"/enterwait/{t.lower()}") for t in EventType if t in FROM_REQSYS},
    **{t: ("REQSYS_URL", f"/request/{t.lower()}") for t in EventType if t in FROM_CHILDSYS},
}  # REMIND goes to the email queue only


class DeliveryFailed(RecordFailed):
    """The target did not accept the event (retried, then dead-lettered)."""


def target_url(event_type: EventType) -> str:
    variable, path = ROUTES[event_type]
    base = os.environ.get(variable) or (LOCAL_DEFAULTS[variable] if os.environ.get("AWS_ENDPOINT_URL") else "")
    if not base:
        raise RuntimeError(f"{variable} is not set; the forward function needs the app's base URL")
    if not base.startswith(("https://", "http://")):
        raise RuntimeError(f"{variable} must be an http(s) URL")
    return base.rstrip("/") + path


def parse(body: str) -> tuple[Envelope, bytes]:
    """The envelope in an SQS body (an EventBridge event, or a bare envelope) and the bytes to post."""
    envelope = envelope_in(body)
    return envelope, envelope.to_json().encode()


def deliver(envelope: Envelope, body: bytes, secret: str) -> str:
    """POST the signed envelope to its target; returns the answer's status, raises DeliveryFailed."""
    url = target_url(envelope.type)
    headers = {"Content-Type": "application/json", "X-Correlation-Id": envelope.event_id, **sign(secret, body)}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - http(s) only, see target_url
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            answer = response.read(2048)
            status = response.status
    except urllib.error.HTTPError as err:
        code = _error_code(err)
        raise DeliveryFailed(f"event {envelope.event_id} ({envelope.type}) -> {url}: HTTP {err.code}"
                             + (f" {code}" if code else ""), status=err.code) from None
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DeliveryFailed(f"event {envelope.event_id} ({envelope.type}) -> {url}: {reason}") from None
    if not 200 <= status < 300:
        raise DeliveryFailed(f"event {envelope.event_id} ({envelope.type}) -> {url}: HTTP {status}", status=status)
    try:
        result = str(json.loads(answer).get("status", ""))
    except (ValueError, AttributeError):
        result = ""
    log.info("event delivered to %s: %s", url, result or status, extra=fields(envelope, status=status))
    return result


def handler(event: dict, context: Any = None) -> dict:
    setup("pipeline")
    config = settings()
    secret = config.sync_secret
    if not secret:
        raise RuntimeError("SYNC_SECRET is not set")  # the whole batch stays on the queue
    try:
        table = config.resource("IDEMPOTENCY_TABLE")
    except KeyError:
        table = None
    return process_sqs_batch(event, lambda record: deliver(*parse(record["body"]), secret), hop="forward",
                             failures_table=table, context=context)


def _error_code(err: urllib.error.HTTPError) -> str:
    """The `error.code` of the app's JSON error answer (e.g. conflict), if it has one."""
    try:
        return str(json.loads(err.read(2048))["error"]["code"])[:50]
    except Exception:
        return ""
