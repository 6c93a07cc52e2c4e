"""childsys pages (staff of one daycare; admins for any) and JSON routes, thin over childsys.services,
childsys.capacity and childsys.audit."""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from pydantic import BaseModel, ConfigDict, Field
from wtforms import IntegerField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from childsys import audit, capacity, services
from childsys.models import Nursery, db
from shared.platform.auth import api_auth_required, login_required
from shared.platform.auth.forms import EmptyForm
from shared.platform.errors import ApiError, Conflict
from shared.platform.events import EventType
from shared.platform.payloads import load_json, load_query
from shared.waitlist.body import NURSERY_ID
from shared.waitlist.calendar import OLDEST_CLASS
from shared.waitlist.criteria import CriterionStatus, configured_criteria
from shared.waitlist.rules import EVENT_LABELS, Status, staff_daycare

bp = Blueprint("main", __name__)
api = Blueprint("api", __name__)

STAFF = ("staff", "admins")
STATUS_LABELS = {
    "REQUESTED": _l("Waiting for a place"), "ACCEPTED": _l("Offered"), "ENROLLED": _l("Place confirmed"),
    "REJECTED": _l("Rejected"),
    "DECLINED": _l("Declined by the parent"), "EXPIRED": _l("Offer expired"), "WITHDRAWN": _l("Withdrawn"),
    "CANCELLED": _l("Cancelled"),
}
CRITERION_LABELS = {"PENDING": _l("To check"), "VERIFIED": _l("Verified"), "REJECTED": _l("Not accepted")}


@bp.app_context_processor
def _labels():
    return {"status_labels": STATUS_LABELS, "event_labels": EVENT_LABELS, "criterion_labels": CRITERION_LABELS,
            "status_names": {status.code: status.name for status in Status}, "locale": str(get_locale() or "ko")}


class RejectForm(FlaskForm):
    reason = TextAreaField(_l("Reason for the rejection"), validators=[
        InputRequired(_l("Give a reason for the rejection.")), Length(max=500)])


class OfferForm(FlaskForm):
    override_reason = TextAreaField(_l("Reason for offering beyond the class's places"),
                                    validators=[Optional(), Length(max=500)])


class CriterionRejectForm(FlaskForm):
    reason = StringField(_l("Why it is not accepted"), validators=[
        InputRequired(_l("Give a reason for not accepting the criterion.")), Length(max=500)])


class PlacesForm(FlaskForm):
    """Places per class; an empty field means no limit is set."""


for _class in capacity.CLASSES:
    setattr(PlacesForm, f"class_{_class}", IntegerField(
        _l("%(n)d-year class", n=_class), validators=[Optional(), NumberRange(0, capacity.MAX_PLACES)]))


# served at "/" as the app's "home" endpoint (see create_app)
@login_required()
def index():
    """Staff go to their daycare's applications; admins (of no daycare) choose a daycare first."""
    identity = g.identity
    if identity.in_any("staff") and identity.daycare_id:
        return redirect(url_for("main.applications"))
    nurseries = db.session.scalars(db.select(Nursery).order_by(Nursery.name)).all() if identity.is_admin else []
    return render_template("childsys/index.html", nurseries=nurseries)


DAYCARE_PAGES = frozenset({"main.applications", "main.classes", "main.enrolled"})


class DaycareQuery(BaseModel):
    """The query string of every daycare page and list (400 naming a bad parameter)."""

    model_config = ConfigDict(extra="ignore")

    nursery_id: str | None = Field(default=None, max_length=10, pattern=NURSERY_ID)
    page: int = Field(default=1, ge=1, le=100_000)


class ListQuery(DaycareQuery):
    status: str | None = None  # a status name (services.parse_status); the page also takes ALL
    sort: Literal["rank", "newest"] = "rank"
    klass: int | None = Field(default=None, alias="class", ge=0, le=OLDEST_CLASS)


class AuditQuery(DaycareQuery):
    type: str | None = Field(default=None, max_length=10)  # an event type (audit.list_audit)
    q: str | None = Field(default=None, max_length=50)  # part of a child's name or a request id
    actor: str | None = Field(default=None, max_length=254)


def _nursery_id() -> str | None:
    """The daycare a page is about: a staff member's own; for an admin the one chosen (None until then)."""
    chosen = load_query(DaycareQuery).nursery_id
    if g.identity.is_admin and not chosen and not g.identity.daycare_id:
        return None
    g.nursery_id = staff_daycare(g.identity, chosen)
    return g.nursery_id


@bp.url_defaults
def _keep_daycare(endpoint: str, values: dict) -> None:
    """An admin looking at one daycare stays on it from page to page (links, forms, redirects)."""
    nursery_id = g.get("nursery_id") or (request.args.get("nursery_id") if request else None)
    if endpoint in DAYCARE_PAGES and nursery_id and "identity" in g and g.identity.is_admin:
        values.setdefault("nursery_id", nursery_id)


@bp.get("/applications")
@login_required(*STAFF)
def applications():
    """The waiting list in rank order (other statuses by tab), the places per class, and what to offer next."""
    nursery_id = _nursery_id()
    if nursery_id is None:
        return redirect(url_for("home"))
    query = load_query(ListQuery)
    status = None if query.status == "ALL" else query.status or "REQUESTED"
    klass, newest, page = query.klass, query.sort == "newest", query.page
    counts = services.status_counts(g.identity, nursery_id)
    known = None if klass is not None else (counts[status] if status else sum(counts.values()))
    rows, total = services.list_applications(g.identity, nursery_id, status, newest, page, klass, known)
    classes = capacity.class_places(nursery_id)
    return render_template(
        "childsys/applications.html", applications=rows, total=total, page=page, status=status or "ALL",
        newest=newest, klass_filter=klass, pages=max((total + services.PAGE_SIZE - 1) // services.PAGE_SIZE, 1),
        counts=counts, classes=classes,
        prompts=capacity.offer_prompts(nursery_id, classes), released=capacity.released_offers(nursery_id),
        nursery=db.session.get(Nursery, nursery_id), nursery_id=nursery_id, criteria=configured_criteria(),
        form=EmptyForm())


def _detail(application, offer_form=None, reject_form=None, full: bool = False, status: int = 200):
    g.nursery_id = application.nursery_id  # its daycare's pages are one link away
    [places] = capacity.class_places(application.nursery_id, only=application.age_class) \
        if application.age_class is not None else [None]
    return render_template(
        "childsys/detail.html", application=application, rank=services.rank_in_queue(application),
        places=places, full=full or (places is not None and places.free is not None and places.free <= 0),
        criteria=configured_criteria(), form=EmptyForm(), offer_form=offer_form or OfferForm(),
        reject_form=reject_form or RejectForm(), deadline_days=current_app.config["SETTINGS"].offer_days,
    ), status


@bp.get("/applications/<request_id>")
@login_required(*STAFF)
def detail(request_id: str):
    return _detail(services.get_application(g.identity, request_id))


def _back(application):
    """Back to the list the action came from (same site only), else to the application."""
    target = request.form.get("back", "")
    if target.startswith("/applications") and "//" not in target:
        return redirect(target)
    return redirect(url_for("main.detail", request_id=application.request_id))


def _ids(application, **extra) -> dict:
    return {"child_id": application.child_id, "nursery_id": application.nursery_id, **extra}


@bp.post("/applications/<request_id>/accept")
@login_required(*STAFF)
def accept(request_id: str):
    """Offer a place (the page's "accept"); into a full class only with an override reason."""
    application = services.get_application(g.identity, request_id)
    form = OfferForm()
    if not form.validate_on_submit():
        return _detail(application, offer_form=form, status=400)
    try:
        services.decide(g.identity, _ids(application, override_reason=form.override_reason.data or None),
                        EventType.OFFER)
    except capacity.ClassFull as err:
        flash(_("The %(n)d-year class is full (%(places)d places: %(enrolled)d enrolled, %(offered)d offered). "
                "To offer a place anyway, give the reason for the override.", n=err.places.age_class,
                places=err.places.places, enrolled=err.places.enrolled, offered=err.places.offered), "error")
        return _detail(services.get_application(g.identity, request_id), offer_form=form, full=True, status=409)
    except Conflict:
        flash(_("This application is no longer waiting."), "error")
        return redirect(url_for("main.detail", request_id=request_id))
    flash(_("Accepted: a place is offered to %(name)s. The parent has %(days)d days to answer.",
            name=application.child_name, days=current_app.config["SETTINGS"].offer_days), "success")
    return _back(application)


@bp.post("/applications/<request_id>/reject")
@login_required(*STAFF)
def reject(request_id: str):
    application = services.get_application(g.identity, request_id)
    form = RejectForm()
    if not form.validate_on_submit():
        return _detail(application, reject_form=form, status=400)
    try:
        services.decide(g.identity, _ids(application, reason=form.reason.data), EventType.REJECT)
    except Conflict:
        flash(_("This application is no longer waiting."), "error")
    else:
        flash(_("Rejected: %(name)s.", name=application.child_name), "success")
    return redirect(url_for("main.detail", request_id=request_id))


@bp.post("/applications/<request_id>/criteria/<code>/<verdict>")
@login_required(*STAFF)
def verify(request_id: str, code: str, verdict: str):
    application = services.get_application(g.identity, request_id)
    if verdict not in ("verify", "reject"):
        abort(404)
    form = CriterionRejectForm() if verdict == "reject" else EmptyForm()
    if not form.validate_on_submit():
        flash(_("Give a reason for not accepting the criterion."), "error")
        return redirect(url_for("main.detail", request_id=request_id, _anchor=f"criterion-{code}"))
    status = CriterionStatus.REJECTED if verdict == "reject" else CriterionStatus.VERIFIED
    try:
        services.verify(g.identity, _ids(application, criterion=code, status=status.value,
                                         reason=getattr(form, "reason", None) and form.reason.data))
    except ApiError as err:
        if err.status not in (404, 409):
            raise
        flash(_("No proof document has been uploaded for this criterion yet.") if err.code == "proof_missing"
              else _("Criteria can be checked only while the application is waiting."), "error")
    else:
        flash(_("The criterion is verified: it now counts towards the score.") if status is CriterionStatus.VERIFIED
              else _("The criterion is not accepted; the parent is told why."), "success")
    return redirect(url_for("main.detail", request_id=request_id, _anchor=f"criterion-{code}"))


@bp.get("/applications/<request_id>/criteria/<code>/proof")
@login_required(*STAFF)
def proof(request_id: str, code: str):
    """The proof document, through a link that works for two minutes."""
    return redirect(services.proof_link(g.identity, request_id, code))


@bp.get("/enrolled")
@login_required(*STAFF)
def enrolled():
    nursery_id = _nursery_id()
    if nursery_id is None:
        return redirect(url_for("home"))
    return render_template("childsys/enrolled.html", enrollments=services.list_enrollments(g.identity, nursery_id),
                           nursery=db.session.get(Nursery, nursery_id))


@bp.route("/classes", methods=["GET", "POST"])
@login_required(*STAFF)
def classes():
    """Places per class: free = places - enrolled - offered. Staff and admins may change the places."""
    nursery_id = _nursery_id()
    if nursery_id is None:
        return redirect(url_for("home"))
    form = PlacesForm()
    status = 200
    if form.validate_on_submit():
        capacity.set_places(g.identity, nursery_id,
                            {k: getattr(form, f"class_{k}").data for k in capacity.CLASSES})
        flash(_("The places are saved."), "success")
        return redirect(url_for("main.classes"))
    if form.errors:
        status = 400
    rows = capacity.class_places(nursery_id)
    if request.method == "GET":
        for row in rows:
            getattr(form, f"class_{row.age_class}").data = row.places
    return render_template("childsys/classes.html", classes=rows, form=form,
                           nursery=db.session.get(Nursery, nursery_id)), status


@bp.get("/audit")
@login_required(*STAFF)
def audit_log():
    """Who did what to which application, and when; staff see their daycare's, admins everyone's."""
    query = load_query(AuditQuery)
    page = query.page
    entries, total = audit.list_audit(g.identity, query.nursery_id, query.type, query.q, query.actor, page)
    nurseries = db.session.scalars(db.select(Nursery).order_by(Nursery.name)).all() if g.identity.is_admin else []
    return render_template("childsys/audit.html", entries=entries, total=total, page=page,
                           pages=max((total + audit.PAGE_SIZE - 1) // audit.PAGE_SIZE, 1), filters=request.args,
                           types=list(EVENT_LABELS), nurseries=nurseries, criteria=configured_criteria())


# --- JSON (bearer token) -----------------------------------------------------------------------------


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
