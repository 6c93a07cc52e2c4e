"""Tasks: validation, permissions, optimistic concurrency and listing, over one DynamoDB table.

Key design (table TASKS_TABLE, every key attribute a string; see shared/tools/provision.py)
----------------------------------------------------------------------------------
Single table (the map of all its key spaces: taskapp/store.py). The task itself is one item:

    pk = "TASK#<task_id>"      sk = "TASK"

Listing never scans. Four GSIs give a user's tasks in order, each a Query on the user's
partition (all projections ALL):

    gsi1  gsi1pk = "OWNER#<sub>"     gsi1sk = "<status>#<due or 9999-12-31>#<created_at>#<task_id>"
    gsi2  gsi2pk = "ASSIGNEE#<sub>"  gsi2sk = same as gsi1sk
    gsi3  gsi3pk = "OWNER#<sub>"     gsi3sk = "<created_at>#<task_id>"
    gsi4  gsi4pk = "ASSIGNEE#<sub>"  gsi4sk = same as gsi3sk

- sort=due (default): gsi1/gsi2, ascending; a status filter is `begins_with(sk, "<status>#")`
  on the key, so it is free. Without a status filter the order is status, then due date,
  then creation (no due date sorts last).
- sort=created: gsi3/gsi4, newest first; a status filter there is a FilterExpression.
- sort=due_desc and sort=created_asc read the same indexes backwards (the task table's column
  headers toggle the direction); the cursor works the same either way.
- label (`contains(labels, :label)`), overdue (`due_date < today AND status <> DONE`) and
  assignee=<email> on the owner index (`assignee_sub = :sub`) are FilterExpressions: they
  cost read capacity for the items they drop, never a Scan. Queries loop until a page is full.
- gsi2/gsi4 attributes exist only while a task has an assignee other than its owner (sparse
  indexes), so a task never appears twice.
- The list is the tasks the user owns or is assigned: one Query on the owner index and one on
  the assignee index, merged by the same sort key. The opaque `cursor` is base64 JSON holding,
  for each of the two queries, the key of the last item handed out (an ExclusiveStartKey built
  from that item, not DynamoDB's LastEvaluatedKey, because the merge may stop mid-page) or
  "done". assignee=me uses only the assignee query.

Permissions live here: the owner and the assignee read and edit; anyone else gets 404 (the
task's existence is not revealed); only the owner deletes (the assignee gets 403).
Every write of an existing task is a put conditioned on `version = <expected>`; a stale
version is 409 and nothing is applied. A saved change notifies whom it concerns
(taskapp.notifications.task_changed); deleting a task deletes its files (taskapp.files).
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from shared.platform.auth import Identity
from shared.platform.aws import client
from shared.platform.errors import ApiError, Conflict, NotFound, ValidationFailed
from shared.platform.payloads import validate
from taskapp import notifications, store
from taskapp.store import decode_cursor, dump, encode_cursor, load, now_iso, without_keys

NO_DUE = "9999-12-31"
MAX_LIMIT = 100
DEFAULT_LIMIT = 20
# sort -> (index family, ascending): "due" reads gsi1/gsi2, "created" gsi3/gsi4
SORTS = {"due": ("due", True), "due_desc": ("due", False), "created": ("created", False),
         "created_asc": ("created", True)}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Status(StrEnum):
    TODO = "TODO"
    IN_PROGRESS = "IN_PROGRESS"
    DONE = "DONE"


class Priority(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30)]


def _check_labels(labels: list[str] | None) -> list[str] | None:
    if labels is None:
        return None
    unique = list(dict.fromkeys(labels))
    if len(unique) > 10:
        raise ValueError("At most 10 labels")
    return unique


def _check_email(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    if not value:
        return None
    if not EMAIL.match(value):
        raise ValueError("Enter a valid email address")
    return value


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    status: Status = Status.TODO
    priority: Priority = Priority.MEDIUM
    due_date: date | None = None
    labels: list[Label] = Field(default_factory=list)
    assignee: str | None = None

    _labels = field_validator("labels")(_check_labels)
    _assignee = field_validator("assignee")(_check_email)


class TaskPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    status: Status | None = None
    priority: Priority | None = None
    due_date: date | None = None
    labels: list[Label] | None = None
    assignee: str | None = None
    version: int | None = Field(default=None, ge=1)

    _labels = field_validator("labels")(_check_labels)
    _assignee = field_validator("assignee")(_check_email)

    @field_validator("title", "status", "priority")
    @classmethod
    def _not_null(cls, value):
        if value is None:
            raise ValueError("May not be null")
        return value


def parse(model: type[BaseModel], data: dict) -> Any:
    """`data` as `model`, or ValidationFailed naming each bad top-level field (the forms' field names)."""
    try:
        return validate(model, data)
    except ValidationFailed as err:
        fields: dict[str, str] = {}
        for name, message in err.fields.items():
            fields.setdefault(name.split(".")[0], message)
        raise ValidationFailed(fields) from None


# --- items ----------------------------------------------------------------------------------------


def _with_keys(task: dict) -> dict:
    """The stored item: the task plus its table and index keys (see the module docstring)."""
    item = {k: v for k, v in task.items() if not k.startswith("gsi") and k not in ("pk", "sk")}
    due_key = f"{task['status']}#{task.get('due_date') or NO_DUE}#{task['created_at']}#{task['task_id']}"
    created_key = f"{task['created_at']}#{task['task_id']}"
    item.update(pk=f"TASK#{task['task_id']}", sk="TASK",
                gsi1pk=f"OWNER#{task['owner_sub']}", gsi1sk=due_key,
                gsi3pk=f"OWNER#{task['owner_sub']}", gsi3sk=created_key)
    assignee = task.get("assignee_sub")
    if assignee and assignee != task["owner_sub"]:
        item.update(gsi2pk=f"ASSIGNEE#{assignee}", gsi2sk=due_key, gsi4pk=f"ASSIGNEE#{assignee}", gsi4sk=created_key)
    return item


def public(item: dict) -> dict:
    """The task as callers see it: no storage keys."""
    return {**dict.fromkeys(("due_date", "assignee_sub", "assignee_email", "completed_at")), **without_keys(item)}


_known_users: dict[tuple[str, str], tuple[float, tuple[str, str]]] = {}
USER_CACHE_SECONDS = 300  # an import assigning many rows to one person asks Cognito once


def check_assignee(email: str) -> None:
    """400 naming `assignee` unless a user of the pool has this (well-formed) email address."""
    resolve_user(_check_email(email) or "")


def resolve_user(email: str) -> tuple[str, str]:
    """(sub, email) of a user of the pool; 400 naming `assignee` when there is none."""
    pool = store.settings().cognito_userpool_id
    cached = _known_users.get((pool, email))
    if cached and cached[0] > time.monotonic():
        return cached[1]
    idp = client("cognito-idp")
    try:
        user = idp.admin_get_user(UserPoolId=pool, Username=email)
    except idp.exceptions.UserNotFoundException:
        raise ValidationFailed({"assignee": "No user has this email address"}) from None
    attributes = {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}
    found = attributes["sub"], attributes.get("email", email)
    if len(_known_users) > 1000:
        _known_users.clear()
    _known_users[(pool, email)] = (time.monotonic() + USER_CACHE_SECONDS, found)
    return found


# --- commands --------------------------------------------------------------------------------------


def create_task(identity: Identity, data: TaskCreate, task_id: str | None = None, notify: bool = True) -> dict:
    """A new task owned by `identity`. With `task_id` (an import naming its rows), 409 when it exists;
    `notify=False` leaves telling the assignee to the caller (an import tells each person once)."""
    at = now_iso()
    task = {
        "task_id": task_id or str(uuid.uuid4()),
        "owner_sub": identity.sub,
        "owner_email": identity.email,
        "title": data.title,
        "description": data.description,
        "status": data.status.value,
        "priority": data.priority.value,
        "due_date": data.due_date.isoformat() if data.due_date else None,
        "labels": data.labels,
        "assignee_sub": None,
        "assignee_email": None,
        "created_at": at,
        "updated_at": at,
        "completed_at": at if data.status == Status.DONE else None,
        "version": 1,
        "history": [{"from": None, "to": data.status.value, "at": at, "by": identity.sub}],
    }
    if data.assignee:
        task["assignee_sub"], task["assignee_email"] = resolve_user(data.assignee)
    item = _with_keys(task)
    outgoing = notifications.task_change_notices(identity, None, item) if notify else []
    try:  # the notices are saved with the task (an outbox), then sent
        notifications.save_with_notices({"TableName": store.table(), "Item": dump(item),
                                         "ConditionExpression": "attribute_not_exists(pk)"}, outgoing)
    except notifications.ConditionFailed:
        raise Conflict("This task exists already") from None
    notifications.send(outgoing)
    return public(item)


def _fetch(task_id: str) -> dict | None:
    return store.get(f"TASK#{task_id}", "TASK")


def visible(identity: Identity, task_id: str, task: dict | None = None) -> dict:
    """The stored task (or `task`, already read) if `identity` may see it; else 404, existence unrevealed."""
    if task is None and len(task_id) <= 64:
        task = _fetch(task_id)
    if task is None or identity.sub not in (task["owner_sub"], task.get("assignee_sub")):
        raise NotFound("Task not found")
    return task


def get_task(identity: Identity, task_id: str) -> dict:
    return public(visible(identity, task_id))


def update_task(identity: Identity, task_id: str, changes: TaskPatch, version: int | None) -> dict:
    """Apply the fields set in `changes` if the task is still at `version`; else 409, nothing applied."""
    task = visible(identity, task_id)
    if version is None:
        raise ValidationFailed({"version": "Send the version you edited (or an If-Match header)"})
    if version != task["version"]:
        raise Conflict("The task was changed by someone else; reload it and try again")
    at = now_iso()
    updated = dict(task)
    fields = changes.model_fields_set - {"version"}
    for name in ("title", "description", "priority", "labels"):
        if name in fields:
            value = getattr(changes, name)
            updated[name] = value.value if isinstance(value, StrEnum) else value
    if "description" in fields and updated["description"] is None:
        updated["description"] = ""
    if "labels" in fields and updated["labels"] is None:
        updated["labels"] = []
    if "due_date" in fields:
        updated["due_date"] = changes.due_date.isoformat() if changes.due_date else None
    if "assignee" in fields:
        if changes.assignee:
            updated["assignee_sub"], updated["assignee_email"] = resolve_user(changes.assignee)
        else:
            updated["assignee_sub"] = updated["assignee_email"] = None
    if "status" in fields and changes.status.value != task["status"]:
        updated["status"] = changes.status.value
        updated["history"] = [*task.get("history", []),
                              {"from": task["status"], "to": updated["status"], "at": at, "by": identity.sub}]
        updated["completed_at"] = at if updated["status"] == Status.DONE else None
    updated["updated_at"] = at
    updated["version"] = task["version"] + 1
    item = _with_keys(updated)
    outgoing = notifications.task_change_notices(identity, task, item)
    try:  # the notices are saved with the change (an outbox), then sent
        notifications.save_with_notices({"TableName": store.table(), "Item": dump(item),
                                         "ConditionExpression": "version = :v",
                                         "ExpressionAttributeValues": {":v": {"N": str(version)}}}, outgoing)
    except notifications.ConditionFailed:
        raise Conflict("The task was changed by someone else; reload it and try again") from None
    notifications.send(outgoing)
    return public(item)


# --- listing ---------------------------------------------------------------------------------------


def _query(index: str, pk: str, start: dict | None, limit: int, prefix: str | None,
           filters: list[str], values: dict, names: dict, forward: bool = True) -> tuple[list[dict], bool]:
    """Up to `limit` raw items of one user's partition in index order; and whether more may follow."""
    n = index[-1]
    key = "#pk = :pk AND begins_with(#sk, :prefix)" if prefix else "#pk = :pk"
    used = key + " " + " ".join(filters)
    values = {k: v for k, v in values.items() if k in used}
    kwargs: dict[str, Any] = {
        "TableName": store.table(), "IndexName": index, "KeyConditionExpression": key,
        "ExpressionAttributeNames": {"#pk": f"gsi{n}pk", **({"#sk": f"gsi{n}sk"} if prefix else {}), **names},
        "ExpressionAttributeValues": {":pk": {"S": pk}, **({":prefix": {"S": prefix}} if prefix else {}), **values},
        "ScanIndexForward": forward,
        "Limit": limit,
    }
    if filters:
        kwargs["FilterExpression"] = " AND ".join(filters)
    items: list[dict] = []
    while len(items) < limit:
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = store.ddb().query(**kwargs)
        items.extend(page["Items"])
        start = page.get("LastEvaluatedKey")
        if not start:
            return items, len(items) > limit
    return items, True


def list_tasks(identity: Identity, *, status: str | None = None, assignee: str | None = None,
               label: str | None = None, overdue: bool = False, sort: str = "due",
               limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> tuple[list[dict], str | None]:
    """One page of the tasks `identity` owns or is assigned; (tasks, next cursor or None)."""
    problems = {}
    if status is not None and status not in Status.__members__:
        problems["status"] = "One of TODO, IN_PROGRESS, DONE"
    if sort not in SORTS:
        problems["sort"] = "One of " + ", ".join(SORTS)
    if not 1 <= limit <= MAX_LIMIT:
        problems["limit"] = f"Between 1 and {MAX_LIMIT}"
    if problems:
        raise ValidationFailed(problems)
    filters: list[str] = []
    values: dict = {}
    names: dict = {}
    prefix = None
    family, forward = SORTS.get(sort, ("due", True))
    if status and family == "due":
        prefix = f"{status}#"
    elif status:
        filters.append("#status = :status")
    if status:
        names["#status"] = "status"
        values[":status"] = {"S": status}
    if label:
        filters.append("contains(labels, :label)")
        values[":label"] = {"S": label.strip()}
    if overdue:
        filters.append("due_date < :today AND #status <> :done")
        names["#status"] = "status"
        values.update({":today": {"S": date.today().isoformat()}, ":done": {"S": Status.DONE.value}})

    owner_idx, assignee_idx = ("gsi1", "gsi2") if family == "due" else ("gsi3", "gsi4")
    sources: dict[str, tuple[str, str, list[str], dict]] = {}
    if assignee in (None, ""):
        sources["o"] = (owner_idx, f"OWNER#{identity.sub}", filters, values)
        sources["a"] = (assignee_idx, f"ASSIGNEE#{identity.sub}", filters, values)
    elif assignee == "me" or assignee.strip().lower() == identity.email.lower():
        sources["a"] = (assignee_idx, f"ASSIGNEE#{identity.sub}", filters, values)
    else:
        try:
            email = _check_email(assignee)
        except ValueError as err:
            raise ValidationFailed({"assignee": str(err)}) from None
        try:
            sub, _ = resolve_user(email)
        except ApiError:
            return [], None
        names = {**names, "#assignee": "assignee_sub"}
        sources["o"] = (owner_idx, f"OWNER#{identity.sub}", [*filters, "#assignee = :assignee"],
                        {**values, ":assignee": {"S": sub}})

    state = decode_cursor(cursor) if cursor else {}
    for name, start in state.items():  # "start", "done", or a key in this user's partition of the index
        index, pk = sources[name][:2] if name in sources else (None, None)
        n = index[-1] if index else ""
        if index is None or not (start in ("start", "done") or store.is_start_key(
                start, {"pk", "sk", f"gsi{n}pk", f"gsi{n}sk"}) and start[f"gsi{n}pk"] == {"S": pk}):
            raise ValidationFailed({"cursor": "Not a cursor from this list"})
    fetched: dict[str, tuple[list[dict], bool]] = {}
    for name, (index, pk, source_filters, source_values) in sources.items():
        start = state.get(name, "start")
        if start == "done":
            fetched[name] = ([], False)
            continue
        used_names = {k: v for k, v in names.items() if k in " ".join(source_filters)}
        begin = start if isinstance(start, dict) else None
        fetched[name] = _query(index, pk, begin, limit, prefix, source_filters, source_values, used_names,
                               forward)

    sort_attr = "gsi1sk" if family == "due" else "gsi3sk"
    merged = sorted(((raw[sort_attr]["S"], name, raw) for name, (items, _) in fetched.items() for raw in items),
                    key=lambda entry: entry[0], reverse=not forward)
    page = merged[:limit]
    next_state: dict[str, Any] = {}
    for name, (index, _pk, _f, _v) in sources.items():
        items, more = fetched[name]
        taken = [raw for _, source, raw in page if source == name]
        n = index[-1]
        if taken:
            last = taken[-1]
            next_state[name] = {k: last[k] for k in ("pk", "sk", f"gsi{n}pk", f"gsi{n}sk")}
            if len(taken) == len(items) and not more:
                next_state[name] = "done"
        elif items or more:
            next_state[name] = state.get(name) or "start"
        else:
            next_state[name] = "done"
    finished = all(v == "done" for v in next_state.values())
    tasks = [public(load(raw)) for _, _, raw in page]
    return tasks, None if finished else encode_cursor(next_state)
