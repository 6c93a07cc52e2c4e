"""The receiving end of the pipeline's signed sync calls, shared by reqsys and childsys.

The HMAC signature (shared.platform.signing, SYNC_SECRET) is the only authentication of these
machine-to-machine routes; they have no user and no CSRF token (their paths are JSON
prefixes). Endpoints are idempotent: a repeated or older event answers {"status": "ignored"} (the same
event delivered twice at once too: the apps run apply_sync again after the other delivery's commit,
shared.platform.db.retry_on_race, and then find its event id).
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request
from pydantic import ValidationError

from shared.platform.errors import ApiError, Unauthorized, ValidationFailed
from shared.platform.events import Envelope, EventType
from shared.platform.logs import fields
from shared.platform.payloads import JSONTooLarge, check_json_bounds, field_errors
from shared.platform.signing import verify

log = logging.getLogger(__name__)


def signed_envelope(expected: EventType) -> Envelope:
    """The request's envelope: 401 unless signed within the time window, 400 unless valid and of `expected` type."""
    body = request.get_data(cache=True)
    if not verify(current_app.config["SETTINGS"].sync_secret, body, request.headers):
        log.warning("sync call to %s refused: missing, wrong or expired signature", request.path)
        raise Unauthorized("A valid signature is required")
    try:
        check_json_bounds(body)
    except JSONTooLarge as err:
        raise ApiError(400, "malformed_json", str(err)) from None
    try:
        envelope = Envelope.from_json(body)
    except ValidationError as err:
        if any(e["type"] == "json_invalid" for e in err.errors()):
            raise ApiError(400, "malformed_json", "The body must be a JSON event envelope") from None
        raise ValidationFailed(field_errors(err)) from None
    if envelope.type is not expected:
        raise ValidationFailed({"type": f"must be {expected} on this path"})
    return envelope


def sync_blueprint(prefix: str, event_types, apply_sync) -> Blueprint:
    """One signed POST endpoint per event type, at `{prefix}/{type in lower case}`, each answering
    {"status": apply_sync(envelope)} ("applied" or "ignored")."""
    bp = Blueprint("sync", __name__)

    def endpoint(event_type: EventType):
        def view():
            envelope = signed_envelope(event_type)
            status = apply_sync(envelope)
            log.info("sync event %s", status, extra=fields(envelope, app=current_app.name))
            return jsonify(status=status)

        return view

    for event_type in event_types:
        bp.add_url_rule(f"{prefix}/{event_type.lower()}", endpoint=event_type.lower(), view_func=endpoint(event_type),
                        methods=["POST"])
    return bp
