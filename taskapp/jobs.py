"""Background jobs on SQS: a registry of job kinds, `enqueue`, and the TASK_JOBS queue `handler`.

How a job kind works (all a new kind needs to know)
---------------------------------------------------
    from flask_babel import lazy_gettext as _l
    from pydantic import BaseModel, ConfigDict
    from taskapp.jobs import Job, JobFailed, job_kind

    class ReportParams(BaseModel):
        model_config = ConfigDict(extra="forbid")
        month: str

    @job_kind("monthly_report", ReportParams, title=_l("Monthly report"))
    def monthly_report(job: Job, params: ReportParams) -> dict:
        ...
        return {"rows": 12, "download": "<key in TASK_FILES_BUCKET>", "filename": "report-2026-01.csv"}

- Registering: decorate the function in a module listed in KIND_MODULES (imported before a job is
  enqueued or run). `title` names the kind on the jobs page and in notifications: a lazy_gettext
  string, or a function of the parsed params returning one (an analytics report names itself). Optional:
  `retryable=True` lets the owner retry a failed job (`retry`), and `page` gives the URL of a
  kind's own page for one job (a function of the job id; the jobs page and notifications lead there).
- Enqueuing: `enqueue(identity, "monthly_report", {"month": "2026-01"})` validates the params with the
  model (400 naming each bad field, like every JSON body), stores the job as `queued` and sends
  one message to TASK_JOBS; it returns the job as `public` shows it (202 material for a route).
- Running: the handler calls the function with `job` (id, kind, attempt, and `owner`, the
  Identity of who enqueued it; act for them, e.g. with taskapp.services) and the parsed params.
  It can run more than once for one job (a retry, a redelivered message): make it idempotent.
  `job.seconds_left()` is the time before Lambda stops the invocation (None when unknown): work
  that may take long (an Athena query) should give up before, with a JobFailed.
- Returning: a JSON-able dict, stored as the job's `result`; the job is `succeeded`. With
  `download` (a key in TASK_FILES_BUCKET) and optionally `filename`, the owner gets a download
  link (`/jobs/<id>/download`, a short presigned GET after the owner check).
- Failing for good: raise `JobFailed(reason, details)` when retrying cannot help (bad input). The
  job is `failed` at once with `reason` (shown to the user: no internal detail) and `details`
  (JSON-able, e.g. the rows at fault); the message is deleted.
- Failing for now: any other exception. The message is reported as a batch item failure, so SQS
  delivers it again after the visibility timeout; the user sees the job queued again with its
  attempts and a generic reason (the exception goes to the log only). The attempt that reaches the
  queue's maxReceiveCount (shared.platform.aws.MAX_RECEIVES) marks the job `failed` and
  `dead_lettered`, and SQS then moves the message to the dead-letter queue for an operator; a
  message redriven from there runs the job again.
- Either way the owner gets an in-app notification when the job ends (taskapp.notifications).
- Retrying (kinds registered with `retryable=True`): `retry(identity, job_id)` puts the owner's
  failed job back in the queue with a new message; its attempts count again from 1.

Statuses: queued -> running -> succeeded | failed (running -> queued again on a temporary failure;
failed -> queued on a retry).

Keys (TASKS_TABLE, see taskapp.store):
    pk = "JOB#<job_id>"  sk = "JOB"
    gsi3pk = "JOBS#<owner sub>"  gsi3sk = "<created_at>#<job_id>"   a user's jobs, newest first
    gsi2pk = "JOBKIND#<owner sub>#<kind>"  gsi2sk = the same          a user's jobs of one kind
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from flask_babel import lazy_gettext as _l
from pydantic import BaseModel

from shared.platform.auth import Identity
from shared.platform.aws import MAX_RECEIVES, client
from shared.platform.batch import MalformedMessage, RecordFailed, process_sqs_batch
from shared.platform.errors import ApiError, Conflict, NotFound, ValidationFailed
from shared.platform.idempotency import InProgress
from taskapp import store

log = logging.getLogger(__name__)
LEASE_SECONDS = 900  # a running job's hold on its message when the handler has no deadline (Lambda's longest run)
KIND_MODULES = ("taskapp.transfer", "taskapp.analytics.service")  # importing these registers their kinds
# reasons a user reads (stored in English, translated on the page: they are in the catalogue)
TEMPORARY = _l("A temporary problem stopped this job; it will be tried again.")
GAVE_UP = _l("The job kept failing and was stopped; an operator can retry it.")
NOT_QUEUED = _l("The job could not be queued. Please try again.")


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class JobFailed(Exception):
    """A failure retrying cannot fix: the job fails at once with `reason` (shown to its owner; a
    lazy_gettext string is stored in English and translated on the page)."""

    def __init__(self, reason: str, details: Any = None):
        super().__init__(reason)
        self.reason = reason
        self.details = details


@dataclass(frozen=True)
class Job:
    job_id: str
    kind: str
    owner: Identity
    attempt: int
    deadline: float | None = None  # time.monotonic() when Lambda stops the invocation

    def seconds_left(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())


@dataclass(frozen=True)
class JobKind:
    name: str
    params: type[BaseModel]
    run: Callable[[Job, Any], dict]
    title: Any  # a lazy string, or a function of the parsed params giving one
    retryable: bool = False
    page: Callable[[str], str] | None = None  # the URL of one job's own page

    def title_of(self, params: dict | None) -> Any:
        if not callable(self.title):
            return self.title
        try:
            return self.title(self.params.model_validate(params or {}))
        except ValueError:  # params stored by an older version: the kind's name will do
            return self.name


_KINDS: dict[str, JobKind] = {}


def job_kind(name: str, params: type[BaseModel], *, title: Any, retryable: bool = False,
             page: Callable[[str], str] | None = None):
    """Register the decorated function as the job kind `name` (see the module docstring)."""

    def register(run: Callable[[Job, Any], dict]):
        _KINDS[name] = JobKind(name, params, run, title, retryable, page)
        return run

    return register


def kinds() -> dict[str, JobKind]:
    import importlib

    for module in KIND_MODULES:
        importlib.import_module(module)
    return _KINDS


def title(job: dict) -> Any:
    """What a job is called on the pages and in its notifications."""
    spec = kinds().get(job["kind"])
    return spec.title_of(job.get("params")) if spec else job["kind"]


# --- enqueue and read ------------------------------------------------------------------------------


def public(item: dict) -> dict:
    hidden = ("owner_email", "owner_name")
    job = {**dict.fromkeys(("started_at", "finished_at", "result", "error", "details")),
           **{k: v for k, v in store.without_keys(item).items() if k not in hidden}}
    job["download"] = bool((job.get("result") or {}).get("download")) and job["status"] == JobStatus.SUCCEEDED
    return job


def enqueue(identity: Identity, kind: str, params: dict) -> dict:
    """Store a queued job and send its message; returns the job. 400 for an unknown kind or bad params."""
    from taskapp.services import parse

    spec = kinds().get(kind)
    if spec is None:
        raise ValidationFailed({"kind": f"One of {', '.join(sorted(kinds()))}"})
    parsed = parse(spec.params, params)
    at, job_id = store.now_iso(), str(uuid.uuid4())
    item = {"pk": f"JOB#{job_id}", "sk": "JOB", "gsi3pk": f"JOBS#{identity.sub}", "gsi3sk": f"{at}#{job_id}",
            "gsi2pk": f"JOBKIND#{identity.sub}#{kind}", "gsi2sk": f"{at}#{job_id}", "job_id": job_id, "kind": kind,
            "params": parsed.model_dump(mode="json"), "status": JobStatus.QUEUED.value,
            "attempts": 0, "dead_lettered": False, "owner_sub": identity.sub, "owner_email": identity.email,
            "owner_name": identity.name, "created_at": at, "updated_at": at}
    store.ddb().put_item(TableName=store.table(), Item=store.dump(item), ConditionExpression="attribute_not_exists(pk)")
    _send(job_id, kind)
    return public(item)


def _send(job_id: str, kind: str) -> None:
    """The job's message to TASK_JOBS; if SQS cannot take it the job fails (503 for the caller)."""
    try:
        client("sqs").send_message(QueueUrl=store.settings().resource("TASK_JOBS_QUEUE_URL"),
                                   MessageBody=json.dumps({"job_id": job_id}),
                                   MessageAttributes={"kind": {"DataType": "String", "StringValue": kind}})
    except Exception:
        log.exception("job %s could not be queued", job_id)
        _finish(job_id, JobStatus.FAILED, error=str(NOT_QUEUED))
        raise ApiError(503, "unavailable", str(NOT_QUEUED)) from None


def retry(identity: Identity, job_id: str) -> dict:
    """Queue the owner's failed job again (kinds registered `retryable`); the job. 404 for anyone
    else's, 409 unless it has failed (a double click queues it once)."""
    item = _owned(identity, job_id)
    spec = kinds().get(item["kind"])
    if spec is None or not spec.retryable:
        raise Conflict("This job cannot be retried")
    at = store.now_iso()
    queued = _update(job_id, {"status": JobStatus.QUEUED.value, "attempts": 0, "dead_lettered": False,
                              "updated_at": at, "started_at": None, "finished_at": None, "error": None,
                              "details": None, "result": None, "retried_at": at},
                     "#status = :failed", {"failed": JobStatus.FAILED.value})
    if not queued:
        raise Conflict("Only a failed job can be retried")
    _send(job_id, spec.name)
    return public(_owned(identity, job_id))


def _owned(identity: Identity, job_id: str) -> dict:
    item = store.get(f"JOB#{job_id}", "JOB") if len(job_id) <= 64 else None
    if item is None or item["owner_sub"] != identity.sub:
        raise NotFound("Job not found")
    return item


def get_job(identity: Identity, job_id: str) -> dict:
    return public(_owned(identity, job_id))


def list_jobs(identity: Identity, limit: int = 20, cursor: str | None = None,
              kind: str | None = None) -> tuple[list[dict], str | None]:
    """The user's jobs (of one kind, if given), newest first (a Query on gsi3, or gsi2 for a kind);
    (page, next cursor or None)."""
    index, partition = ("gsi2", f"JOBKIND#{identity.sub}#{kind}") if kind else ("gsi3", f"JOBS#{identity.sub}")
    items, next_cursor = store.query_page(
        limit, cursor, IndexName=index, KeyConditionExpression=f"{index}pk = :pk", ScanIndexForward=False,
        ExpressionAttributeValues={":pk": {"S": partition}})
    return [public(item) for item in items], next_cursor


def download_url(identity: Identity, job_id: str) -> str:
    """A short-lived link to a finished job's file, for its owner only (anyone else: 404)."""
    from shared.platform.uploads import presigned_get

    job = _owned(identity, job_id)
    result = job.get("result") or {}
    if job["status"] != JobStatus.SUCCEEDED or not result.get("download"):
        raise NotFound("This job has no file to download")
    return presigned_get(store.settings().resource("TASK_FILES_BUCKET"), result["download"],
                         result.get("filename") or "download")


# --- running -------------------------------------------------------------------------------------


def handler(event, context):
    """TASK_JOBS queue: run each message's job (see the module docstring for retries and dead letters)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    deadline = time.monotonic() + remaining() / 1000 if remaining else None
    with store.handler_settings():
        return process_sqs_batch(event, lambda record: _run_record(record, deadline))


def _update(job_id: str, values: dict, condition: str | None = None, condition_values: dict | None = None) -> bool:
    """SET the values (REMOVE those that are None), if `condition` holds; whether it did."""
    sets = [k for k, v in values.items() if v is not None]
    removes = [k for k, v in values.items() if v is None]
    kwargs: dict[str, Any] = {
        "TableName": store.table(), "Key": store.key(f"JOB#{job_id}", "JOB"),
        "UpdateExpression": "SET " + ", ".join(f"#{k} = :{k}" for k in sets)
                            + (" REMOVE " + ", ".join(f"#{k}" for k in removes) if removes else ""),
        "ExpressionAttributeNames": {f"#{k}": k for k in values},
        "ExpressionAttributeValues": store.dump({f":{k}": v for k, v in values.items() if v is not None}
                                                | {f":{k}": v for k, v in (condition_values or {}).items()}),
    }
    if condition:
        kwargs["ConditionExpression"] = condition
    ddb = store.ddb()
    try:
        ddb.update_item(**kwargs)
    except ddb.exceptions.ConditionalCheckFailedException:
        return False
    return True


def _finish(job_id: str, status: JobStatus, **values) -> None:
    at = store.now_iso()
    _update(job_id, {"status": status.value, "updated_at": at, "finished_at": at, **values})


def _run_record(record: dict, deadline: float | None = None) -> None:
    try:
        job_id = str(json.loads(record.get("body") or "")["job_id"])
    except (ValueError, KeyError, TypeError):
        raise MalformedMessage("not a job message (no job_id)") from None
    item = store.get(f"JOB#{job_id}", "JOB") if len(job_id) <= 64 else None
    if item is None:
        raise MalformedMessage(f"job {job_id[:64]} does not exist")
    spec = kinds().get(item["kind"])
    if spec is None:
        raise MalformedMessage(f"job {job_id} has the unknown kind {item['kind'][:40]}")
    attempt = int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1)
    # A finished job is not run again, unless an operator redrove its dead letter; a running one is not run by a
    # second delivery at the same time (its lease, until the first's deadline, must lapse first: a crash).
    now = time.time()
    lease = int((now + (deadline - time.monotonic())) if deadline else now + LEASE_SECONDS) + 1
    started = _update(job_id, {"status": JobStatus.RUNNING.value, "attempts": attempt, "updated_at": store.now_iso(),
                               "started_at": store.now_iso(), "dead_lettered": False, "lease_until": lease},
                      "#status = :queued OR (#status = :running AND (attribute_not_exists(lease_until)"
                      " OR lease_until < :now)) OR dead_lettered = :yes",
                      {"queued": JobStatus.QUEUED.value, "running": JobStatus.RUNNING.value, "yes": True,
                       "now": int(now)})
    if not started:
        current = store.get(f"JOB#{job_id}", "JOB") or {}
        if current.get("status") == JobStatus.RUNNING.value:
            raise InProgress(f"job {job_id} is being run by another delivery; retried later")
        log.info("job %s has already finished; message ignored", job_id)
        return
    owner = Identity(sub=item["owner_sub"], email=item.get("owner_email", ""), name=item.get("owner_name", ""),
                     groups=(), daycare_id=None, expires_at=0)
    job = Job(job_id=job_id, kind=spec.name, owner=owner, attempt=attempt, deadline=deadline)
    try:
        params = spec.params.model_validate(item.get("params") or {})
        result = spec.run(job, params)
    except JobFailed as failure:
        _finish(job_id, JobStatus.FAILED, error=str(failure.reason), details=failure.details)
        _tell_owner(job, item, succeeded=False)
        return
    except Exception as err:
        last = attempt >= MAX_RECEIVES
        if last:
            _finish(job_id, JobStatus.FAILED, dead_lettered=True, error=str(GAVE_UP))
            _tell_owner(job, item, succeeded=False)
        else:
            _update(job_id, {"status": JobStatus.QUEUED.value, "updated_at": store.now_iso(), "error": str(TEMPORARY)})
        raise RecordFailed(f"job {job_id} ({spec.name}) attempt {attempt} failed: {type(err).__name__}: {err}"
                           f"{'; giving up, to the dead-letter queue' if last else ''}") from err
    _finish(job_id, JobStatus.SUCCEEDED, result=result, error=None)
    _tell_owner(job, item, succeeded=True)


def _tell_owner(job: Job, item: dict, succeeded: bool) -> None:
    from taskapp.notifications import Kind, notify

    notify([job.owner.sub], Kind.JOB_SUCCEEDED if succeeded else Kind.JOB_FAILED, title=str(title(item)),
           job_id=job.job_id)
