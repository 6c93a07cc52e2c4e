"""taskapp's JSON routes for the OpenAPI document (shared.platform.openapi): endpoint -> Route."""

from __future__ import annotations

from shared.platform.openapi import Route
from taskapp.analytics.reports import ReportRequest
from taskapp.file_views import UploadDone, UploadRequest
from taskapp.job_views import ExportRequest
from taskapp.profiles import ProfileUpdate
from taskapp.services import MAX_LIMIT, TaskCreate, TaskPatch

PAGE = {"limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        "cursor": {"type": "string", "maxLength": 4096}}
TASK_QUERY = {**PAGE, "status": {"enum": ["TODO", "IN_PROGRESS", "DONE"]}, "assignee": {"type": "string"},
              "label": {"type": "string", "maxLength": 30}, "overdue": {"enum": ["true", "false"]},
              "sort": {"enum": ["due", "created"]}}
ID = ("400", "401", "403", "404")

ROUTES = {
    "tasks_api.api_list": Route("Tasks the caller owns or is assigned, one page", query=TASK_QUERY),
    "tasks_api.api_create": Route("Create a task", body=TaskCreate, status=201),
    "tasks_api.api_get": Route("One task", refusals=ID),
    "tasks_api.api_patch": Route("Change a task (its `version` must be the current one)", body=TaskPatch,
                                 refusals=(*ID, "409")),
    "tasks_api.api_delete": Route("Delete a task and its files (owner)", status=204, refusals=ID),
    "files.api_start": Route("A presigned form to upload an attachment to S3", body=UploadRequest, status=201),
    "files.api_complete": Route("Record an uploaded attachment (checked, kept as a copy)", body=UploadDone,
                                status=201),
    "files.api_list": Route("A task's attachments", refusals=ID),
    "files.api_download": Route("A download link for one attachment", status=302, refusals=ID),
    "files.api_delete": Route("Remove an attachment", status=204, refusals=ID),
    "jobs.api_list": Route("The caller's import and export jobs, one page", query=PAGE),
    "jobs.api_get": Route("One job", refusals=ID),
    "jobs.api_download": Route("A download link for an export's CSV", status=302, refusals=(*ID, "409")),
    "jobs.api_import_upload": Route("A presigned form to upload a CSV to import", body=UploadRequest, status=201),
    "jobs.api_import": Route("Start importing an uploaded CSV", body=UploadDone, status=202),
    "jobs.api_export": Route("Start exporting the caller's tasks as CSV", body=ExportRequest, status=202),
    "notifications.api_list": Route("The caller's notifications, newest first", query=PAGE),
    "notifications.api_read": Route("Mark one notification read", refusals=ID),
    "notifications.api_read_all": Route("Mark every notification read"),
    "profile.api_get": Route("The caller's profile and preferences"),
    "profile.api_patch": Route("Change the caller's profile and preferences", body=ProfileUpdate),
    "reports.api_request": Route("Ask for a report (runs in the background)", body=ReportRequest, status=202),
    "reports.api_list": Route("The caller's reports", query=PAGE),
    "reports.api_get": Route("One report", refusals=ID),
    "reports.api_retry": Route("Run a failed report again", status=202, refusals=(*ID, "409")),
    "reports.api_csv": Route("A download link for a report's CSV", status=302, refusals=(*ID, "409")),
    "analytics.api_export_now": Route("Export the task data for reports now (admins)", refusals=("401", "403")),
}
