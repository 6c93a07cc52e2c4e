"""childsys pages (staff of one daycare; admins for any), thin over childsys.services, childsys.capacity and
childsys.audit; the JSON routes are in childsys.api, the forms and query strings in childsys.forms."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from childsys import audit, capacity, proofs, services
from childsys.forms import AuditQuery, CriterionRejectForm, DaycareQuery, ListQuery, OfferForm, PlacesForm, RejectForm
from shared.platform.auth import login_required
from shared.platform.auth.forms import EmptyForm
from shared.platform.errors import ApiError, Conflict, error_response
from shared.platform.events import EventType
from shared.platform.payloads import load_query
from shared.waitlist.criteria import CriterionStatus, configured_criteria
from shared.waitlist.rules import EVENT_LABELS, Status, staff_daycare
from shared.waitlist.settings import waitlist_settings

bp = Blueprint("main", __name__)

STAFF = ("staff", "admins")
STATUS_LABELS = {
    "REQUESTED": _l("Waiting for a place"), "ACCEPTED": _l("Offered"), "ENROLLED": _l("Place confirmed"),
    "REJECTED": _l("Rejected"),
    "DECLINED": _l("Declined by the parent"), "EXPIRED": _l("Offer expired"), "WITHDRAWN": _l("Withdrawn"),
    "CANCELLED": _l("Cancelled"),
}
CRITERION_LABELS = {"PENDING": _l("To check"), "VERIFIED": _l("Verified"), "REJECTED": _l("Not accepted")}
# a page's query parameters in plain words, and what a bad one must be (the 400 page names them)
QUERY_FIELDS = {
    "class": (_l("Class"), _l("Choose a class from 0세반 to 5세반.")),
    "status": (_l("Status"), _l("Choose one of the status tabs.")),
    "page": (_l("Page number"), _l("Use a page number from 1.")),
    "nursery_id": (_l("Daycare ID"), _l("Use a daycare ID of letters and numbers, up to 10.")),
    "sort": (_l("Sort order"), _l("Sort by rank or by newest.")),
    "type": (_l("What happened"), _l("Choose one of the listed kinds.")),
    "q": (_l("Child or request ID"), _l("Search with up to 50 characters.")),
    "actor": (_l("Who"), _l("Search with up to 254 characters.")),
}
PAGE_ERRORS = {
    403: _l("You can open only your own daycare's applications."),
    404: _l("There is no such application, or it is not at your daycare."),
    409: _l("This application changed in the meantime: reload the page and look again."),
}


@bp.errorhandler(ApiError)
def _page_error(err: ApiError):
    """Refusals on the staff pages, in the page's language: a bad query parameter named in plain words."""
    if err.status == 400 and err.fields:
        fields = {}
        for name in err.fields:
            label, rule = QUERY_FIELDS.get(name.split(".")[0], (name, _l("This value cannot be used.")))
            fields[str(label)] = str(rule)
        return error_response(400, err.code, _("The address of this page has a value we cannot use."), fields)
    return error_response(err.status, err.code, str(PAGE_ERRORS.get(err.status, err.message)))


@bp.app_context_processor
def _labels():
    return {"status_labels": STATUS_LABELS, "event_labels": EVENT_LABELS, "criterion_labels": CRITERION_LABELS,
            "status_names": {status.code: status.name for status in Status}, "locale": str(get_locale() or "ko")}




# served at "/" as the app's "home" endpoint (see create_app)
@login_required()
def index():
    """Staff go to their daycare's applications; admins (of no daycare) choose a daycare first."""
    identity = g.identity
    if identity.in_any("staff") and identity.daycare_id:
        return redirect(url_for("main.applications"))
    nurseries = services.all_nurseries() if identity.is_admin else []
    return render_template("childsys/index.html", nurseries=nurseries)


DAYCARE_PAGES = frozenset({"main.applications", "main.classes", "main.enrolled"})


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
    services.parse_status(status)  # 400 naming `status` for a name that is not one
    klass, newest, page = query.klass, query.sort == "newest", query.page
    counted = capacity.application_counts(nursery_id)  # one pass for the tabs and the places
    counts = services.status_counts(counted)
    known = None if klass is not None else (counts[status] if status else sum(counts.values()))
    rows, total = services.list_applications(g.identity, nursery_id, status, newest, page, klass, known,
                                              for_page=True)
    classes = capacity.class_places(nursery_id, counted=counted)
    prompts = capacity.offer_prompts(nursery_id, classes)
    offerable = [a for a, _ in rows] + [p.application for p in prompts]
    return render_template(
        "childsys/applications.html", applications=rows, total=total, page=page, status=status or "ALL",
        newest=newest, klass_filter=klass, pages=max((total + services.PAGE_SIZE - 1) // services.PAGE_SIZE, 1),
        counts=counts, classes=classes, prompts=prompts, released=capacity.released_offers(nursery_id),
        nursery=services.get_nursery(nursery_id), nursery_id=nursery_id,
        unchecked={a.id: _unchecked(a) for a in offerable}, form=EmptyForm(),
        deadline_days=waitlist_settings().offer_days)


def _unchecked(application) -> list[str]:
    """The declared priority criteria nobody has checked yet, by name (the confirmations list them)."""
    config, locale = configured_criteria(), str(get_locale() or "ko")
    return [config[c.code].label_for(locale) if c.code in config else c.code
            for c in application.criteria if c.status == CriterionStatus.PENDING.value]


def _places(application):
    if application.age_class is None:
        return None
    [places] = capacity.class_places(application.nursery_id, only=application.age_class)
    return places


def _detail(application, offer_form=None, reject_form=None, full: bool = False, status: int = 200):
    g.nursery_id = application.nursery_id  # its daycare's pages are one link away
    places = _places(application)
    return render_template(
        "childsys/detail.html", application=application, rank=services.rank_in_queue(application),
        places=places, full=full or (places is not None and places.free is not None and places.free <= 0),
        criteria=configured_criteria(), form=EmptyForm(), offer_form=offer_form or OfferForm(),
        reject_form=reject_form or RejectForm(), deadline_days=waitlist_settings().offer_days,
        unchecked=_unchecked(application), reason_error=_reason_error(),
    ), status


def _reason_error() -> tuple[str, str] | None:
    """A criterion whose "not accepted" came without a reason: (code, message) for the field beside it."""
    code = request.args.get("reason_missing", "")
    return (code, _("Give a reason for not accepting the criterion.")) if code else None


def _confirm_page(application, action: str, back: str = "", **extra):
    """The page that asks before an action that emails the parent (what the dialog says, without JavaScript)."""
    g.nursery_id = application.nursery_id
    places = _places(application)
    return render_template(
        "childsys/confirm.html", application=application, action=action, back=back, places=places,
        full=places is not None and places.free is not None and places.free <= 0,
        unchecked=_unchecked(application), deadline_days=waitlist_settings().offer_days,
        form=EmptyForm(), **extra)


def _confirmed() -> bool:
    return request.form.get("confirmed") == "yes"


@bp.get("/applications/<request_id>")
@login_required(*STAFF)
def detail(request_id: str):
    return _detail(services.get_application(g.identity, request_id))


def _back_target() -> str:
    target = request.form.get("back", "")
    return target if target.startswith("/applications") and "//" not in target else ""


def _back(application):
    """Back to the list the action came from (same site only), else to the application."""
    target = _back_target()
    if target:
        return redirect(target)
    return redirect(url_for("main.detail", request_id=application.request_id))


def _ids(application, **extra) -> dict:
    return {"request_id": application.request_id, "child_id": application.child_id,
            "nursery_id": application.nursery_id, **extra}


@bp.route("/applications/<request_id>/accept", methods=["GET", "POST"])
@login_required(*STAFF)
def accept(request_id: str):
    """Offer a place (the page's "accept"), once confirmed: it emails the parent and starts the deadline.
    Into a full class only with an override reason. Unconfirmed (no JavaScript, or a GET): the question page."""
    application = services.get_application(g.identity, request_id)
    if request.method == "GET":
        return _confirm_page(application, "offer", back=request.args.get("back", "")[:300])
    form = OfferForm()
    if not form.validate_on_submit():
        return _detail(application, offer_form=form, status=400)
    if not _confirmed():
        return _confirm_page(application, "offer", back=_back_target(), override_reason=form.override_reason.data)
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
            name=application.child_name, days=waitlist_settings().offer_days), "success")
    return _back(application)


@bp.post("/applications/<request_id>/reject")
@login_required(*STAFF)
def reject(request_id: str):
    """Reject, once confirmed (the parent is emailed the reason); unconfirmed: the question page."""
    application = services.get_application(g.identity, request_id)
    form = RejectForm()
    if not form.validate_on_submit():
        return _detail(application, reject_form=form, status=400)
    if not _confirmed():
        return _confirm_page(application, "reject", reason=form.reason.data)
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
        if verdict == "reject":  # the message goes beside the reason box of this criterion
            return redirect(url_for("main.detail", request_id=request_id, reason_missing=code,
                                    _anchor=f"criterion-{code}"))
        abort(400)
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
    """The proof document, opened in the browser (PDF and images inline) through a link that works for two
    minutes."""
    return redirect(proofs.open_link(services.get_application(g.identity, request_id), code))


@bp.get("/enrolled")
@login_required(*STAFF)
def enrolled():
    nursery_id = _nursery_id()
    if nursery_id is None:
        return redirect(url_for("home"))
    return render_template("childsys/enrolled.html", enrollments=services.list_enrollments(g.identity, nursery_id),
                           nursery=services.get_nursery(nursery_id))


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
                           nursery=services.get_nursery(nursery_id)), status


@bp.get("/audit")
@login_required(*STAFF)
def audit_log():
    """Who did what to which application, and when; staff see their daycare's, admins everyone's."""
    query = load_query(AuditQuery)
    page = query.page
    entries, total = audit.list_audit(g.identity, query.nursery_id, query.type, query.q, query.actor, page)
    nurseries = services.all_nurseries() if g.identity.is_admin else []
    return render_template("childsys/audit.html", entries=entries, total=total, page=page,
                           pages=max((total + audit.PAGE_SIZE - 1) // audit.PAGE_SIZE, 1), filters=request.args,
                           types=list(EVENT_LABELS), nurseries=nurseries, criteria=configured_criteria())


