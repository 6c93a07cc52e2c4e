"""The agency admins' pipeline monitor (seed: ReqManageSys 신청 상태 모니터링).

Pages under /admin/monitor (admins' session): queue depths, a DLQ's messages (with the last failure's
reason) and redrive, the stream's failed batches and their replay from the events table, an application's
event timeline, and locally the emails SES sent. JSON for ops scripts (admins' bearer token):
GET /api/admin/queues, GET /api/admin/queues/<slug>/messages, POST /api/admin/queues/<slug>/redrive
(`{}` for all, or `{"message_id": ...}`). The data and actions live in shared.pipeline.monitor.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField
from wtforms.validators import Length, Optional, Regexp

from reqsys.models import Application, db
from shared.pipeline import monitor
from shared.platform.auth import api_auth_required, login_required
from shared.platform.clock import local_time
from shared.waitlist.rules import EVENT_LABELS

bp = Blueprint("monitor", __name__, url_prefix="/admin/monitor")

ID_PATTERN = r"^[A-Za-z0-9_-]+$"
MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


# what each queue carries, in plain words (the monitor's pages name queues by these, not by their AWS names)
QUEUE_PURPOSES = {
    "INTEGRATED_EVENTS": _l("Event record (every change, in order)"),
    "EMAIL": _l("Emails to parents"),
    "TO_CHILDSYS": _l("Changes sent to the daycare staff's system"),
    "TO_REQSYS": _l("Changes sent to the parents' system"),
    "TASK_NOTIFICATIONS": _l("Task notifications"),
    "TASK_JOBS": _l("Task background jobs"),
}
# an application's fields as the timeline's summary shows them (others are listed under "other values")
SUMMARY_FIELDS = {
    "child_name": _l("Child's name"), "child_id": _l("Child ID"), "child_birthday": _l("Birthday"),
    "nursery_id": _l("Daycare ID"), "desired_start": _l("Desired start month"), "age_class": _l("Class"),
    "status": _l("Status"), "score": _l("Score"), "priority_tier": _l("Priority"),
    "parent_name": _l("Parent's name"), "parent_email": _l("Email"), "parent_tel": _l("Phone"),
    "offer_expires_at": _l("Offer open until"), "reason": _l("Reason"), "criteria": _l("Priority criteria"),
}


CRITERION_STATES = {"PENDING": _l("to check"), "VERIFIED": _l("verified"), "REJECTED": _l("not accepted")}


@bp.app_context_processor
def _monitor_words():
    return {"queue_purposes": QUEUE_PURPOSES, "summary_fields": SUMMARY_FIELDS}


@bp.app_template_filter("plain")
def plain(value) -> str:
    """A value from an event as a person reads it: lists and objects as words, never Python's notation."""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, dict):
        if "code" in value:  # a criterion: its Korean label (or code) and its state
            label = value.get("label_ko") or value.get("code")
            state = CRITERION_STATES.get(value.get("status"), value.get("status"))
            return f"{label}: {state}" if state else str(label)
        return ", ".join(f"{key}: {plain(item)}" for key, item in value.items() if item not in (None, "", [], {}))
    if isinstance(value, list | tuple):
        return ", ".join(plain(item) for item in value) or "–"
    return "–" if value in (None, "") else str(value)


def _settings():
    return current_app.config["SETTINGS"]


def _outputs() -> dict[str, str]:
    return monitor.resource_names(_settings())


def _pair_or_404(slug: str) -> monitor.QueuePair:
    pair = monitor.find_pair(_outputs(), slug)
    if pair is None or not pair.dlq_url:
        abort(404)
    return pair


def _is_stream(pair: monitor.QueuePair) -> bool:
    """The stream mapping's on-failure queue (EVENTS_STREAM_DLQ_URL): replayed from the events table."""
    return pair.queue_url is None and pair.key.endswith("_STREAM")


def _optional(name: str) -> str | None:
    try:
        return _settings().resource(name)
    except KeyError:
        return None


def _redrive(pair: monitor.QueuePair, message_id: str | None) -> monitor.RedriveResult:
    """Redrive a DLQ to its source queue, or replay a stream's failed batches from the events table."""
    if _is_stream(pair):
        table, bus = _optional("EVENTS_TABLE"), _optional("EVENT_BUS_NAME")
        if not table or not bus:
            raise monitor.MonitorError("the events table or the event bus is not configured")
        return monitor.replay_stream_failures(pair.dlq_url, table, bus, message_id=message_id)
    return monitor.redrive(pair, message_id=message_id)


@bp.app_template_filter("monitor_time")
def monitor_time(value: datetime | str | None) -> str:
    """An aware (or naive UTC) time, or an ISO 8601 string, in Korean local time to the second."""
    if isinstance(value, str):
        parsed = _parse_time(value.replace("Z", "+00:00"))
        if parsed is None:
            return value
        value = parsed
    if value is None:
        return "–"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return local_time(value, fmt="%Y-%m-%d %H:%M:%S KST")


def _outbox_backlog() -> dict | None:
    """reqsys's own unpublished outbox events: stuck before they ever reach a queue."""
    try:
        from sqlalchemy import func, select

        from reqsys.models import OutboxEvent, db

        unpublished = OutboxEvent.published_at.is_(None)
        count, oldest = db.session.execute(
            select(func.count(OutboxEvent.id), func.min(OutboxEvent.created_at)).where(unpublished)).one()
    except Exception:  # informative only: the queue table must render even if the database is down
        current_app.logger.warning("could not read the reqsys outbox", exc_info=True)
        return None
    return {"count": count, "oldest": oldest}


# --- queues -------------------------------------------------------------------------------------


@bp.get("/")
@login_required("admins")
def queues():
    depths = monitor.queue_depths(_outputs())
    stuck = [row for row in depths if row.stuck]
    return render_template("reqsys/monitor.html", depths=depths, stuck=stuck, outbox=_outbox_backlog(),
                           checked_at=datetime.now(UTC), show_emails=_settings().is_local)


def _api_queues():
    depths = monitor.queue_depths(_outputs())
    return jsonify(queues=[row.as_json() for row in depths],
                   dead_letters=sum(row.total for row in depths if row.is_dlq),
                   checked_at=datetime.now(UTC).isoformat())


# JSON for ops scripts lives under /api (bearer token, JSON errors, no CSRF), outside this
# blueprint's /admin/monitor prefix, so it is added to the app when the blueprint is registered.
bp.record_once(lambda state: state.app.add_url_rule(
    "/api/admin/queues", endpoint="monitor.api_queues", view_func=api_auth_required("admins")(_api_queues),
    methods=["GET"]))


# --- dead letters -------------------------------------------------------------------------------


@bp.get("/dlq/<slug>")
@login_required("admins")
def dead_letters(slug: str):
    pair = _pair_or_404(slug)
    error = None
    messages: list[monitor.DeadLetter] = []
    try:
        messages = monitor.peek(pair.dlq_url, failures_table=_optional("IDEMPOTENCY_TABLE"))
        counts = monitor.depth(pair.dlq_url)
    except monitor.MonitorError as err:
        error, counts = str(err), None
    except Exception:
        current_app.logger.warning("could not read the depth of %s", pair.dlq_url, exc_info=True)
        counts = None
    return render_template("reqsys/monitor_dlq.html", pair=pair, messages=messages, counts=counts, error=error,
                           dlq_name=pair.dlq_url.rsplit("/", 1)[-1],
                           queue_name=(_optional("EVENT_BUS_NAME") or "") if _is_stream(pair)
                           else (pair.queue_url or "").rsplit("/", 1)[-1], max_peek=monitor.MAX_PEEK,
                           event_labels=EVENT_LABELS)


@bp.post("/dlq/<slug>/redrive")
@login_required("admins")
def redrive(slug: str):
    """Move the DLQ's messages (all, or the one named by the form's message_id) to the source queue.
    The CSRF token is checked for every non-API POST by shared.platform.web."""
    pair = _pair_or_404(slug)
    message_id = (request.form.get("message_id") or "").strip() or None
    if message_id is not None and not MESSAGE_ID.match(message_id):
        abort(400)
    try:
        result = _redrive(pair, message_id)
    except monitor.MonitorError as err:
        flash(_("Redrive failed: %(error)s", error=str(err)), "error")
        return redirect(url_for("monitor.dead_letters", slug=slug))
    current_app.logger.warning("admin %s redrove %d message(s) from %s", getattr(g.get("identity"), "email", "?"),
                               result.moved, pair.dlq_url)
    if message_id is not None and not result.found:
        flash(_("Message %(id)s was not found in the dead-letter queue (it may have been moved already).",
                id=message_id), "error")
    elif result.moved or not (result.failed or result.errors):
        flash(_("%(moved)d message(s) moved back to %(queue)s. %(left)s left in the dead-letter queue.",
                moved=result.moved, queue=(pair.queue_url or _optional("EVENT_BUS_NAME") or "").rsplit("/", 1)[-1],
                left=result.remaining if result.remaining is not None else "?"), "success")
    if result.failed or result.duplicated or result.errors:
        flash(_("%(failed)d message(s) could not be moved and stay in the dead-letter queue; %(dup)d were "
                "moved but not removed from it. %(errors)s", failed=result.failed, dup=result.duplicated,
                errors=" ".join(result.errors)), "error")
    return redirect(url_for("monitor.dead_letters", slug=slug))


def _api_dead_letters(slug: str):
    pair = _pair_or_404(slug)
    try:
        messages = monitor.peek(pair.dlq_url, failures_table=_optional("IDEMPOTENCY_TABLE"))
    except monitor.MonitorError as err:
        return jsonify(error={"code": "unavailable", "message": str(err)}), 503
    return jsonify(queue=pair.slug, messages=[{
        "message_id": m.message_id, "sent_at": m.sent_at.isoformat() if m.sent_at else None,
        "receive_count": m.receive_count, "type": m.info.type, "request_id": m.info.request_id,
        "event_id": m.info.event_id, "problem": m.info.problem, "failure": m.failure,
        "stream_batch": m.stream_batch} for m in messages])


def _api_redrive(slug: str):
    """Redrive (a stream's failures: replay) as the page's button does; JSON `{"message_id"?}`."""
    pair = _pair_or_404(slug)
    body = request.get_json(silent=True) if request.data else {}
    message_id = body.get("message_id") if isinstance(body, dict) else None
    if body is None or not isinstance(body, dict) or (
            message_id is not None and not (isinstance(message_id, str) and MESSAGE_ID.match(message_id))):
        return jsonify(error={"code": "invalid", "message": "Send {} or {\"message_id\": \"...\"}",
                              "fields": {"message_id": "invalid"}}), 400
    try:
        result = _redrive(pair, message_id)
    except monitor.MonitorError as err:
        return jsonify(error={"code": "unavailable", "message": str(err)}), 503
    current_app.logger.warning("admin %s redrove %d message(s) from %s by the API",
                               getattr(g.get("identity"), "email", "?"), result.moved, pair.dlq_url)
    if message_id is not None and not result.found:
        return jsonify(error={"code": "not_found", "message": "No such message in the dead-letter queue"}), 404
    return jsonify(queue=pair.slug, **result.as_json())


bp.record_once(lambda state: (
    state.app.add_url_rule("/api/admin/queues/<slug>/messages", endpoint="monitor.api_dead_letters",
                           view_func=api_auth_required("admins")(_api_dead_letters), methods=["GET"]),
    state.app.add_url_rule("/api/admin/queues/<slug>/redrive", endpoint="monitor.api_redrive",
                           view_func=api_auth_required("admins")(_api_redrive), methods=["POST"])))


# --- event timeline -----------------------------------------------------------------------------


class TimelineForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search: it changes nothing

    request_id = StringField(_l("Request ID"), validators=[Optional(), Length(max=40), Regexp(
        ID_PATTERN, message=_l("Letters, numbers and hyphens only."))])
    child_id = StringField(_l("Child ID"), validators=[Optional(), Length(max=20), Regexp(
        ID_PATTERN, message=_l("Letters, numbers and hyphens only."))])
    nursery_id = StringField(_l("Daycare ID"), validators=[Optional(), Length(max=10), Regexp(
        ID_PATTERN, message=_l("Letters, numbers and hyphens only."))])


def _reqsys_application(request_id: str):
    """reqsys's own record of the application, to compare with the event log."""
    try:
        from reqsys.models import Application, db

        return db.session.execute(db.select(Application).filter_by(request_id=request_id)).scalar_one_or_none()
    except Exception:
        current_app.logger.warning("could not read application %s", request_id, exc_info=True)
        return None


@bp.get("/timeline")
@login_required("admins")
def timeline():
    form = TimelineForm(request.args)
    request_id = None
    events: list[monitor.TimelineEvent] = []
    error = None
    application = None
    if request.args and form.validate():
        child_id, nursery_id = (form.child_id.data or "").strip(), (form.nursery_id.data or "").strip()
        request_id = (form.request_id.data or "").strip() or None
        if request_id is None and child_id and nursery_id:
            request_id = _application_id(child_id, nursery_id)
        elif request_id is None:
            form.request_id.errors = [_("Enter a request ID, or a child ID and a daycare ID.")]
    if request_id:
        try:
            events = monitor.timeline(_settings().resource("EVENTS_TABLE"), request_id)
        except (monitor.MonitorError, KeyError) as err:
            error = str(err) if isinstance(err, monitor.MonitorError) else _("The events table is not configured.")
        application = _reqsys_application(request_id)
    return render_template("reqsys/monitor_timeline.html", form=form, request_id=request_id, events=events,
                           summary=monitor.application_summary(events), error=error, application=application,
                           event_labels=EVENT_LABELS)


# --- emails (local emulator only) ---------------------------------------------------------------


@bp.get("/emails")
@login_required("admins")
def emails():
    if not _settings().is_local:
        abort(404)  # in AWS, SES keeps no copy to show
    to = (request.args.get("to") or "").strip()[:254]
    error = None
    mails: list[dict] = []
    try:
        mails = monitor.latest_emails(limit=50, to=to or None)
    except monitor.MonitorError as err:
        error = str(err)
    return render_template("reqsys/monitor_emails.html", mails=mails, to=to, error=error)


def _parse_time(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def _application_id(child_id: str, nursery_id: str) -> str:
    """The request id of the one application of a child id at a daycare (ids carry the parent's account), or
    the seed's child_id + nursery_id (an application from before, or several accounts': name it by its id)."""
    ids = db.session.scalars(select(Application.request_id).where(
        Application.child_id == child_id, Application.nursery_id == nursery_id).limit(2)).all()
    return ids[0] if len(ids) == 1 else child_id + nursery_id
