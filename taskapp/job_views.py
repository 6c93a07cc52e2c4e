"""Import and export: the jobs page (with the CSV upload form), a job's page, downloads; the JSON API."""

from __future__ import annotations

from flask import Blueprint, Response, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from pydantic import BaseModel, ConfigDict

from shared.platform.auth import api_auth_required, login_required
from shared.platform.auth.forms import EmptyForm
from shared.platform.errors import ValidationFailed
from shared.platform.payloads import load_json
from taskapp import jobs, transfer
from taskapp.file_views import UploadDone, UploadRequest, upload_message
from taskapp.views import FIELD_MESSAGES, page_args

bp = Blueprint("jobs", __name__)
STATUS_LABELS = {"queued": _l("Queued"), "running": _l("Running"), "succeeded": _l("Done"), "failed": _l("Failed")}
FIELD_LABELS = {"title": _l("Title"), "description": _l("Description"), "status": _l("Status"),
                "priority": _l("Priority"), "due_date": _l("Due date"), "labels": _l("Labels"),
                "assignee": _l("Assignee"), "row": _l("Row")}
TEMPLATE_CSV = ("title,description,status,priority,due_date,labels,assignee\r\n"
                "주간 회의록 정리,3월 둘째 주,TODO,MEDIUM,2030-03-14,\"회의, 문서\",\r\n")


def describe(problem: dict) -> str:
    """A CSV problem in the reader's language: our field message where there is one."""
    if problem["row"] == 1:
        if problem["field"] == "title":
            return _("The first row must name the columns, with at least “title”.")
        return _("This column is not known; it was ignored.")
    return str(FIELD_MESSAGES.get(problem["field"], problem["reason"]))


@bp.context_processor
def _job_words():
    return {"job_status_labels": STATUS_LABELS, "field_labels": FIELD_LABELS, "describe": describe,
            "job_title": jobs.title}


def render_jobs(upload_error: str | None = None, status: int = 200):
    limit, cursor = page_args()
    items, next_cursor = jobs.list_jobs(g.identity, limit, cursor)
    upload = transfer.start_import_upload(g.identity, redirect=url_for("jobs.import_arrived", _external=True))
    return render_template("taskapp/jobs.html", jobs=items, upload=upload, busy=_busy(items),
                           upload_error=upload_error, form=EmptyForm(),
                           live_url=url_for("jobs.live_list", cursor=cursor),
                           next_url=url_for("jobs.page", cursor=next_cursor) if next_cursor else None), status


def _busy(items: list[dict]) -> bool:
    return any(job["status"] in (jobs.JobStatus.QUEUED, jobs.JobStatus.RUNNING) for job in items)


def _announce(job: dict) -> str:
    return _("%(job)s: %(status)s", job=jobs.title(job), status=STATUS_LABELS[job["status"]])


@bp.get("/jobs")
@login_required()
def page():
    return render_jobs()


@bp.get("/jobs/live")
@login_required()
def live_list():
    """The jobs table for the page's script (live.js) while a job is queued or running."""
    limit, cursor = page_args()
    items, _next = jobs.list_jobs(g.identity, limit, cursor)
    return jsonify(busy=_busy(items), html=render_template("taskapp/_jobs_table.html", jobs=items),
                   announce=" · ".join(_announce(job) for job in items[:3]))


@bp.get("/jobs/import/uploaded")
@login_required()
def import_arrived():
    """Where S3 sends the browser after the CSV's upload: hands the key on by POST (file_views.arrived_page)."""
    from taskapp.file_views import arrived_page

    return arrived_page(url_for("jobs.import_uploaded"))


@bp.post("/jobs/import/uploaded")
@login_required()
def import_uploaded():
    """The CSV's key, posted by the arrived page: check it and start the import."""
    if not EmptyForm().validate_on_submit():
        return redirect(url_for("jobs.page"))
    try:
        transfer.start_import(g.identity, request.form.get("key"))
    except ValidationFailed as err:
        hint = _("Upload a CSV file (UTF-8).")
        return render_jobs(upload_message(err, transfer.MAX_BYTES, hint), status=400)
    flash(_("The import has started. This page shows when it is done."), "success")
    return redirect(url_for("jobs.page"))


@bp.post("/jobs/export")
@login_required()
def export():
    if EmptyForm().validate_on_submit():
        jobs.enqueue(g.identity, "export_tasks", {})
        flash(_("The export has started. This page shows when it is ready to download."), "success")
    return redirect(url_for("jobs.page"))


@bp.get("/jobs/template.csv")
@login_required()
def template():
    return Response("\ufeff" + TEMPLATE_CSV, mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=tasks-template.csv"})


@bp.get("/jobs/<job_id>")
@login_required()
def detail(job_id: str):
    job = jobs.get_job(g.identity, job_id)
    spec = jobs.kinds().get(job["kind"])
    if spec and spec.page:  # a kind with a page of its own (a report)
        return redirect(spec.page(job_id))
    return render_template("taskapp/job.html", job=job)


@bp.get("/jobs/<job_id>/live")
@login_required()
def live(job_id: str):
    """A job's status and result as HTML in JSON, for live.js (the page follows the job, no reload)."""
    job = jobs.get_job(g.identity, job_id)
    return jsonify(busy=_busy([job]), status=job["status"], announce=_announce(job),
                   html=render_template("taskapp/_job_body.html", job=job))


@bp.get("/jobs/<job_id>/download")
@login_required()
def download(job_id: str):
    return redirect(jobs.download_url(g.identity, job_id))


# --- JSON ----------------------------------------------------------------------------------------


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _with_link(job: dict) -> dict:
    link = url_for("jobs.api_download", job_id=job["job_id"], _external=True) if job["download"] else None
    return {**job, "download_url": link}


@bp.get("/api/jobs")
@api_auth_required()
def api_list():
    limit, cursor = page_args()
    items, next_cursor = jobs.list_jobs(g.identity, limit, cursor)
    return jsonify(jobs=[_with_link(job) for job in items], cursor=next_cursor)


@bp.get("/api/jobs/<job_id>")
@api_auth_required()
def api_get(job_id: str):
    return jsonify(_with_link(jobs.get_job(g.identity, job_id)))


@bp.get("/api/jobs/<job_id>/download")
@api_auth_required()
def api_download(job_id: str):
    """302 to a presigned GET valid for two minutes."""
    return redirect(jobs.download_url(g.identity, job_id))


@bp.post("/api/imports")
@api_auth_required()
def api_import_upload():
    """A presigned POST for the CSV; then POST its `key` to `complete` to start the import."""
    body = load_json(UploadRequest)
    upload = transfer.start_import_upload(g.identity, content_type=body.content_type, filename=body.filename)
    upload["complete"] = url_for("jobs.api_import", _external=True)
    return jsonify(upload), 201


@bp.post("/api/imports/complete")
@api_auth_required()
def api_import():
    job = transfer.start_import(g.identity, load_json(UploadDone).key)
    return _accepted(job)


@bp.post("/api/exports")
@api_auth_required()
def api_export():
    if request.content_length:
        load_json(ExportRequest)  # no options yet: anything sent is a mistake worth a 400
    return _accepted(jobs.enqueue(g.identity, "export_tasks", {}))


def _accepted(job: dict):
    location = url_for("jobs.api_get", job_id=job["job_id"])
    return jsonify(_with_link(job)), 202, {"Location": location}
