"""In-app notifications: the list page, mark read (one, all), opening one; the JSON API."""

from __future__ import annotations

from flask import Blueprint, flash, g, jsonify, redirect, render_template, url_for
from flask_babel import gettext as _

from shared.platform.auth import api_auth_required, login_required
from shared.platform.auth.forms import EmptyForm
from taskapp import notifications, profiles
from taskapp.views import page_args

bp = Blueprint("notifications", __name__)


def target(note: dict) -> str:
    """Where a notification leads: its task (tasks assigned at once: the list of mine), or its job."""
    if note.get("task_id"):
        return url_for("main.detail", task_id=note["task_id"])
    if note["kind"] == notifications.Kind.ASSIGNED:
        return url_for("main.tasks", assignee="me")
    if note.get("job_id"):
        return url_for("jobs.detail", job_id=note["job_id"])
    return url_for("notifications.page")


@bp.get("/notifications")
@login_required()
def page():
    limit, cursor = page_args()
    notes, next_cursor = notifications.list_notifications(g.identity, limit, cursor)
    next_url = url_for("notifications.page", cursor=next_cursor) if next_cursor else None
    return render_template("taskapp/notifications.html", notes=notes, next_url=next_url, form=EmptyForm(),
                           target=target)


@bp.post("/notifications/<note_id>/open")
@login_required()
def open_note(note_id: str):
    """Follow a notification (a form's POST with the CSRF token): it is read, and the browser goes to its task."""
    if not EmptyForm().validate_on_submit():
        return redirect(url_for("notifications.page"))
    return redirect(target(notifications.mark_read(g.identity, note_id)))


@bp.post("/notifications/<note_id>/read")
@login_required()
def read(note_id: str):
    if EmptyForm().validate_on_submit():
        notifications.mark_read(g.identity, note_id)
    return redirect(url_for("notifications.page"))


@bp.post("/notifications/read-all")
@login_required()
def read_all():
    if EmptyForm().validate_on_submit():
        marked = notifications.mark_all_read(g.identity)
        flash(_("%(n)d notifications marked read.", n=marked), "success")
    return redirect(url_for("notifications.page"))


@bp.get("/api/notifications")
@api_auth_required()
def api_list():
    limit, cursor = page_args()
    notes, next_cursor = notifications.list_notifications(g.identity, limit, cursor)
    unread = profiles.get_profile(g.identity.sub)["unread"]
    return jsonify(unread=unread, notifications=notes, cursor=next_cursor)


@bp.post("/api/notifications/<note_id>/read")
@api_auth_required()
def api_read(note_id: str):
    return jsonify(notifications.mark_read(g.identity, note_id))


@bp.post("/api/notifications/read-all")
@api_auth_required()
def api_read_all():
    return jsonify(marked=notifications.mark_all_read(g.identity))
