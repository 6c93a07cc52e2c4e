"""childsys's JSON routes for staff (bearer token): the seed's /request routes and the portal's additions."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from childsys import audit, capacity, services
from childsys.forms import AuditQuery, DaycareQuery, ListQuery
from shared.platform.auth import api_auth_required
from shared.platform.events import EventType
from shared.platform.payloads import load_json, load_query

STAFF = ("staff", "admins")
api = Blueprint("api", __name__)



@api.get("/request")
@api_auth_required(*STAFF)
def api_list():
    """One daycare's applications: waiting ones first in rank order (with `rank` and `score`)."""
    query = load_query(ListQuery)
    rows, total = services.list_applications(g.identity, query.nursery_id, query.status, query.sort == "newest",
                                             query.page, query.klass)
    return jsonify(applications=[services.application_dict(a, rank) for a, rank in rows], total=total)


def _decided(application):
    return jsonify(application=services.application_dict(application, services.rank_in_queue(application)))


@api.post("/request/accept")
@api_auth_required(*STAFF)
def api_accept():
    """Offer a place; 409 `class_full` unless there is a free place in the child's class or an override_reason."""
    return _decided(services.decide(g.identity, load_json(services.DecisionBody), EventType.OFFER))


@api.post("/request/reject")
@api_auth_required(*STAFF)
def api_reject():
    return _decided(services.decide(g.identity, load_json(services.DecisionBody), EventType.REJECT))


@api.post("/request/verify")
@api_auth_required(*STAFF)
def api_verify():
    return _decided(services.verify(g.identity, load_json(services.VerifyBody)))


@api.get("/api/classes")
@api_auth_required(*STAFF)
def api_classes():
    classes = capacity.list_classes(g.identity, load_query(DaycareQuery).nursery_id)
    return jsonify(classes=[c.to_dict() for c in classes])


@api.get("/api/audit")
@api_auth_required(*STAFF)
def api_audit():
    query = load_query(AuditQuery)
    entries, total = audit.list_audit(g.identity, query.nursery_id, query.type, query.q, query.actor, query.page)
    return jsonify(entries=[audit.entry_dict(entry, application) for entry, application in entries], total=total,
                   page_size=audit.PAGE_SIZE)


@api.get("/api/applications/<request_id>/criteria/<code>/proof")
@api_auth_required(*STAFF)
def api_proof(request_id: str, code: str):
    return jsonify(url=services.proof_link(g.identity, request_id, code), expires_in=120)
