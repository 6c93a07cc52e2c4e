"""The seed's sync endpoints: childsys's decisions, forwarded by the pipeline (machine to machine).

`POST /request/accept` and `POST /request/reject` take the event Envelope as JSON. The HMAC
signature (shared.signing, SYNC_SECRET) is the only authentication; they have no user and no
CSRF token (their paths are JSON prefixes). Idempotent: a repeated or older event answers
200 {"status": "ignored"}.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request
from pydantic import ValidationError

from reqsys import services
from shared.errors import ApiError, Unauthorized, ValidationFailed
from shared.events import Envelope, EventType
from shared.signing import verify

log = logging.getLogger(__name__)

bp = Blueprint("sync", __name__)


def _envelope(expected: EventType) -> Envelope:
    body = request.get_data(cache=True)
    if not verify(current_app.config["SETTINGS"].sync_secret, body, request.headers):
        log.warning("sync call to %s refused: missing, wrong or expired signature", request.path)
        raise Unauthorized("A valid signature is required")
    try:
        envelope = Envelope.from_json(body)
    except ValidationError as err:
        fields = {".".join(str(p) for p in e["loc"]) or "body": e["msg"] for e in err.errors()}
        if any(e["type"] == "json_invalid" for e in err.errors()):
            raise ApiError(400, "malformed_json", "The body must be a JSON event envelope") from None
        raise ValidationFailed(fields) from None
    if envelope.type is not expected:
        raise ValidationFailed({"type": f"must be {expected} on this path"})
    return envelope


@bp.post("/request/accept")
def accept():
    return jsonify(status=services.apply_sync(_envelope(EventType.ACCEPT)))


@bp.post("/request/reject")
def reject():
    return jsonify(status=services.apply_sync(_envelope(EventType.REJECT)))
