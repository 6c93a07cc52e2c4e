"""Task attachments: uploaded by the browser straight to S3, checked by the server, then recorded.

    S3 (TASK_FILES_BUCKET)   tasks/<task_id>/<uploader sub>/<file_id>     never the user's file name
    DynamoDB (TASKS_TABLE)   pk = "TASK#<task_id>"  sk = "FILE#<file_id>"   one Query lists a task's files

1. `start_upload`: the caller may see the task; a presigned POST for a new key under the task and
   the caller, limited to MAX_BYTES and TYPES (shared.platform.uploads).
2. The browser (or a client) POSTs the file to S3; a page's form is redirected back by S3.
3. `complete_upload(key)`: the key must be the caller's, for this task; shared.platform.uploads.take_upload
   copies the object to `<key>.checked` (a key no presigned POST names), deletes the upload, and checks
   the copy's size, type and content (a bad object is deleted: 400 naming `file`); the metadata is
   recorded, and only the checked copy is ever served. Completing twice records once.

Downloads are short presigned GETs handed out after the task's permission check (anyone else gets
404, as for the task). Deleting a task deletes every object under its prefix (also uploads never
completed) and, with the task in one transaction, its metadata.
"""

from __future__ import annotations

import re
import uuid

from shared.platform.auth import Identity
from shared.platform.aws import client
from shared.platform.errors import Forbidden, NotFound, ValidationFailed
from shared.platform.uploads import UploadPolicy, delete_objects, presigned_get, presigned_post, take_upload
from taskapp import services, store

MAX_BYTES = 10 * 1024 * 1024
MAX_FILES = 20  # per task: keeps deleting a task one transaction
TOO_MANY = f"A task can have at most {MAX_FILES} files"
OFFICE = "application/vnd.openxmlformats-officedocument"
TYPES = frozenset({
    "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain", "text/csv",
    "application/zip", f"{OFFICE}.wordprocessingml.document", f"{OFFICE}.spreadsheetml.sheet",
    f"{OFFICE}.presentationml.presentation",
})
POLICY = UploadPolicy(max_bytes=MAX_BYTES, content_types=TYPES)
CHECKED = ".checked"  # suffix of the checked copy, the only object ever served
KEY = re.compile(r"^tasks/(?P<task>[^/]{1,64})/(?P<sub>[^/]{1,64})/(?P<file>[0-9a-f]{32})$")


def _bucket() -> str:
    return store.settings().resource("TASK_FILES_BUCKET")


def _items(task_id: str) -> list[dict]:
    page = store.ddb().query(
        TableName=store.table(), KeyConditionExpression="pk = :pk AND begins_with(sk, :file)", ConsistentRead=True,
        ExpressionAttributeValues={":pk": {"S": f"TASK#{task_id}"}, ":file": {"S": "FILE#"}})
    return [store.load(raw) for raw in page["Items"]]  # at most MAX_FILES small items: one page


def _new_key(identity: Identity, task_id: str) -> str:
    return f"tasks/{task_id}/{identity.sub}/{uuid.uuid4().hex}"


def public(item: dict) -> dict:
    return store.without_keys(item)


def visible_task(identity: Identity, task_id: str) -> None:
    """404 unless the caller may see the task."""
    services.visible(identity, task_id)


def list_files(identity: Identity, task_id: str) -> list[dict]:
    services.visible(identity, task_id)
    return sorted((public(item) for item in _items(task_id)), key=lambda f: f["uploaded_at"])


def task_page(identity: Identity, task_id: str, redirect: str) -> dict:
    """For the task's page, with one Query of its partition: the task (404 as `services.visible`),
    its files, and a presigned POST for a new one (None when the task has MAX_FILES)."""
    items = store.ddb().query(
        TableName=store.table(), KeyConditionExpression="pk = :pk", ConsistentRead=True,
        ExpressionAttributeValues={":pk": {"S": f"TASK#{task_id}"}})["Items"] if len(task_id) <= 64 else []
    loaded = [store.load(raw) for raw in items]
    task = services.visible(identity, task_id, next((item for item in loaded if item["sk"] == "TASK"), None))
    attachments = sorted((public(i) for i in loaded if i["sk"].startswith("FILE#")), key=lambda f: f["uploaded_at"])
    upload = None
    if len(attachments) < MAX_FILES:
        upload = {**presigned_post(_bucket(), _new_key(identity, task_id), POLICY, None, None, redirect=redirect),
                  "max_bytes": MAX_BYTES}
    return {"task": services.public(task), "attachments": attachments, "upload": upload}


def start_upload(identity: Identity, task_id: str, content_type: str | None = None, filename: str | None = None,
                 redirect: str | None = None) -> dict:
    """A presigned POST for one new attachment of a task the caller may see."""
    services.visible(identity, task_id)
    if len(_items(task_id)) >= MAX_FILES:
        raise ValidationFailed({"file": TOO_MANY})
    key = _new_key(identity, task_id)
    post = presigned_post(_bucket(), key, POLICY, content_type, filename, redirect=redirect)
    return {"url": post["url"], "fields": post["fields"], "key": key, "max_bytes": MAX_BYTES,
            "content_types": sorted(TYPES)}


def complete_upload(identity: Identity, task_id: str, key: str | None) -> dict:
    """Check what arrived at `key` and record it; the attachment. 400 naming `key` or `file`."""
    services.visible(identity, task_id)
    match = KEY.match(key or "")
    if not match or match["task"] != task_id or match["sub"] != identity.sub:
        raise ValidationFailed({"key": "Not an upload of yours for this task"})
    existing = store.get(f"TASK#{task_id}", f"FILE#{match['file']}")
    if existing:
        return public(existing)
    # checked and served as a copy no presigned POST can write (the upload's form stays valid for minutes)
    stored = take_upload(_bucket(), key, POLICY, key + CHECKED)
    if len(_items(task_id)) >= MAX_FILES:
        delete_objects(_bucket(), [stored.key])
        raise ValidationFailed({"file": TOO_MANY})
    item = {"pk": f"TASK#{task_id}", "sk": f"FILE#{match['file']}", "file_id": match["file"], "task_id": task_id,
            "key": stored.key, "filename": stored.filename, "size": stored.size, "content_type": stored.content_type,
            "uploaded_by": identity.sub, "uploaded_by_email": identity.email, "uploaded_at": store.now_iso()}
    ddb = store.ddb()
    try:
        ddb.put_item(TableName=store.table(), Item=store.dump(item), ConditionExpression="attribute_not_exists(pk)")
    except ddb.exceptions.ConditionalCheckFailedException:
        pass  # completed twice at once: the first record stands
    return public(item)


def _file(identity: Identity, task_id: str, file_id: str) -> tuple[dict, dict]:
    task = services.visible(identity, task_id)
    item = store.get(f"TASK#{task_id}", f"FILE#{file_id}") if re.fullmatch(r"[0-9a-f]{32}", file_id) else None
    if item is None:
        raise NotFound("File not found")
    return task, item


def download_url(identity: Identity, task_id: str, file_id: str) -> str:
    """A link valid for two minutes, for the task's owner and assignee only."""
    _, item = _file(identity, task_id, file_id)
    return presigned_get(_bucket(), item["key"], item["filename"])


def delete_file(identity: Identity, task_id: str, file_id: str) -> None:
    """The uploader or the task's owner removes a file (object and record)."""
    task, item = _file(identity, task_id, file_id)
    if identity.sub not in (item["uploaded_by"], task["owner_sub"]):
        raise Forbidden("Only the task's owner or the file's uploader can remove it")
    delete_objects(_bucket(), [item["key"]])
    store.ddb().delete_item(TableName=store.table(), Key=store.key(f"TASK#{task_id}", f"FILE#{file_id}"))


def delete_task(identity: Identity, task_id: str) -> None:
    """The owner deletes a task with its files: the objects first, then the task and the files'
    records in one transaction (MAX_FILES keeps it within DynamoDB's limit)."""
    task = services.visible(identity, task_id)
    if task["owner_sub"] != identity.sub:
        raise Forbidden("Only the owner can delete a task")
    file_keys = remove_task_objects(task_id)
    pk = f"TASK#{task_id}"
    ddb = store.ddb()
    try:
        ddb.transact_write_items(TransactItems=[
            {"Delete": {"TableName": store.table(), "Key": store.key(pk, "TASK"),
                        "ConditionExpression": "attribute_exists(pk)"}},
            *({"Delete": {"TableName": store.table(), "Key": store.key(pk, sk)}} for sk in file_keys)])
    except ddb.exceptions.TransactionCanceledException:
        raise NotFound("Task not found") from None


def remove_task_objects(task_id: str) -> list[str]:
    """Delete every object under the task's prefix; the sort keys of its file records (to delete with it)."""
    s3, bucket = client("s3"), _bucket()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"tasks/{task_id}/"):
        delete_objects(bucket, [obj["Key"] for obj in page.get("Contents", [])])
    return [item["sk"] for item in _items(task_id)]
