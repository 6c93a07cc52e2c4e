"""Reports as jobs: asking for one, following it, its figures and CSV, retrying it. A report is a job
of the kind "report" (taskapp.jobs), its id the job's id; pages and JSON routes call these.

    report = request_report(identity, parse(ReportRequest, body))   # 403 all_tasks for a non-admin
    report = get_report(identity, report_id, figures=True)          # 404 for anyone but its owner
    retry_report(identity, report_id)                               # a failed one, queued again

The worker (`produce`, run by taskapp.jobs.handler) calls reports.run_report for the owner's scope:
the CSV goes to reports/<owner sub>/<report id>.csv in ANALYTICS_BUCKET, and the job's result is the
outcome (columns, row count, summary, the period). A ReportFailed fails the job at once with its
reason (fit to show; the owner may retry); any other error is retried by SQS like every job. Either
way the owner is notified (taskapp.jobs). Whether all tasks may be covered is decided when the
report is asked for and again when it is retried, never in the worker, which acts for the owner.
"""

from __future__ import annotations

from datetime import date

from flask import url_for

from shared.platform.auth import Identity
from shared.platform.errors import NotFound, ValidationFailed
from shared.platform.uploads import presigned_get
from taskapp import jobs, store
from taskapp.analytics.catalog import local_today
from taskapp.analytics.engines import ReportFailed, engine_for
from taskapp.analytics.figures import FiguresGone, read_figures
from taskapp.analytics.reports import MAX_WINDOW_DAYS, REPORTS, ReportRequest, Scope, result_key, run_report
from taskapp.jobs import Job, JobFailed, job_kind

KIND = "report"
READY = "ready"  # a report's word for a job that succeeded
STOP_BEFORE_LAMBDA = 5.0  # seconds: an Athena query is stopped this long before the invocation ends


def _title(request: ReportRequest):
    return REPORTS[request.report].title


@job_kind(KIND, ReportRequest, title=_title, retryable=True,
          page=lambda job_id: url_for("reports.detail", report_id=job_id))
def produce(job: Job, request: ReportRequest) -> dict:
    settings = store.settings()
    left = job.seconds_left()
    engine = engine_for(settings, timeout=None if left is None else max(1.0, left - STOP_BEFORE_LAMBDA))
    try:
        outcome = run_report(request, Scope(job.owner.sub, request.all_tasks), job.job_id, settings=settings,
                             engine=engine)
    except ReportFailed as err:
        raise JobFailed(str(err)) from None
    return outcome.as_dict()


# --- asking, reading, retrying -------------------------------------------------------------------


def _check_period(request: ReportRequest, today: date) -> None:
    """Periods end by today (a day to come has no figures yet) and span at most MAX_WINDOW_DAYS."""
    if request.to_day and request.to_day > today:
        raise ValidationFailed({"to_day": "Must not be after today"})
    if request.from_day and request.from_day > (request.to_day or today):
        raise ValidationFailed({"from_day": "Must not be after today"})
    if request.from_day and not request.to_day and (today - request.from_day).days >= MAX_WINDOW_DAYS:
        raise ValidationFailed({"from_day": f"The period can be at most {MAX_WINDOW_DAYS} days"})


def request_report(identity: Identity, request: ReportRequest) -> dict:
    """Queue a report for `identity` (all tasks only for an admin: 403); the report, queued."""
    Scope.of(identity, request.all_tasks)
    _check_period(request, local_today())
    return public(jobs.enqueue(identity, KIND, request.model_dump(mode="json")))


def _job(identity: Identity, report_id: str) -> dict:
    job = jobs.get_job(identity, report_id)
    if job["kind"] != KIND:
        raise NotFound("Report not found")
    return job


def get_report(identity: Identity, report_id: str, figures: bool = False) -> dict:
    """One of the user's reports; with `figures`, a ready report's rows too (read from its CSV)."""
    report = public(_job(identity, report_id))
    if figures and report["status"] == READY:
        try:
            columns, rows, truncated = read_figures(_bucket(), result_key(Scope(identity.sub), report_id))
        except FiguresGone:
            report["figures"] = None
        else:
            report["figures"] = {"columns": columns, "rows": rows, "truncated": truncated}
    return report


def list_reports(identity: Identity, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    items, next_cursor = jobs.list_jobs(identity, limit, cursor, kind=KIND)
    return [public(job) for job in items], next_cursor


def retry_report(identity: Identity, report_id: str) -> dict:
    """Queue a failed report again, with the scope it was asked for if the user still may have it."""
    job = _job(identity, report_id)
    Scope.of(identity, bool(job["params"].get("all_tasks")))
    return public(jobs.retry(identity, report_id))


def csv_link(identity: Identity, report_id: str) -> str:
    """A two-minute link to a ready report's CSV, for its owner only (anyone else: 404)."""
    report = get_report(identity, report_id)
    if report["status"] != READY:
        raise NotFound("This report has no file yet")
    name = f"{report['report']}-{report['period']['as_of']}.csv"
    return presigned_get(_bucket(), result_key(Scope(identity.sub), report_id), name)


def _bucket() -> str:
    return store.settings().resource("ANALYTICS_BUCKET")


# --- how a report is shown ---------------------------------------------------------------------


def _progress(job: dict, status: str) -> list[dict]:
    """The stages a report goes through, each with when it was reached (None: not yet)."""
    running = job["status"] in ("running", "succeeded", "failed") and job.get("started_at")
    last = "failed" if status == "failed" else READY
    return [{"stage": "queued", "at": job.get("retried_at") or job["created_at"], "done": True},
            {"stage": "running", "at": job.get("started_at") if running else None, "done": bool(running)},
            {"stage": last, "at": job.get("finished_at"), "done": status in (READY, "failed")}]


def public(job: dict) -> dict:
    """A report as its owner sees it (pages and JSON): never the storage keys or the bucket."""
    request = ReportRequest.model_validate(job["params"])
    status = READY if job["status"] == jobs.JobStatus.SUCCEEDED else job["status"]
    result = job.get("result") or {}
    report = {
        "report_id": job["job_id"], "report": request.report, "title": str(REPORTS[request.report].title),
        "status": status, "attempts": job["attempts"], "error": job.get("error"),
        "request": request.model_dump(mode="json", exclude={"report"}),
        "progress": _progress(job, status), "created_at": job["created_at"], "finished_at": job.get("finished_at"),
    }
    if status == READY:
        parameters = result.get("parameters") or {}
        period = {"as_of": parameters.get("today"), "data_exported": parameters.get("snapshot_dt"),
                  "exported_at": result.get("exported_at")}
        if REPORTS[request.report].window_days:  # the others are "as of today"
            period.update(from_day=parameters.get("from_day"), to_day=parameters.get("to_day"))
        report.update(period=period, rows_total=result.get("rows"), summary=result.get("summary"))
    return report
