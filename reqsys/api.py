"""reqsys's JSON routes for parents (bearer token): the seed's /enterwait routes and the portal's additions."""

from __future__ import annotations

import logging

from flask import Blueprint, g, jsonify, request

from reqsys import offers, proofs, services
from shared.platform.auth import api_auth_required
from shared.platform.payloads import load_json
from shared.waitlist.body import ApplicationBody

log = logging.getLogger(__name__)


api = Blueprint("enterwait", __name__)


@api.get("/enterwait")
@api_auth_required("parents", "admins")
def list_applications():
    """The parent's own applications (with rank and score); an admin sees everyone's, a page at a time
    (`?cursor=` from the last page's `next_cursor`)."""
    if not g.identity.is_admin:
        rows = services.list_applications(g.identity)
        return jsonify(applications=[services.application_dict(row, place) for row, place in rows])
    rows, next_cursor = services.list_all_applications(g.identity, request.args.get("cursor"))
    return jsonify(applications=[services.application_dict(row, place) for row, place in rows],
                   next_cursor=next_cursor)


def _answer(application, status: int = 200, **extra):
    return jsonify(application=services.application_dict(application, services.queue_place(application)),
                   **extra), status


@api.post("/enterwait/request")
@api_auth_required("parents")
def request_application():
    application, place = services.apply_placed(g.identity, load_json(ApplicationBody))
    return jsonify(application=services.application_dict(application, place)), 201


@api.post("/enterwait/cancel")
@api_auth_required("parents")
def cancel_application():
    return _answer(services.cancel(g.identity, load_json(services.ApplicationIds)))


@api.post("/enterwait/confirm")
@api_auth_required("parents")
def confirm_offer():
    application, withdrawn = offers.confirm(g.identity, load_json(services.ApplicationIds))
    return _answer(application, withdrawn=[other.request_id for other in withdrawn])


@api.post("/enterwait/decline")
@api_auth_required("parents")
def decline_offer():
    return _answer(offers.decline(g.identity, load_json(services.ApplicationIds)))


@api.post("/enterwait/proofs/upload")
@api_auth_required("parents")
def proof_upload_form():
    """A presigned POST for one proof document: post the file to `url` with `fields`, then register `key`."""
    return jsonify(upload=proofs.upload_form(g.identity, load_json(proofs.UploadRequest)))


@api.post("/enterwait/proofs")
@api_auth_required("parents")
def register_proof():
    return _answer(proofs.register(g.identity, load_json(proofs.Uploaded)))
