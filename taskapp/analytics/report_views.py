"""Reports: ask for one, follow its progress, see its chart and figures, download its CSV, retry a
failed one (pages, session + CSRF); the same through JSON (bearer). Rules live in analytics.service."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, g, jsonify, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, SelectField
from wtforms.validators import Optional

from shared.platform.auth import api_auth_required, login_required
from shared.platform.auth.forms import EmptyForm
from shared.platform.errors import ValidationFailed
from shared.platform.payloads import load_json
from taskapp.analytics import service
from taskapp.analytics.export import latest_export_at
from taskapp.analytics.figures import present
from taskapp.analytics.reports import MAX_WINDOW_DAYS, REPORTS, ReportRequest
from taskapp.services import parse
from taskapp.views import page_args, show_errors

bp = Blueprint("reports", __name__)
STATUS_LABELS = {"queued": _l("Queued"), "running": _l("Running"), "ready": _l("Ready"), "failed": _l("Failed")}
FIELD_MESSAGES = {
    "report": _l("Choose one of the reports."),
    "from_day": _l("Enter a date like 2026-03-01, up to today and not after the end of the period."),
    "to_day": _l("Enter a date up to today, on or after the start, at most %(days)d days after it.",
                 days=MAX_WINDOW_DAYS),
}


class ReportForm(FlaskForm):
    report = SelectField(_l("Report"), choices=[(name, report.title) for name, report in REPORTS.items()])
    from_day = DateField(_l("Start date"), validators=[Optional()], format="%Y-%m-%d")
    to_day = DateField(_l("End date"), validators=[Optional()], format="%Y-%m-%d")
    all_tasks = BooleanField(_l("Everyone's tasks, not only mine"))


@bp.context_processor
def _report_words():
    return {"report_status_labels": STATUS_LABELS}


@bp.route("/reports", methods=["GET", "POST"])
@login_required()
def page():
    form = ReportForm()
    if form.is_submitted():
        form.validate()  # every field in one pass: the form's rules, then the service's
        try:
            asked = parse(ReportRequest, {"report": form.report.data, "from_day": form.from_day.data,
                                          "to_day": form.to_day.data, "all_tasks": form.all_tasks.data})
            report = None if form.errors else service.request_report(g.identity, asked)
        except ValidationFailed as err:
            show_errors(form, err, FIELD_MESSAGES)
        else:
            if report is not None:
                return redirect(url_for("reports.detail", report_id=report["report_id"]))
    limit, cursor = page_args()
    reports, next_cursor = service.list_reports(g.identity, limit, cursor)
    next_url = url_for("reports.page", cursor=next_cursor) if next_cursor else None
    bucket = current_app.config["SETTINGS"].resource("ANALYTICS_BUCKET")
    return render_template("taskapp/reports.html", form=form, reports=reports, next_url=next_url,
                           exported_at=latest_export_at(bucket), export_form=EmptyForm(), busy=_busy(reports),
                           live_url=url_for("reports.live_list", cursor=cursor),
                           windows={name: report.window_days for name, report in REPORTS.items()}), \
        400 if form.errors else 200


def _busy(reports: list[dict]) -> bool:
    return any(r["status"] in ("queued", "running") for r in reports)


@bp.get("/reports/live")
@login_required()
def live_list():
    """The "my reports" table for the page's script (live.js) while a report is on its way."""
    limit, cursor = page_args()
    reports, _next = service.list_reports(g.identity, limit, cursor)
    return jsonify(busy=_busy(reports), html=render_template("taskapp/_reports_table.html", reports=reports),
                   announce=" · ".join(f"{r['title']}: {STATUS_LABELS[r['status']]}" for r in reports[:3]))


def _shown(report_id: str) -> tuple[dict, dict | None]:
    report = service.get_report(g.identity, report_id, figures=True)
    shown = None
    if report.get("figures"):
        figures = report["figures"]
        shown = present(report["report"], report["title"], figures["columns"], figures["rows"])
    return report, shown


@bp.get("/reports/<report_id>")
@login_required()
def detail(report_id: str):
    report, shown = _shown(report_id)
    return render_template("taskapp/report.html", report=report, shown=shown, form=EmptyForm())


@bp.get("/reports/<report_id>/live")
@login_required()
def live(report_id: str):
    """The report's progress (and, once ready, its figures) as HTML in JSON, for live.js: the page
    follows the report without reloading, and the status is announced to screen readers."""
    report, shown = _shown(report_id)
    html = render_template("taskapp/_report_body.html", report=report, shown=shown, form=EmptyForm())
    return jsonify(busy=report["status"] in ("queued", "running"), status=report["status"], html=html,
                   announce=_("%(report)s: %(status)s", report=report["title"], status=STATUS_LABELS[report["status"]]))


@bp.post("/reports/<report_id>/retry")
@login_required()
def retry(report_id: str):
    if EmptyForm().validate_on_submit():
        service.retry_report(g.identity, report_id)
        flash(_("The report is queued again."), "success")
    return redirect(url_for("reports.detail", report_id=report_id))


@bp.get("/reports/<report_id>/csv")
@login_required()
def csv_file(report_id: str):
    return redirect(service.csv_link(g.identity, report_id))


# --- JSON ----------------------------------------------------------------------------------------


def _with_links(report: dict) -> dict:
    ready = report["status"] == service.READY
    return {**report, "url": url_for("reports.api_get", report_id=report["report_id"], _external=True),
            "csv_url": url_for("reports.api_csv", report_id=report["report_id"], _external=True) if ready else None}


def _accepted(report: dict):
    return jsonify(_with_links(report)), 202, {"Location": url_for("reports.api_get", report_id=report["report_id"])}


@bp.post("/api/reports")
@api_auth_required()
def api_request():
    return _accepted(service.request_report(g.identity, load_json(ReportRequest)))


@bp.get("/api/reports")
@api_auth_required()
def api_list():
    limit, cursor = page_args()
    reports, next_cursor = service.list_reports(g.identity, limit, cursor)
    return jsonify(reports=[_with_links(report) for report in reports], cursor=next_cursor)


@bp.get("/api/reports/<report_id>")
@api_auth_required()
def api_get(report_id: str):
    return jsonify(_with_links(service.get_report(g.identity, report_id, figures=True)))


@bp.post("/api/reports/<report_id>/retry")
@api_auth_required()
def api_retry(report_id: str):
    return _accepted(service.retry_report(g.identity, report_id))


@bp.get("/api/reports/<report_id>/csv")
@api_auth_required()
def api_csv(report_id: str):
    """302 to a presigned GET valid for two minutes."""
    return redirect(service.csv_link(g.identity, report_id))
