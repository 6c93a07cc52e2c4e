"""reqsys pages (parents, session) and JSON routes (bearer token).

Views stay thin: the rules live in reqsys.services, reqsys.offers and reqsys.proofs; a page
turns the service's field errors into messages next to its form fields and a 409 into a flash
message.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    EmailField,
    HiddenField,
    MonthField,
    SelectField,
    SelectMultipleField,
    StringField,
    TelField,
)
from wtforms.validators import InputRequired, Length, Optional

from reqsys import offers, proofs, services
from reqsys.models import Nursery, db
from shared.platform.auth import api_auth_required, login_required
from shared.platform.auth.forms import EmptyForm, from_e164
from shared.platform.errors import Conflict, ValidationFailed
from shared.platform.payloads import load_json
from shared.waitlist.body import ApplicationBody
from shared.waitlist.calendar import add_months, default_start, this_month
from shared.waitlist.criteria import CriterionStatus, configured_criteria
from shared.waitlist.rules import MAX_ACTIVE, MAX_ACTIVE_WHEN_ENROLLED, Status

log = logging.getLogger(__name__)

bp = Blueprint("main", __name__)
api = Blueprint("enterwait", __name__)

STATUS_LABELS = {
    Status.REQUESTED: _l("Waiting for a place"),
    Status.ACCEPTED: _l("Place offered"),
    Status.ENROLLED: _l("Place confirmed"),
    Status.REJECTED: _l("Rejected"),
    Status.DECLINED: _l("Offer declined"),
    Status.EXPIRED: _l("Offer expired"),
    Status.WITHDRAWN: _l("Withdrawn"),
    Status.CANCELLED: _l("Cancelled"),
}
EVENT_LABELS = {
    "REQUEST": _l("Application sent"),
    "CANCEL": _l("Cancelled by you"),
    "ACCEPT": _l("Accepted by the daycare"),
    "REJECT": _l("Rejected by the daycare"),
    "OFFER": _l("The daycare offered a place"),
    "CONFIRM": _l("You confirmed the place"),
    "DECLINE": _l("You declined the offer"),
    "EXPIRE": _l("The offer expired"),
    "WITHDRAW": _l("Withdrawn: enrolled at another daycare"),
    "REMIND": _l("Reminder sent"),
    "VERIFY": _l("A priority criterion was checked"),
    "PROOF": _l("Proof document uploaded"),
}
CRITERION_LABELS = {
    CriterionStatus.PENDING.value: _l("Waiting for the daycare to check"),
    CriterionStatus.VERIFIED.value: _l("Verified"),
    CriterionStatus.REJECTED.value: _l("Not accepted"),
}
# the service's field names -> what a parent is told next to the field
FIELD_MESSAGES = {
    "child_id": _l("Enter the child's ID: letters, numbers and hyphens, up to 20."),
    "name": _l("Enter the child's name (up to 50 characters)."),
    "child_name": _l("Enter the child's name (up to 50 characters)."),
    "birthday": _l("Enter a real date that is not in the future."),
    "child_birthday": _l("Enter a real date that is not in the future."),
    "parent_name": _l("Enter your name (up to 50 characters)."),
    "parent_tel": _l("Enter a phone number like 010-1234-5678."),
    "parent_address": _l("Enter your address."),
    "parent_postcode": _l("Enter the 5-digit postcode."),
    "parent_email": _l("Enter a valid email address."),
    "nursery_id": _l("This daycare does not exist."),
    "desired_start": _l("Choose a month from this month up to two years ahead in which the child is at most in 5세반."),
    "criteria": _l("Choose only the criteria listed."),
}
ALREADY_REGISTERED = _l("You have already registered a child with this ID.")


@bp.app_context_processor
def _labels():
    return {"status_labels": STATUS_LABELS, "event_labels": EVENT_LABELS, "criterion_labels": CRITERION_LABELS,
            "Status": Status, "locale": str(get_locale() or "ko")}


# --- forms -------------------------------------------------------------------------------------------


class ChildForm(FlaskForm):
    child_id = StringField(_l("Child ID"), validators=[InputRequired(FIELD_MESSAGES["child_id"]), Length(max=20)],
                           render_kw={"inputmode": "numeric", "autocomplete": "off"})
    name = StringField(_l("Child's name"), validators=[InputRequired(FIELD_MESSAGES["name"]), Length(max=50)])
    birthday = DateField(_l("Birthday"), validators=[InputRequired(FIELD_MESSAGES["birthday"])])


class ApplyForm(FlaskForm):
    child = SelectField(_l("Child"), coerce=int, validators=[InputRequired(_l("Choose a child."))])
    desired_start = MonthField(_l("Desired start month"), validators=[Optional()])  # empty: next month
    criteria = SelectMultipleField(_l("Priority criteria"), validators=[Optional()])
    parent_name = StringField(_l("Parent's name"), validators=[InputRequired(FIELD_MESSAGES["parent_name"])],
                              render_kw={"autocomplete": "name"})
    parent_tel = TelField(_l("Phone"), validators=[InputRequired(FIELD_MESSAGES["parent_tel"])],
                          render_kw={"autocomplete": "tel", "inputmode": "tel"})
    parent_email = EmailField(_l("Email"), validators=[InputRequired(FIELD_MESSAGES["parent_email"])],
                              render_kw={"autocomplete": "email"})
    parent_address = StringField(_l("Address"), validators=[InputRequired(FIELD_MESSAGES["parent_address"])],
                                 render_kw={"autocomplete": "street-address"})
    parent_postcode = StringField(_l("Postcode"), validators=[InputRequired(FIELD_MESSAGES["parent_postcode"])],
                                  render_kw={"autocomplete": "postal-code", "inputmode": "numeric"})


class ProofForm(FlaskForm):
    key = HiddenField(validators=[InputRequired(_l("Choose a file to upload."))])


def _show_field_errors(form: FlaskForm, err: ValidationFailed, aliases: dict[str, str] | None = None) -> None:
    for name, message in err.fields.items():
        target = getattr(form, (aliases or {}).get(name, name), None)
        text = ALREADY_REGISTERED if message == "is already registered" else FIELD_MESSAGES.get(name)
        if target is not None and hasattr(target, "errors"):
            target.errors = [*target.errors, text or message]
        else:
            flash(text or message, "error")


# --- pages -------------------------------------------------------------------------------------------


# served at "/" as the app's "home" endpoint (see create_app)
def index():
    return render_template("reqsys/index.html")


@bp.get("/nurseries")
def nurseries():
    query = request.args.get("q", "").strip()[:50]
    stmt = db.select(Nursery).order_by(Nursery.name)
    if query:
        like = f"%{query}%"
        stmt = stmt.where(db.or_(Nursery.name.like(like), Nursery.area.like(like), Nursery.address.like(like)))
    return render_template("reqsys/nurseries.html", nurseries=db.session.scalars(stmt).all(), query=query)


@bp.route("/children", methods=["GET", "POST"])
@login_required("parents")
def children():
    form = ChildForm()
    if form.validate_on_submit():
        try:
            child = services.register_child(g.identity, {
                "child_id": form.child_id.data, "name": form.name.data, "birthday": form.birthday.data})
        except ValidationFailed as err:
            _show_field_errors(form, err)
        else:
            flash(_("%(name)s is registered.", name=child.name), "success")
            return redirect(url_for("main.children"))
    status = 400 if form.errors else 200
    return render_template("reqsys/children.html", form=form, children=services.list_children(g.identity)), status


def _prefill(form: ApplyForm) -> None:
    """The parent's details from the last application, else from the account."""
    identity = g.identity
    form.desired_start.data = datetime.strptime(default_start(), "%Y-%m").date()
    last = services.last_application(identity)
    if last is not None:
        for name in ("parent_name", "parent_tel", "parent_email", "parent_address", "parent_postcode"):
            getattr(form, name).data = getattr(last, name)
        return
    form.parent_name.data = identity.name
    form.parent_email.data = identity.email
    try:
        from shared.platform.auth import cognito

        profile = cognito.get_profile(current_app.config["SETTINGS"].cognito_userpool_id, identity.email)
        if profile.get("phone_number"):
            form.parent_tel.data = from_e164(profile["phone_number"])
    except Exception:  # prefilling is a convenience: the parent can type the number
        log.info("could not read the profile of %s for prefilling", identity.sub, exc_info=True)


@bp.route("/nurseries/<nursery_id>/apply", methods=["GET", "POST"])
@login_required("parents")
def apply(nursery_id: str):
    nursery = db.session.get(Nursery, nursery_id)
    if nursery is None:
        abort(404)
    kids = services.list_children(g.identity)
    if not kids:
        flash(_("Register your child first, then apply."), "info")
        return redirect(url_for("main.children"))
    config = configured_criteria()
    form = ApplyForm()
    form.child.choices = [(kid.id, f"{kid.name} ({kid.birthday:%Y-%m-%d})") for kid in kids]
    form.criteria.choices = [(code, code) for code in config]
    if request.method == "GET":
        _prefill(form)
    status = 200
    if form.validate_on_submit():
        child = services.get_child(g.identity, form.child.data)
        body = {
            "child_id": child.child_id, "child_name": child.name, "child_birthday": f"{child.birthday:%Y%m%d}",
            "nursery_id": nursery.nursery_id,
            "desired_start": f"{form.desired_start.data:%Y-%m}" if form.desired_start.data else None,
            "criteria": form.criteria.data or [],
            **{name: (getattr(form, name).data or "").strip()
               for name in ("parent_name", "parent_tel", "parent_email", "parent_address", "parent_postcode")},
        }
        try:
            application = services.apply(g.identity, body)
        except ValidationFailed as err:
            aliases = {"child_id": "child", "child_name": "child", "child_birthday": "child"}
            _show_field_errors(form, err, aliases)
        except services.LimitReached as err:
            flash(_("%(child)s already waits at %(limit)d daycares, the most allowed. Cancel one of them to apply "
                    "here.", child=child.name, limit=err.limit), "error")
            status = 409
        except Conflict:
            flash(_("%(child)s already has an active application at %(nursery)s.", child=child.name,
                    nursery=nursery.name), "error")
            return redirect(url_for("main.applications"))
        else:
            flash(_("The application for %(child)s to %(nursery)s is sent.", child=child.name,
                    nursery=nursery.name), "success")
            if any(c.code in config and config[c.code].proof_required for c in application.criteria):
                flash(_("Upload a proof document for each priority criterion below: it counts once the daycare "
                        "has checked it."), "info")
            return redirect(url_for("main.applications", _anchor=f"application-{application.request_id}"))
    if form.errors:
        status = 400
    first = this_month()
    form.desired_start.render_kw = {"min": f"{first:%Y-%m}",
                                    "max": f"{add_months(first, services.MONTHS_AHEAD):%Y-%m}"}
    return render_template(
        "reqsys/apply.html", form=form, nursery=nursery, criteria=config, kids=kids,
        counts=services.active_counts(g.identity, [kid.child_id for kid in kids]), max_active=MAX_ACTIVE,
        max_enrolled=MAX_ACTIVE_WHEN_ENROLLED), status


@bp.get("/applications")
@login_required("parents")
def applications():
    rows = services.list_applications(g.identity)
    active = {}
    for application, _rank in rows:
        if application.status_enum in (Status.REQUESTED, Status.ACCEPTED):
            active[application.child_id] = active.get(application.child_id, 0) + 1
    return render_template("reqsys/applications.html", applications=rows, criteria=configured_criteria(),
                           form=EmptyForm(), active=active,
                           proof_types=sorted(proofs.PROOF_POLICY.content_types),
                           proof_max_mb=proofs.PROOF_POLICY.max_bytes // (1024 * 1024))


def _own(request_id: str):
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    application = services.get_application(g.identity, request_id)  # 404 for anyone else's
    if application.parent_sub != g.identity.sub:
        abort(404)
    return application


def _ids(application) -> dict[str, str]:
    return {"child_id": application.child_id, "nursery_id": application.nursery_id}


@bp.post("/applications/<request_id>/cancel")
@login_required("parents")
def cancel(request_id: str):
    application = _own(request_id)
    try:
        services.cancel(g.identity, _ids(application))
    except Conflict:
        flash(_("This application can no longer be cancelled."), "error")
    else:
        flash(_("The application is cancelled."), "success")
    return redirect(url_for("main.applications"))


def _answer_offer(request_id: str, answer):
    """Run offers.confirm or offers.decline for the parent's application; (application, result or None)."""
    application = _own(request_id)
    try:
        return application, answer(g.identity, _ids(application))
    except offers.OfferExpired:
        flash(_("The offer's deadline has passed: the place goes to the next child waiting."), "error")
    except Conflict:
        flash(_("There is no open offer on this application any more."), "error")
    return application, None


@bp.post("/applications/<request_id>/confirm")
@login_required("parents")
def confirm(request_id: str):
    application, confirmed = _answer_offer(request_id, offers.confirm)
    if confirmed:
        flash(_("%(child)s's place at %(nursery)s is confirmed.", child=application.child_name,
                nursery=application.nursery.name), "success")
        if confirmed[1]:
            flash(_("The other applications of %(child)s (%(n)d) are withdrawn.", child=application.child_name,
                    n=len(confirmed[1])), "info")
    return redirect(url_for("main.applications"))


@bp.post("/applications/<request_id>/decline")
@login_required("parents")
def decline(request_id: str):
    application, declined = _answer_offer(request_id, offers.decline)
    if declined:
        flash(_("You declined the offer of %(nursery)s.", nursery=application.nursery.name), "success")
    return redirect(url_for("main.applications"))


@bp.post("/applications/<request_id>/criteria/<code>/upload")
@login_required("parents")
def proof_upload(request_id: str, code: str):
    """For the page's script: where to post the file (JSON; the CSRF token comes in a header)."""
    application = services.get_application(g.identity, request_id)
    data = request.get_json(silent=True) or {}
    return jsonify(proofs.upload_form(g.identity, {
        **_ids(application), "criterion": code, "content_type": data.get("content_type", ""),
        "filename": data.get("filename", "")}))


@bp.post("/applications/<request_id>/criteria/<code>/proof")
@login_required("parents")
def proof(request_id: str, code: str):
    """After the script's upload: check the file and record it."""
    form = ProofForm()
    application = services.get_application(g.identity, request_id)
    if not form.validate_on_submit():
        flash(_("Choose a file to upload."), "error")
        return redirect(url_for("main.applications", _anchor=f"application-{request_id}"))
    try:
        proofs.register(g.identity, {**_ids(application), "criterion": code, "key": form.key.data})
    except ValidationFailed:
        flash(_("The file was not accepted: upload a PDF, JPG or PNG of up to 5 MB."), "error")
    except Conflict:
        flash(_("A proof can be added only while the application is waiting and the criterion is not verified."),
              "error")
    else:
        flash(_("The proof document is uploaded. The daycare will check it."), "success")
    return redirect(url_for("main.applications", _anchor=f"application-{request_id}"))


# --- JSON ----------------------------------------------------------------------------------------------


@bp.get("/api/nurseries")
def api_nurseries():
    rows = db.session.scalars(db.select(Nursery).order_by(Nursery.nursery_id)).all()
    return jsonify(nurseries=[row.to_dict() for row in rows])


@bp.get("/api/criteria")
def api_criteria():
    """The priority criteria a parent may declare, and the limits (public, like the portal's guide)."""
    return jsonify(criteria=[item.model_dump() for item in configured_criteria().values()],
                   limits={"active": MAX_ACTIVE, "active_when_enrolled": MAX_ACTIVE_WHEN_ENROLLED},
                   offer_days=current_app.config["SETTINGS"].offer_days)


@api.get("/enterwait")
@api_auth_required("parents", "admins")
def list_applications():
    """The parent's own applications (with rank and score); an admin sees everyone's, a page at a time
    (`?cursor=` from the last page's `next_cursor`)."""
    if not g.identity.is_admin:
        rows = services.list_applications(g.identity)
        return jsonify(applications=[services.application_dict(row, rank) for row, rank in rows])
    rows, next_cursor = services.list_all_applications(g.identity, request.args.get("cursor"))
    return jsonify(applications=[services.application_dict(row, rank) for row, rank in rows], next_cursor=next_cursor)


def _answer(application, status: int = 200, **extra):
    return jsonify(application=services.application_dict(application, services.rank_in_queue(application)),
                   **extra), status


@api.post("/enterwait/request")
@api_auth_required("parents")
def request_application():
    return _answer(services.apply(g.identity, load_json(ApplicationBody)), 201)


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
