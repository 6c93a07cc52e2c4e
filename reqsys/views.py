"""reqsys pages (parents, session) and the seed's JSON routes (bearer token).

Views stay thin: the rules live in reqsys.services; a page turns the service's field errors
into messages next to its form fields and a 409 into a flash message.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, SelectField, StringField, TelField
from wtforms.validators import InputRequired, Length

from reqsys import services
from reqsys.models import Nursery, db
from shared.auth import api_auth_required, login_required
from shared.auth.forms import EmptyForm, from_e164
from shared.errors import Conflict, ValidationFailed
from shared.payloads import load_json
from shared.waitlist import ApplicationBody, Status

log = logging.getLogger(__name__)

bp = Blueprint("main", __name__)
api = Blueprint("enterwait", __name__)

KST = timezone(timedelta(hours=9), "KST")

STATUS_LABELS = {
    Status.REQUESTED: _l("Requested"),
    Status.ACCEPTED: _l("Accepted"),
    Status.REJECTED: _l("Rejected"),
    Status.CANCELLED: _l("Cancelled"),
}
EVENT_LABELS = {
    "REQUEST": _l("Application sent"),
    "CANCEL": _l("Cancelled by you"),
    "ACCEPT": _l("Accepted by the daycare"),
    "REJECT": _l("Rejected by the daycare"),
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
}
ALREADY_REGISTERED = _l("You have already registered a child with this ID.")


@bp.app_template_filter("kst")
def kst(value: datetime | None) -> str:
    """A stored (naive UTC) time as Korean local time."""
    if value is None:
        return ""
    return value.replace(tzinfo=UTC).astimezone(KST).strftime("%Y-%m-%d %H:%M")


@bp.app_context_processor
def _labels():
    return {"status_labels": STATUS_LABELS, "event_labels": EVENT_LABELS, "Status": Status}


# --- forms -------------------------------------------------------------------------------------------


class ChildForm(FlaskForm):
    child_id = StringField(_l("Child ID"), validators=[InputRequired(FIELD_MESSAGES["child_id"]), Length(max=20)],
                           render_kw={"inputmode": "numeric", "autocomplete": "off"})
    name = StringField(_l("Child's name"), validators=[InputRequired(FIELD_MESSAGES["name"]), Length(max=50)])
    birthday = DateField(_l("Birthday"), validators=[InputRequired(FIELD_MESSAGES["birthday"])])


class ApplyForm(FlaskForm):
    child = SelectField(_l("Child"), coerce=int, validators=[InputRequired(_l("Choose a child."))])
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
    last = services.last_application(identity)
    if last is not None:
        for name in ("parent_name", "parent_tel", "parent_email", "parent_address", "parent_postcode"):
            getattr(form, name).data = getattr(last, name)
        return
    form.parent_name.data = identity.name
    form.parent_email.data = identity.email
    try:
        from shared.auth import cognito

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
    form = ApplyForm()
    form.child.choices = [(kid.id, f"{kid.name} ({kid.birthday:%Y-%m-%d})") for kid in kids]
    if request.method == "GET":
        _prefill(form)
    if form.validate_on_submit():
        child = services.get_child(g.identity, form.child.data)
        body = {
            "child_id": child.child_id, "child_name": child.name, "child_birthday": f"{child.birthday:%Y%m%d}",
            "nursery_id": nursery.nursery_id,
            **{name: (getattr(form, name).data or "").strip()
               for name in ("parent_name", "parent_tel", "parent_email", "parent_address", "parent_postcode")},
        }
        try:
            services.apply(g.identity, body)
        except ValidationFailed as err:
            aliases = {"child_id": "child", "child_name": "child", "child_birthday": "child"}
            _show_field_errors(form, err, aliases)
        except Conflict:
            flash(_("%(child)s already has an active application at %(nursery)s.", child=child.name,
                    nursery=nursery.name), "error")
            return redirect(url_for("main.applications"))
        else:
            flash(_("The application for %(child)s to %(nursery)s is sent.", child=child.name,
                    nursery=nursery.name), "success")
            return redirect(url_for("main.applications"))
    status = 400 if form.errors else 200
    return render_template("reqsys/apply.html", form=form, nursery=nursery), status


@bp.get("/applications")
@login_required("parents")
def applications():
    return render_template("reqsys/applications.html", applications=services.list_applications(g.identity),
                           cancel_form=EmptyForm(), cancellable={Status.REQUESTED, Status.ACCEPTED})


@bp.post("/applications/<request_id>/cancel")
@login_required("parents")
def cancel(request_id: str):
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    application = services.get_application(g.identity, request_id)  # 404 for anyone else's
    try:
        services.cancel(g.identity, {"child_id": application.child_id, "nursery_id": application.nursery_id})
    except Conflict:
        flash(_("This application can no longer be cancelled."), "error")
    else:
        flash(_("The application is cancelled."), "success")
    return redirect(url_for("main.applications"))


# --- JSON ----------------------------------------------------------------------------------------------


@bp.get("/api/nurseries")
def api_nurseries():
    rows = db.session.scalars(db.select(Nursery).order_by(Nursery.nursery_id)).all()
    return jsonify(nurseries=[row.to_dict() for row in rows])


@api.get("/enterwait")
@api_auth_required("parents", "admins")
def list_applications():
    """The parent's own applications; an admin sees everyone's."""
    rows = services.list_applications(g.identity, everyone=g.identity.is_admin)
    return jsonify(applications=[services.application_dict(row) for row in rows])


@api.post("/enterwait/request")
@api_auth_required("parents")
def request_application():
    application = services.apply(g.identity, load_json(ApplicationBody))
    return jsonify(application=services.application_dict(application)), 201


@api.post("/enterwait/cancel")
@api_auth_required("parents")
def cancel_application():
    application = services.cancel(g.identity, load_json(services.CancelBody))
    return jsonify(application=services.application_dict(application))
