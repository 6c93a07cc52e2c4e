"""Analytics pages and routes. Admins: the export status and the "export now" button (page and JSON)."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from shared.platform.auth import api_auth_required, login_required
from shared.platform.auth.forms import EmptyForm
from taskapp.analytics.catalog import EVENTS, SNAPSHOTS
from taskapp.analytics.export import latest_export_at, partition_days, request_export

bp = Blueprint("analytics", __name__)


@bp.get("/admin/analytics")
@login_required("admins")
def status():
    settings = current_app.config["SETTINGS"]
    bucket = settings.resource("ANALYTICS_BUCKET")
    snapshots, events = partition_days(bucket, SNAPSHOTS), partition_days(bucket, EVENTS)
    return render_template("taskapp/analytics_admin.html", snapshots=snapshots, events=events,
                           exported_at=latest_export_at(bucket), form=EmptyForm())


@bp.post("/admin/analytics/export")
@login_required("admins")
def export_now():
    summary = request_export(g.identity, current_app.config["SETTINGS"])
    if summary is None:
        flash(_("The export has started; it takes a minute or two."), "success")
    else:
        flash(_("Exported %(tasks)d tasks and %(events)d status changes for %(day)s.", tasks=summary.tasks,
                events=sum(summary.events.values()), day=summary.day), "success")
    if request.form.get("next") == "reports":  # the button on the reports page
        return redirect(url_for("reports.page"))
    return redirect(url_for("analytics.status"))


@bp.post("/api/admin/analytics/export")
@api_auth_required("admins")
def api_export_now():
    summary = request_export(g.identity, current_app.config["SETTINGS"])
    if summary is None:
        return jsonify(status="started"), 202
    return jsonify(status="done", **summary.as_dict()), 200
