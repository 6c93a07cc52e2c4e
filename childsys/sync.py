"""The seed's sync endpoints of childsys: parents' requests and cancellations, forwarded by the pipeline."""

from flask import Blueprint, jsonify

from childsys import services
from shared.events import EventType
from shared.sync import signed_envelope

bp = Blueprint("sync", __name__)


@bp.post("/enterwait/request")
def request_sync():
    return jsonify(status=services.apply_sync(signed_envelope(EventType.REQUEST)))


@bp.post("/enterwait/cancel")
def cancel_sync():
    return jsonify(status=services.apply_sync(signed_envelope(EventType.CANCEL)))
