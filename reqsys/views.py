"""reqsys pages (parents, session); the JSON routes are in reqsys.api, the forms in reqsys.forms.

Views stay thin: the rules live in reqsys.services, reqsys.offers and reqsys.proofs; a page
turns the service's field errors into messages next to its form fields and a 409 into a flash
message.
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from reqsys import offers, proofs, services
from reqsys.forms import NO_APPLICATION, ApplyForm, ChildForm, ProofForm, show_field_errors
from reqsys.models import Application
from shared.platform.auth import login_required
from shared.platform.auth.forms import EmptyForm, from_e164
from shared.platform.errors import Conflict, NotFound, ValidationFailed
from shared.platform.uploads import CONTENT_MISMATCH, NOT_ARRIVED, TYPE_NOT_ALLOWED
from shared.waitlist.calendar import add_months, default_start, this_month
from shared.waitlist.criteria import CriterionStatus, configured_criteria
from shared.waitlist.rules import MAX_ACTIVE, MAX_ACTIVE_WHEN_ENROLLED, Status
from shared.waitlist.settings import waitlist_settings

log = logging.getLogger(__name__)

bp = Blueprint("main", __name__)

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
@bp.app_context_processor
def _labels():
    return {"status_labels": STATUS_LABELS, "event_labels": EVENT_LABELS, "criterion_labels": CRITERION_LABELS,
            "Status": Status, "locale": str(get_locale() or "ko")}


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
    return render_template("reqsys/nurseries.html", nurseries=services.search_nurseries(query), query=query)


@bp.route("/children", methods=["GET", "POST"])
@login_required("parents")
def children():
    form = ChildForm()
    if form.validate_on_submit():
        try:
            child = services.register_child(g.identity, {
                "child_id": form.child_id.data, "name": form.name.data, "birthday": form.birthday.data})
        except ValidationFailed as err:
            show_field_errors(form, err)
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
    nursery = services.get_nursery(nursery_id, _("There is no daycare with this ID."))
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
            show_field_errors(form, err, aliases)
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
    return jsonify(nurseries=[row.to_dict() for row in services.all_nurseries()])


@bp.get("/api/criteria")
def api_criteria():
    """The priority criteria a parent may declare, and the limits (public, like the portal's guide)."""
    return jsonify(criteria=[item.model_dump() for item in configured_criteria().values()],
                   limits={"active": MAX_ACTIVE, "active_when_enrolled": MAX_ACTIVE_WHEN_ENROLLED},
                   offer_days=waitlist_settings().offer_days)


