"""The seed's sync endpoints of reqsys: childsys's decisions, forwarded by the pipeline (see shared.sync)."""

from flask import Blueprint, jsonify

from reqsys import services
from shared.events import EventType
from shared.sync import signed_envelope

bp = Blueprint("sync", __name__)


@bp.post("/request/accept")
def accept():
    return jsonify(status=services.apply_sync(signed_envelope(EventType.ACCEPT)))


@bp.post("/request/reject")
def reject():
    return jsonify(status=services.apply_sync(signed_envelope(EventType.REJECT)))
