"""CSV import and export of tasks, as jobs (see taskapp.jobs for how jobs run, retry and fail).

The CSV: UTF-8 (Excel's "CSV UTF-8" too, BOM and all), a header row, then one task per row:

    title, description, status, priority, due_date, labels, assignee

- `title` is required; `status` is TODO, IN_PROGRESS or DONE (or 할 일, 진행 중, 완료; empty is TODO);
  `priority` LOW, MEDIUM or HIGH (or 낮음, 보통, 높음; empty is MEDIUM); `due_date` YYYY-MM-DD;
  `labels` separated by commas; `assignee` the email of a user. The Korean headers 제목, 설명,
  상태, 우선순위, 마감일, 라벨, 담당자 work too.
- The columns an export adds (task_id, owner, created_at, updated_at, completed_at) are ignored,
  so an export imports back; any other unknown column is reported (row 1) and ignored.

Import: the file is uploaded to TASK_FILES_BUCKET under imports/<sub>/ like an attachment
(presigned POST, then shared.platform.uploads.take_upload: checked as a copy at <key>.checked, which
no form can write), and `start_import` queues the job (on the copy). The job
checks every row; each bad one is reported as {row, field, reason}, with the row number a
spreadsheet shows (the header is row 1), and every good one is created as the job's owner. A
row's task id derives from the job and the row, so a retried job never creates a row twice.
Each assignee is told once per import (how many tasks they were given), not once per row.
A file that cannot be read at all fails the job at once.

Export: every task the user owns or is assigned (the list's own queries, never a Scan), written
to exports/<sub>/<job_id>.csv; a cell a spreadsheet would run as a formula starts with '.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import date

from flask_babel import lazy_gettext as _l
from pydantic import BaseModel, ConfigDict, Field

from shared.platform.auth import Identity
from shared.platform.aws import client
from shared.platform.csvsafe import unquote_cell, write_csv
from shared.platform.errors import Conflict, ValidationFailed
from shared.platform.uploads import UploadPolicy, delete_objects, presigned_post, take_upload
from taskapp import jobs, services, store
from taskapp.jobs import Job, JobFailed, job_kind
from taskapp.notifications import Kind, notify
from taskapp.services import TaskCreate

MAX_BYTES = 1024 * 1024
MAX_ROWS = 1000  # also in the message of JobFailed below
MAX_REPORTED = 100  # bad rows kept in the job's result (the count is always exact)
IMPORT_POLICY = UploadPolicy(max_bytes=MAX_BYTES, content_types=frozenset({"text/csv", "text/plain"}))
IMPORT_KEY = re.compile(r"^imports/(?P<sub>[^/]{1,64})/[0-9a-f]{32}$")
CHECKED = ".checked"  # the checked copy of an upload: no presigned POST names such a key
CHECKED_KEY = re.compile(r"^imports/(?P<sub>[^/]{1,64})/[0-9a-f]{32}\.checked$")
ROW_IDS = uuid.UUID("5b1f6c2e-8d0b-4c53-9a51-3f0f7f0c2d11")  # namespace of imported rows' task ids

COLUMNS = ("title", "description", "status", "priority", "due_date", "labels", "assignee")
EXPORT_COLUMNS = ("task_id", *COLUMNS, "owner", "created_at", "updated_at", "completed_at")
HEADER_ALIASES = {"제목": "title", "설명": "description", "상태": "status", "우선순위": "priority",
                  "마감일": "due_date", "라벨": "labels", "담당자": "assignee"}
VALUE_ALIASES = {"status": {"할 일": "TODO", "진행 중": "IN_PROGRESS", "완료": "DONE"},
                 "priority": {"낮음": "LOW", "보통": "MEDIUM", "높음": "HIGH"}}


def _bucket() -> str:
    return store.settings().resource("TASK_FILES_BUCKET")


# --- import --------------------------------------------------------------------------------------


def start_import_upload(identity: Identity, redirect: str | None = None, content_type: str | None = None,
                        filename: str | None = None) -> dict:
    """A presigned POST for a CSV file to import."""
    key = f"imports/{identity.sub}/{uuid.uuid4().hex}"
    post = presigned_post(_bucket(), key, IMPORT_POLICY, content_type, filename, redirect=redirect)
    return {"url": post["url"], "fields": post["fields"], "key": key, "max_bytes": MAX_BYTES}


def start_import(identity: Identity, key: str | None) -> dict:
    """Check the uploaded CSV (400 naming `key` or `file`) and queue its import; the job."""
    match = IMPORT_KEY.match(key or "")
    if not match or match["sub"] != identity.sub:
        raise ValidationFailed({"key": "Not an upload of yours"})
    # the job reads the checked copy: the upload's form stays valid for minutes and could replace the file
    stored = take_upload(_bucket(), key, IMPORT_POLICY, key + CHECKED)
    return jobs.enqueue(identity, "import_tasks", {"key": stored.key})


class ImportParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=CHECKED_KEY.pattern)


def _read_rows(key: str) -> tuple[list[str], list[dict]]:
    s3 = client("s3")
    try:
        raw = s3.get_object(Bucket=_bucket(), Key=key)["Body"].read(MAX_BYTES + 1)
    except s3.exceptions.NoSuchKey:
        raise JobFailed(_l("The uploaded file is gone; please upload it again.")) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise JobFailed(_l("The file is not UTF-8 text; save it as “CSV UTF-8” and upload it again.")) from None
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        raise JobFailed(_l("The file is not a CSV file that can be read.")) from None
    headers = records[0] if records else []
    # blank lines are rows in a spreadsheet too: kept (empty), so row numbers match what the user sees
    rows = [_as_row(headers, values) for values in records[1:]]
    if "title" not in {_column(h) for h in headers}:
        raise JobFailed(_l("The first row must name the columns, with at least “title”."),
                        details=[{"row": 1, "field": "title", "reason": "The column is missing"}])
    if len(rows) > MAX_ROWS:
        raise JobFailed(_l("The file has too many rows: at most 1000 can be imported at once."))
    return headers, rows


def _as_row(headers: list[str], values: list[str]) -> dict:
    row: dict = dict(zip(headers, values, strict=False))
    if len(values) > len(headers):
        row[None] = values[len(headers):]  # more values than columns
    return row


def _column(header: str) -> str:
    header = header.strip()
    return HEADER_ALIASES.get(header, header.lower())


def _clean(value: str | None) -> str:
    return unquote_cell((value or "").strip())  # our export's quoting


def _task_data(headers: list[str], row: dict) -> tuple[dict, dict]:
    """(data for TaskCreate, problems) of one CSV row."""
    data, problems = {}, {}
    if row.get(None):
        problems["row"] = "More values than columns"
    for header in headers:
        name = _column(header)
        value = _clean(row.get(header))
        if name not in COLUMNS or not value:
            continue
        if name == "labels":
            data[name] = [part.strip() for part in value.split(",") if part.strip()]
        elif name in VALUE_ALIASES:
            data[name] = VALUE_ALIASES[name].get(value, value.upper())
        else:
            data[name] = value
    return data, problems


@job_kind("import_tasks", ImportParams, title=_l("Task import"))
def import_tasks(job: Job, params: ImportParams) -> dict:
    if not params.key.startswith(f"imports/{job.owner.sub}/"):
        raise JobFailed(_l("The file does not belong to this job's owner."))
    try:
        headers, rows = _read_rows(params.key)
    except JobFailed:
        delete_objects(_bucket(), [params.key])  # a file that can never be imported is not kept
        raise
    errors = [{"row": 1, "field": h.strip(), "reason": "Unknown column (ignored)"} for h in headers
              if _column(h) not in EXPORT_COLUMNS]
    bad_rows, imported, blank = 0, 0, 0
    assigned: dict[str, list[dict]] = {}  # assignee sub -> the tasks given to them
    for number, row in enumerate(rows, start=2):
        if not any(_clean(v) for k, v in row.items() if k is not None):
            blank += 1
            continue
        data, problems = _task_data(headers, row)
        try:
            if problems:
                raise ValidationFailed(problems)
            task = services.parse(TaskCreate, data)
            created = services.create_task(job.owner, task, task_id=str(uuid.uuid5(ROW_IDS, f"{job.job_id}:{number}")),
                                           notify=False)
        except ValidationFailed as err:
            bad_rows += 1
            errors += [{"row": number, "field": field, "reason": reason} for field, reason in err.fields.items()]
            continue
        except Conflict:
            pass  # created by an earlier attempt of this job
        else:
            if created["assignee_sub"] and created["assignee_sub"] != job.owner.sub:
                assigned.setdefault(created["assignee_sub"], []).append(created)
        imported += 1
    for sub, tasks in assigned.items():  # one notice per person, not one per row
        title = tasks[0]["title"] if len(tasks) == 1 else f"{tasks[0]['title']} (+{len(tasks) - 1})"
        notify([sub], Kind.ASSIGNED, title=title, actor=job.owner,
               task_id=tasks[0]["task_id"] if len(tasks) == 1 else None)
    delete_objects(_bucket(), [params.key])
    return {"rows": len(rows) - blank, "imported": imported, "failed": bad_rows,
            "errors": errors[:MAX_REPORTED], "errors_total": len(errors)}


# --- export --------------------------------------------------------------------------------------


class ExportParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@job_kind("export_tasks", ExportParams, title=_l("Task export"))
def export_tasks(job: Job, params: ExportParams) -> dict:
    rows, cursor = [], None
    while True:
        tasks, cursor = services.list_tasks(job.owner, sort="created", limit=services.MAX_LIMIT, cursor=cursor)
        for task in tasks:
            values = {**task, "assignee": task.get("assignee_email"), "owner": task.get("owner_email")}
            rows.append([values.get(column) for column in EXPORT_COLUMNS])
        if not cursor:
            break
    count = len(rows)
    key = f"exports/{job.owner.sub}/{job.job_id}.csv"
    client("s3").put_object(Bucket=_bucket(), Key=key, Body=write_csv(EXPORT_COLUMNS, rows),
                            ContentType="text/csv; charset=utf-8")
    return {"rows": count, "download": key, "filename": f"tasks-{date.today().isoformat()}.csv"}
