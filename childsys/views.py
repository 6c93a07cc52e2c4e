"""childsys pages (staff of one daycare; admins for any) and JSON routes, thin over childsys.services."""

from __future__ import annotations

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import InputRequired, Length

from childsys import services
from childsys.models import Nursery, db
from shared.auth import api_auth_required, login_required
from shared.auth.forms import EmptyForm
from shared.errors import ApiError
from shared.events import EventType
from shared.payloads import load_json

bp = Blueprint("main", __name__)
api = Blueprint("api", __name__)

STAFF = ("staff", "admins")


class RejectForm(FlaskForm):
    reason = TextAreaField(_l("Reason for the rejection"), validators=[
        InputRequired(_l("Give a reason for the rejection.")), Length(max=500)])


# served at "/" as the app's "home" endpoint (see create_app)
@login_required()
def index():
    identity = g.identity
    if not identity.in_any(*STAFF) or not (identity.daycare_id or identity.is_admin):
        return render_template("childsys/index.html", nursery=None, counts=None)
    return redirect(url_for("main.applications"))


def _nursery_id() -> str:
    return services.staff_daycare(g.identity, request.args.get("nursery_id"))


@bp.get("/applications")
@login_required(*STAFF)
def applications():
    nursery_id = _nursery_id()
    status = request.args.get("status") or None
    newest = request.args.get("sort") == "newest"
    page = max(request.args.get("page", 1, type=int), 1)
    rows, total = services.list_applications(g.identity, nursery_id, status, newest, page)
    return render_template(
        "childsys/applications.html", applications=rows, total=total, page=page, status=status, newest=newest,
        pages=max((total + services.PAGE_SIZE - 1) // services.PAGE_SIZE, 1),
        counts=services.status_counts(g.identity, nursery_id), nursery=db.session.get(Nursery, nursery_id))


@bp.get("/applications/<request_id>")
@login_required(*STAFF)
def detail(request_id: str):
    application = services.get_application(g.identity, request_id)
    return render_template("childsys/detail.html", application=application, form=EmptyForm(),
                           reject_form=RejectForm())


@bp.post("/applications/<request_id>/accept")
@login_required(*STAFF)
def accept(request_id: str):
    application = services.get_application(g.identity, request_id)
    return _decide(application, EventType.ACCEPT, None)


@bp.post("/applications/<request_id>/reject")
@login_required(*STAFF)
def reject(request_id: str):
    application = services.get_application(g.identity, request_id)
    form = RejectForm()
    if not form.validate_on_submit():
        return render_template("childsys/detail.html", application=application, form=EmptyForm(),
                               reject_form=form), 400
    return _decide(application, EventType.REJECT, form.reason.data)


def _decide(application, event_type: EventType, reason: str | None):
    body = {"child_id": application.child_id, "nursery_id": application.nursery_id, "reason": reason}
    try:
        services.decide(g.identity, body, event_type)
    except ApiError as err:
        if err.status != 409:
            raise
        flash(err.message, "error")
    else:
        flash(_("Accepted: %(name)s is enrolled.", name=application.child_name) if event_type is EventType.ACCEPT
              else _("Rejected: %(name)s.", name=application.child_name), "success")
    return redirect(url_for("main.detail", request_id=application.request_id))


@bp.get("/enrolled")
@login_required(*STAFF)
def enrolled():
    nursery_id = _nursery_id()
    return render_template("childsys/enrolled.html", enrollments=services.list_enrollments(g.identity, nursery_id),
                           nursery=db.session.get(Nursery, nursery_id))


# --- JSON (bearer token) -----------------------------------------------------------------------------


@api.get("/request")
@api_auth_required(*STAFF)
def api_list():
    rows, total = services.list_applications(
        g.identity, request.args.get("nursery_id"), request.args.get("status") or None,
        request.args.get("sort") == "newest", max(request.args.get("page", 1, type=int), 1))
    return jsonify(applications=[services.application_dict(a) for a in rows], total=total)


@api.post("/request/accept")
@api_auth_required(*STAFF)
def api_accept():
    body = load_json(services.DecisionBody)
    return jsonify(application=services.application_dict(services.decide(g.identity, body, EventType.ACCEPT)))


@api.post("/request/reject")
@api_auth_required(*STAFF)
def api_reject():
    body = load_json(services.DecisionBody)
    return jsonify(application=services.application_dict(services.decide(g.identity, body, EventType.REJECT)))
