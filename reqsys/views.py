"""reqsys pages (parents, session) and JSON routes (bearer token).

Views stay thin: the rules live in reqsys.services, reqsys.offers and reqsys.proofs; a page
turns the service's field errors into messages next to its form fields and a 409 into a flash
message.
"""

from __future__ import annotations

import logging
import re
from datetime import date

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    EmailField,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    TelField,
)
from wtforms.validators import Email, InputRequired, Length, Optional, Regexp, ValidationError

from reqsys import offers, proofs, services
from reqsys.models import Application, Nursery, db
from shared.platform.auth import api_auth_required, login_required
from shared.platform.auth.forms import EmptyForm, from_e164
from shared.platform.errors import Conflict, NotFound, ValidationFailed
from shared.platform.payloads import load_json
from shared.platform.uploads import CONTENT_MISMATCH, NOT_ARRIVED, TYPE_NOT_ALLOWED
from shared.waitlist.body import KOREAN_PHONE, ApplicationBody
from shared.waitlist.calendar import add_months, age_class, default_start, parse_month, this_month
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
# the service's field names -> what a parent is told next to the field (when the service refuses what
# the form let through; the form's own rules below give one message per rule)
FIELD_MESSAGES = {
    "child_id": _l("Enter the child's ID: letters, numbers and hyphens, up to 20."),
    "name": _l("Enter the child's name (up to 50 characters)."),
    "child_name": _l("Enter the child's name (up to 50 characters)."),
    "birthday": _l("Enter a real date that is not in the future."),
    "child_birthday": _l("Enter a real date that is not in the future."),
    "parent_name": _l("Enter your name (up to 50 characters)."),
    "parent_tel": _l("Enter a phone number like 010-1234-5678."),
    "parent_address": _l("Enter your address (up to 200 characters)."),
    "parent_postcode": _l("Enter the 5-digit postcode."),
    "parent_email": _l("Enter a valid email address."),
    "nursery_id": _l("This daycare does not exist."),
    "desired_start": _l("Choose a month from this month up to two years ahead in which the child is at most in 5세반."),
    "criteria": _l("Choose only the criteria listed."),
}
ALREADY_REGISTERED = _l("You have already registered a child with this ID.")
NO_APPLICATION = _l("There is no such application among yours.")
CHILD_ID_RULE = re.compile(r"^[0-9A-Za-z-]+$")
POSTCODE_RULE = re.compile(r"^\d{5}$")


@bp.app_context_processor
def _labels():
    return {"status_labels": STATUS_LABELS, "event_labels": EVENT_LABELS, "criterion_labels": CRITERION_LABELS,
            "Status": Status, "locale": str(get_locale() or "ko")}


# --- forms: every rule of the service, each with its own message, so one submit shows every problem -----


class DayField(DateField):
    """A date box whose unreadable value gets the page's own message (an empty one: InputRequired's)."""

    def process_formdata(self, valuelist):
        if valuelist and not str(valuelist[0]).strip():
            self.data = None
            return
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(_("Enter the date as a real date, e.g. 2023-03-01.")) from None


class ChildForm(FlaskForm):
    child_id = StringField(_l("Child ID"), validators=[
        InputRequired(_l("Enter the child's ID.")),
        Length(max=20, message=_l("The child's ID is too long: at most 20 characters.")),
        Regexp(CHILD_ID_RULE, message=_l("The child's ID may hold only letters, numbers and hyphens."))],
        render_kw={"inputmode": "numeric", "autocomplete": "off"})
    name = StringField(_l("Child's name"), validators=[
        InputRequired(_l("Enter the child's name.")),
        Length(max=50, message=_l("The name is too long: at most 50 characters."))])
    birthday = DayField(_l("Birthday"), validators=[InputRequired(_l("Enter the child's birthday."))])

    def validate_birthday(self, field) -> None:
        if field.data and field.data > date.today():
            raise ValidationError(_("The birthday cannot be in the future."))


class ApplyForm(FlaskForm):
    child = SelectField(_l("Child"), coerce=int, validators=[InputRequired(_l("Choose a child."))])
    # a month box (type=month) read as text, so a wrong month gets its own message, not the library's
    desired_start = StringField(_l("Desired start month"), validators=[Optional()],  # empty: next month
                                render_kw={"type": "month", "placeholder": "YYYY-MM"})
    criteria = SelectMultipleField(_l("Priority criteria"), validators=[Optional()])
    parent_name = StringField(_l("Parent's name"), validators=[
        InputRequired(_l("Enter your name.")),
        Length(max=50, message=_l("Your name is too long: at most 50 characters."))],
        render_kw={"autocomplete": "name"})
    parent_tel = TelField(_l("Phone"), validators=[
        InputRequired(_l("Enter your phone number.")),
        Regexp(KOREAN_PHONE, message=_l("Enter a phone number like 010-1234-5678."))],
        render_kw={"autocomplete": "tel", "inputmode": "tel"})
    parent_email = EmailField(_l("Email"), validators=[
        InputRequired(_l("Enter your email address.")),
        Length(max=254, message=_l("The email address is too long.")),
        Email(_l("Enter an email address like name@example.com."), check_deliverability=False)],
        render_kw={"autocomplete": "email"})
    parent_address = StringField(_l("Address"), validators=[
        InputRequired(_l("Enter your address.")),
        Length(max=200, message=_l("The address is too long: at most 200 characters."))],
        render_kw={"autocomplete": "street-address", "maxlength": False})  # said, not cut off silently
    parent_postcode = StringField(_l("Postcode"), validators=[
        InputRequired(_l("Enter the postcode.")),
        Regexp(POSTCODE_RULE, message=_l("The postcode has 5 digits, e.g. 03991."))],
        render_kw={"autocomplete": "postal-code", "inputmode": "numeric"})

    def __init__(self, *args, kids=(), **kwargs):
        super().__init__(*args, **kwargs)
        self._birthdays = {kid.id: kid.birthday for kid in kids}

    def validate_desired_start(self, field) -> None:
        """The service's rules for the month: readable, from this month to MONTHS_AHEAD, the child at most in 5세반."""
        if not field.data:
            return
        try:
            start = parse_month(field.data.strip())
        except ValueError:
            raise ValidationError(_("Enter the month as year and month, e.g. 2027-03.")) from None
        first = this_month()
        if not first <= start <= add_months(first, services.MONTHS_AHEAD):
            raise ValidationError(_("Choose a month from %(first)s to %(last)s.", first=f"{first:%Y-%m}",
                                    last=f"{add_months(first, services.MONTHS_AHEAD):%Y-%m}"))
        birthday = self._birthdays.get(self.child.data)
        if birthday is not None and age_class(birthday, start) is None:
            raise ValidationError(_("By this month the child is past 5세반: choose an earlier month."))


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


def _mine(request_id: str) -> Application:
    """One of the parent's applications (an admin may look at anyone's); a 404 in the page's language."""
    try:
        return services.get_application(g.identity, request_id)
    except NotFound:
        raise NotFound(str(NO_APPLICATION)) from None


def _card(request_id: str, **query):
    """Back to the application's card on the applications page, where the parent acted."""
    return redirect(url_for("main.applications", **query, _anchor=f"application-{request_id}"))


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
            return redirect(url_for("main.children", _anchor=f"child-{child.child_id}"))
    status = 400 if form.errors else 200
    return render_template("reqsys/children.html", form=form, children=services.list_children(g.identity)), status


def _prefill(form: ApplyForm) -> None:
    """The parent's details from the last application, else from the account."""
    identity = g.identity
    form.desired_start.data = default_start()
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
        raise NotFound(_("There is no daycare with this ID."))
    kids = services.list_children(g.identity)
    if not kids:
        flash(_("Register your child first, then apply."), "info")
        return redirect(url_for("main.children"))
    config = configured_criteria()
    form = ApplyForm(kids=kids)
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
            "desired_start": (form.desired_start.data or "").strip() or None,
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
            return _card(application.request_id)
    if form.errors:
        status = 400
    first = this_month()
    form.desired_start.render_kw = {**form.desired_start.render_kw, "min": f"{first:%Y-%m}",
                                    "max": f"{add_months(first, services.MONTHS_AHEAD):%Y-%m}"}
    return render_template(
        "reqsys/apply.html", form=form, nursery=nursery, criteria=config, kids=kids,
        counts=services.active_counts(g.identity, [kid.child_id for kid in kids]), max_active=MAX_ACTIVE,
        max_enrolled=MAX_ACTIVE_WHEN_ENROLLED), status


# a refused proof: what the parent reads beside the file box (?proof_error=<reason>#criterion-...)
PROOF_ERRORS = {
    "type": _l("This type of file cannot be used: choose a PDF, JPG or PNG file."),
    "content": _l("The file's content is not what its name says (e.g. a renamed file): choose a real PDF, JPG or "
                  "PNG file."),
    "size": _l("The file is too large: at most %(mb)d MB.", mb=5),
    "missing": _l("The file did not arrive: please try again."),
    "choose": _l("Choose a file to upload."),
    "closed": _l("A proof can be added only while the application is waiting and the criterion is not verified."),
}
SERVICE_PROOF_ERRORS = {TYPE_NOT_ALLOWED: "type", CONTENT_MISMATCH: "content", NOT_ARRIVED: "missing"}


@bp.get("/applications")
@login_required("parents")
def applications():
    rows = services.list_applications(g.identity)
    active = {}
    for application, _place in rows:
        if application.status_enum in (Status.REQUESTED, Status.ACCEPTED):
            active[application.child_id] = active.get(application.child_id, 0) + 1
    refused = request.args.get("proof_error", "")
    proof_error = (request.args.get("criterion", ""), PROOF_ERRORS[refused]) if refused in PROOF_ERRORS else None
    return render_template("reqsys/applications.html", applications=rows, criteria=configured_criteria(),
                           form=EmptyForm(), active=active, proof_error=proof_error,
                           proof_types=sorted(proofs.PROOF_POLICY.content_types),
                           proof_max_bytes=proofs.PROOF_POLICY.max_bytes,
                           proof_max_mb=proofs.PROOF_POLICY.max_bytes // (1024 * 1024))


def _own(request_id: str):
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    application = _mine(request_id)  # 404 for anyone else's
    if application.parent_sub != g.identity.sub:
        raise NotFound(str(NO_APPLICATION))
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
    return _card(request_id)


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
    return _card(request_id)


@bp.post("/applications/<request_id>/decline")
@login_required("parents")
def decline(request_id: str):
    application, declined = _answer_offer(request_id, offers.decline)
    if declined:
        flash(_("You declined the offer of %(nursery)s.", nursery=application.nursery.name), "success")
    return _card(request_id)


@bp.post("/applications/<request_id>/criteria/<code>/upload")
@login_required("parents")
def proof_upload(request_id: str, code: str):
    """For the page's script: where to post the file (JSON; the CSRF token comes in a header)."""
    application = _mine(request_id)
    data = request.get_json(silent=True) or {}
    return jsonify(proofs.upload_form(g.identity, {
        **_ids(application), "criterion": code, "content_type": data.get("content_type", ""),
        "filename": data.get("filename", "")}))


@bp.post("/applications/<request_id>/criteria/<code>/proof")
@login_required("parents")
def proof(request_id: str, code: str):
    """After the script's upload: check the file and record it. A refusal goes back to the criterion, where
    the page shows it beside the file box."""
    form = ProofForm()
    application = _mine(request_id)
    anchor = f"criterion-{request_id}-{code}"

    def refused(reason: str):
        return redirect(url_for("main.applications", proof_error=reason, criterion=anchor, _anchor=anchor))

    if not form.validate_on_submit():
        return refused("choose")
    try:
        proofs.register(g.identity, {**_ids(application), "criterion": code, "key": form.key.data})
    except ValidationFailed as err:
        problem = err.fields.get("file", "")
        return refused(SERVICE_PROOF_ERRORS.get(problem, "size" if "MB" in problem else "type"))
    except Conflict:
        return refused("closed")
    flash(_("The proof document is uploaded. The daycare will check it."), "success")
    return redirect(url_for("main.applications", _anchor=anchor))


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
