"""Notifications: one SNS message per recipient; email and SMS through each user's filtered
subscriptions, in-app through the topic's SQS queue and `handler`.

    notify(recipients, kind, title=..., actor=..., task_id=..., old_status=..., new_status=..., job_id=...)

publishes (through an outbox, below) one message per recipient sub (never to the user who acted) to
TASK_TOPIC_ARN, with the message attributes `user` (the recipient's Cognito sub), `kind`, and where they apply `task`,
`old_status`, `new_status`. A user's email and SMS subscriptions carry the filter policy
`{"user": [<sub>]}` (taskapp.profiles keeps them in step with the preferences), so each person
receives only their own. The message is structured per protocol: readable Korean and English text
for email and SMS, the JSON `Notice` for SQS.

The TASK_NOTIFICATIONS queue is subscribed with raw delivery and no filter; `handler` stores each
notice as an in-app notification of its recipient (if they want in-app ones) and counts it unread:

    pk = "USER#<sub>"   sk = "NOTE#<note_id>"      note_id = "<UTC time, compact>-<uuid hex>": newest last
    gsi1pk = "UNREAD#<sub>"  gsi1sk = sk           only while unread (sparse): "mark all read" queries it
    the profile item (USER#<sub>, PROFILE) holds `unread`, so the bell costs one GetItem per page

Outbox: a notice is written to the tasks table (pk "OUTBOX", sk "NOTE#<note_id>", with a 60-second claim and a
two-week `expiration` TTL) before SNS is called: in the same transaction as the task change it describes
(`task_change_notices` + `save_with_notices`, taskapp.services), or just before publishing (`notify`, jobs).
A notice SNS took is deleted from the outbox; one it did not (SNS down, the process gone) is published by
`relay`, the taskapp function's rate(1 minute) schedule, once its claim has lapsed.

Storing a notice and counting it is one transaction conditioned on the notice being new, so a
redelivered (or re-published) message is stored and counted once. A read notification expires by TTL
(`expiration`) 90 days after it was read; an unread one stays until read, so the bell's count stays right.
Marking read removes the gsi1 keys and subtracts
from the count in one transaction conditioned on the notice being unread.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from flask import has_request_context, url_for
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.platform.auth import Identity
from shared.platform.aws import client
from shared.platform.batch import MalformedMessage, process_sqs_batch, validation_summary
from shared.platform.errors import NotFound
from taskapp import store

log = logging.getLogger(__name__)
NOTE_ID = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{32}$")
SNS_BATCH = 10
TRANSACTION_ITEMS = 25
OUTBOX_PK = "OUTBOX"  # notices waiting for SNS: sk = "NOTE#<note_id>"
CLAIM_SECONDS = 60  # a sender's claim on an outbox item; after it lapses the relay sends the item
OUTBOX_TTL_SECONDS = 14 * 86400  # an item SNS never took is dropped by TTL after two weeks
READ_TTL_SECONDS = 90 * 86400  # a read notification expires (TTL) 90 days after it was read


class Kind(StrEnum):
    ASSIGNED = "ASSIGNED"
    STATUS_CHANGED = "STATUS_CHANGED"
    JOB_SUCCEEDED = "JOB_SUCCEEDED"
    JOB_FAILED = "JOB_FAILED"


class Notice(BaseModel):
    """One notification for one user: the SQS message, and the stored in-app notification."""

    model_config = ConfigDict(extra="forbid")

    note_id: str = Field(pattern=NOTE_ID.pattern)
    user: str = Field(min_length=1, max_length=64)
    kind: Kind
    at: str = Field(min_length=20, max_length=32)
    title: str = Field(min_length=1, max_length=200)
    actor: str | None = Field(default=None, max_length=254)
    task_id: str | None = Field(default=None, max_length=64)
    job_id: str | None = Field(default=None, max_length=64)
    old_status: str | None = Field(default=None, pattern=r"^(TODO|IN_PROGRESS|DONE)$")
    new_status: str | None = Field(default=None, pattern=r"^(TODO|IN_PROGRESS|DONE)$")


def new_note_id() -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}Z-{uuid.uuid4().hex}"


# --- publishing ----------------------------------------------------------------------------------

STATUS_TEXT = {"TODO": ("할 일", "To do"), "IN_PROGRESS": ("진행 중", "In progress"), "DONE": ("완료", "Done")}


def _texts(notice: Notice, link: str | None) -> tuple[str, str, str]:
    """(email subject, email body, SMS) in Korean, then English: the recipient's language is not known."""
    actor, title = notice.actor or "", notice.title
    old = STATUS_TEXT.get(notice.old_status or "", ("", ""))
    new = STATUS_TEXT.get(notice.new_status or "", ("", ""))
    korean, english = {
        Kind.ASSIGNED: (f"{actor}님이 업무 「{title}」을(를) 회원님에게 맡겼습니다.",
                        f'{actor} assigned the task "{title}" to you.'),
        Kind.STATUS_CHANGED: (f"{actor}님이 업무 「{title}」을(를) {old[0]}에서 {new[0]}(으)로 옮겼습니다.",
                              f'{actor} moved the task "{title}" from {old[1]} to {new[1]}.'),
        Kind.JOB_SUCCEEDED: (f"작업 「{title}」이(가) 끝났습니다.", f'Your job "{title}" has finished.'),
        Kind.JOB_FAILED: (f"작업 「{title}」이(가) 실패했습니다.", f'Your job "{title}" failed.'),
    }[notice.kind]
    subject = f"[업무] {title}"[:99]
    body = f"{korean}\n{english}\n" + (f"\n{link}\n" if link else "")
    return subject, body, f"[업무] {korean}"


def _attributes(notice: Notice) -> dict:
    values = {"user": notice.user, "kind": notice.kind.value, "task": notice.task_id,
              "old_status": notice.old_status, "new_status": notice.new_status}
    return {name: {"DataType": "String", "StringValue": value} for name, value in values.items() if value}


@dataclass
class Outgoing:
    """A notice on its way: the SNS batch entry (without its Id) and the outbox item that keeps it until sent."""

    notice: Notice
    entry: dict

    @property
    def outbox_key(self) -> dict:
        return store.key(OUTBOX_PK, f"NOTE#{self.notice.note_id}")

    def outbox_item(self, claim_seconds: int = CLAIM_SECONDS) -> dict:
        now = int(time.time())
        return {**self.outbox_key, "entry": {"S": json.dumps(self.entry, ensure_ascii=False)},
                "claimed_until": {"N": str(now + claim_seconds)},
                "expiration": {"N": str(now + OUTBOX_TTL_SECONDS)}}


class ConditionFailed(Exception):
    """The change saved with the notices was refused by its condition (nothing was written)."""


def prepare(recipients: Iterable[str | None], kind: Kind, *, title: str, actor: Identity | None = None,
            task_id: str | None = None, job_id: str | None = None, old_status: str | None = None,
            new_status: str | None = None, link: str | None = None) -> list[Outgoing]:
    """One notice per recipient sub, leaving out `actor` (nobody is told about their own change) and duplicates."""
    skip = actor.sub if actor else None
    subs = [sub for sub in dict.fromkeys(recipients) if sub and sub != skip]
    outgoing = []
    for sub in subs:
        notice = Notice(note_id=new_note_id(), user=sub, kind=kind, at=store.now_iso(), title=title[:200],
                        actor=(actor.name or actor.email) if actor else None, task_id=task_id, job_id=job_id,
                        old_status=old_status, new_status=new_status)
        subject, body, sms = _texts(notice, link)
        message = {"default": body, "email": body, "sms": sms, "sqs": notice.model_dump_json()}
        outgoing.append(Outgoing(notice, {"Message": json.dumps(message, ensure_ascii=False),
                                          "MessageStructure": "json", "Subject": subject,
                                          "MessageAttributes": _attributes(notice)}))
    return outgoing


def save_with_notices(put: dict, outgoing: list[Outgoing]) -> None:
    """Write `put` (put_item's arguments) and the notices' outbox items in one transaction, so a saved change
    always has its notices waiting to go; ConditionFailed if `put`'s condition refuses it."""
    ddb = store.ddb()
    if not outgoing:
        try:
            ddb.put_item(**put)
        except ddb.exceptions.ConditionalCheckFailedException:
            raise ConditionFailed from None
        return
    items = [{"Put": put}] + [{"Put": {"TableName": store.table(), "Item": out.outbox_item()}} for out in outgoing]
    try:
        ddb.transact_write_items(TransactItems=items)
    except ddb.exceptions.TransactionCanceledException as err:
        reasons = [r.get("Code") for r in err.response.get("CancellationReasons", [])]
        if reasons and reasons[0] == "ConditionalCheckFailed":
            raise ConditionFailed from None
        raise


def _write_outbox(outgoing: list[Outgoing]) -> None:
    for start in range(0, len(outgoing), TRANSACTION_ITEMS):
        store.ddb().batch_write_item(RequestItems={store.table(): [
            {"PutRequest": {"Item": out.outbox_item()}} for out in outgoing[start:start + TRANSACTION_ITEMS]]})


def send(outgoing: list[Outgoing]) -> list[Notice]:
    """Publish the notices (their outbox items written before) and delete the outbox items of those SNS
    took; the others stay for `relay`. Never raises: the change they describe is saved."""
    published: list[Notice] = []
    for start in range(0, len(outgoing), SNS_BATCH):
        chunk = outgoing[start:start + SNS_BATCH]
        entries = [{"Id": str(i), **out.entry} for i, out in enumerate(chunk)]
        try:
            response = client("sns").publish_batch(TopicArn=store.settings().resource("TASK_TOPIC_ARN"),
                                                   PublishBatchRequestEntries=entries)
        except Exception as err:
            log.warning("could not publish %d notification(s); the outbox relay retries: %s", len(chunk), err)
            continue
        for failure in response.get("Failed", []):
            log.warning("notification %s was not published (%s); the outbox relay retries",
                        chunk[int(failure["Id"])].notice.note_id, failure.get("Code"))
        sent = [chunk[int(ok["Id"])] for ok in response.get("Successful", [])]
        for out in sent:
            try:
                store.ddb().delete_item(TableName=store.table(), Key=out.outbox_key)
            except Exception as err:  # sent again by the relay at worst; in-app delivery is once by note_id
                log.warning("could not clear outbox item of notification %s: %s", out.notice.note_id, err)
        published += [out.notice for out in sent]
    return published


def notify(recipients: Iterable[str | None], kind: Kind, *, title: str, actor: Identity | None = None,
           task_id: str | None = None, job_id: str | None = None, old_status: str | None = None,
           new_status: str | None = None, link: str | None = None) -> list[Notice]:
    """Publish one notice per recipient sub (not the actor), through the outbox: each is written there first,
    so a publish that fails is retried by `relay`; returns the notices published now."""
    outgoing = prepare(recipients, kind, title=title, actor=actor, task_id=task_id, job_id=job_id,
                       old_status=old_status, new_status=new_status, link=link)
    if not outgoing:
        return []
    try:
        _write_outbox(outgoing)
    except Exception:
        log.exception("could not write %d %s notification(s) to the outbox; publishing directly", len(outgoing),
                      kind.value)
    return send(outgoing)


def task_change_notices(actor: Identity, before: dict | None, after: dict, link: str | None = None) -> list[Outgoing]:
    """The notices a task change calls for: its new assignee is told, and on a status change its
    owner and assignee are told (never the actor). In a request the emails link to the task."""
    if link is None and has_request_context():
        link = url_for("main.detail", task_id=after["task_id"], _external=True)
    outgoing: list[Outgoing] = []
    assignee = after.get("assignee_sub")
    if assignee and assignee != (before or {}).get("assignee_sub") and assignee != after["owner_sub"]:
        outgoing += prepare([assignee], Kind.ASSIGNED, title=after["title"], actor=actor, task_id=after["task_id"],
                            link=link)
    if before is not None and before["status"] != after["status"]:
        outgoing += prepare([after["owner_sub"], assignee], Kind.STATUS_CHANGED, title=after["title"], actor=actor,
                            task_id=after["task_id"], old_status=before["status"], new_status=after["status"],
                            link=link)
    return outgoing


def task_changed(actor: Identity, before: dict | None, after: dict, link: str | None = None) -> list[Notice]:
    """Notify about a task change saved without its notices (an import): outbox first, then SNS."""
    outgoing = task_change_notices(actor, before, after, link)
    if outgoing:
        _write_outbox(outgoing)
    return send(outgoing)


def relay(event=None, context=None) -> int:
    """The schedule (rate(1 minute)) that publishes notices left in the outbox: SNS failed, or the process
    died between saving and publishing. An item is claimed first (a conditional update of `claimed_until`),
    so two relays, or a relay and the request that wrote it, do not both send it. Returns how many were sent."""
    now = int(time.time())
    ddb, sent = store.ddb(), 0
    with store.handler_settings():
        query = {"TableName": store.table(), "KeyConditionExpression": "pk = :pk",
                 "FilterExpression": "claimed_until < :now",
                 "ExpressionAttributeValues": {":pk": {"S": OUTBOX_PK}, ":now": {"N": str(now)}}}
        while True:
            page = ddb.query(**query)
            claimed: list[Outgoing] = []
            for raw in page.get("Items", []):
                try:
                    ddb.update_item(TableName=store.table(), Key={"pk": raw["pk"], "sk": raw["sk"]},
                                    UpdateExpression="SET claimed_until = :until ADD attempts :one",
                                    ConditionExpression="claimed_until < :now",
                                    ExpressionAttributeValues={":until": {"N": str(now + CLAIM_SECONDS)},
                                                               ":now": {"N": str(now)}, ":one": {"N": "1"}})
                except ddb.exceptions.ConditionalCheckFailedException:
                    continue  # another relay has it
                entry = json.loads(raw["entry"]["S"])
                notice = Notice.model_validate_json(json.loads(entry["Message"])["sqs"])
                claimed.append(Outgoing(notice, entry))
            sent += len(send(claimed))
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    if sent:
        log.info("notification outbox: %d sent", sent)
    return sent


# --- in-app: the queue handler, the list and the bell ------------------------------------------


def handler(event, context):
    """TASK_NOTIFICATIONS queue (raw SNS delivery): store each notice for its recipient."""
    with store.handler_settings():
        return process_sqs_batch(event, _deliver_record)


def _deliver_record(record: dict) -> None:
    try:
        notice = Notice.model_validate_json(record.get("body") or "")
    except ValidationError as err:
        raise MalformedMessage(f"not a notice: {validation_summary(err)}") from None
    deliver_in_app(notice)


def deliver_in_app(notice: Notice) -> bool:
    """Store `notice` and count it unread, once; False when the user turned in-app notices off
    or it was stored before."""
    from taskapp.profiles import get_profile

    if not get_profile(notice.user)["notify_in_app"]:
        return False
    pk, sk = f"USER#{notice.user}", f"NOTE#{notice.note_id}"
    item = {**notice.model_dump(exclude_none=True), "pk": pk, "sk": sk, "gsi1pk": f"UNREAD#{notice.user}",
            "gsi1sk": sk}
    ddb = store.ddb()
    writes = [
        {"Put": {"TableName": store.table(), "Item": store.dump(item),
                 "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Update": {"TableName": store.table(), "Key": store.key(pk, "PROFILE"),
                    "UpdateExpression": "ADD unread :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
    ]
    if notice.job_id:  # one bell notice per job at most: a marker (USER#<sub>, JOBNOTE#<job id>) claims it
        writes.append({"Put": {"TableName": store.table(), "ConditionExpression": "attribute_not_exists(pk)",
                               "Item": store.dump({"pk": pk, "sk": f"JOBNOTE#{notice.job_id}",
                                                   "note_id": notice.note_id})}})
    try:
        ddb.transact_write_items(TransactItems=writes)
    except ddb.exceptions.TransactionCanceledException as err:
        reasons = [r.get("Code") for r in err.response.get("CancellationReasons", [])]
        if "ConditionalCheckFailed" in (reasons[:1] + reasons[2:3]):
            return False  # delivered before (a repeated message), or this job has its notice already
        raise
    return True


def public(item: dict) -> dict:
    note = store.without_keys(item)
    note["read"] = "gsi1pk" not in item
    return note


def list_notifications(identity: Identity, limit: int = 20, cursor: str | None = None) -> tuple[list[dict], str | None]:
    """The user's notifications, newest first; (page, next cursor or None)."""
    items, next_cursor = store.query_page(
        limit, cursor, KeyConditionExpression="pk = :pk AND begins_with(sk, :note)", ScanIndexForward=False,
        ExpressionAttributeValues={":pk": {"S": f"USER#{identity.sub}"}, ":note": {"S": "NOTE#"}})
    return [public(item) for item in items], next_cursor


def _mark(sub: str, sks: list[str]) -> None:
    """One transaction: these notes read (each must still be unread) and the count lowered by as many."""
    read_at = {"S": store.now_iso()}
    expiration = {"N": str(int(time.time()) + READ_TTL_SECONDS)}
    items = [{"Update": {"TableName": store.table(), "Key": store.key(f"USER#{sub}", sk),
                         "UpdateExpression": "REMOVE gsi1pk, gsi1sk SET read_at = :at, expiration = :exp",
                         "ConditionExpression": "attribute_exists(gsi1pk)",
                         "ExpressionAttributeValues": {":at": read_at, ":exp": expiration}}} for sk in sks]
    items.append({"Update": {"TableName": store.table(), "Key": store.key(f"USER#{sub}", "PROFILE"),
                             "UpdateExpression": "ADD unread :n",
                             "ExpressionAttributeValues": {":n": {"N": str(-len(sks))}}}})
    store.ddb().transact_write_items(TransactItems=items)


def mark_read(identity: Identity, note_id: str) -> dict:
    """Mark one of the user's notifications read (again is fine); 404 for any other id."""
    if not NOTE_ID.match(note_id or ""):
        raise NotFound("Notification not found")
    sk = f"NOTE#{note_id}"
    item = store.get(f"USER#{identity.sub}", sk)
    if item is None:
        raise NotFound("Notification not found")
    if "gsi1pk" in item:
        ddb = store.ddb()
        try:
            _mark(identity.sub, [sk])
        except ddb.exceptions.TransactionCanceledException:
            pass  # read meanwhile (another tab): the outcome wanted
        item = store.get(f"USER#{identity.sub}", sk) or item
    return public(item)


def mark_all_read(identity: Identity) -> int:
    """Mark every unread notification of the user read; returns how many were marked."""
    ddb, marked = store.ddb(), 0
    kwargs = {"TableName": store.table(), "IndexName": "gsi1", "KeyConditionExpression": "gsi1pk = :pk",
              "ExpressionAttributeValues": {":pk": {"S": f"UNREAD#{identity.sub}"}}, "ProjectionExpression": "sk"}
    while True:
        page = ddb.query(**kwargs)
        sks = [raw["sk"]["S"] for raw in page["Items"]]
        for start in range(0, len(sks), TRANSACTION_ITEMS):
            chunk = sks[start:start + TRANSACTION_ITEMS]
            try:
                _mark(identity.sub, chunk)
                marked += len(chunk)
            except ddb.exceptions.TransactionCanceledException:
                for sk in chunk:  # one was read meanwhile: the rest one by one
                    try:
                        _mark(identity.sub, [sk])
                        marked += 1
                    except ddb.exceptions.TransactionCanceledException:
                        pass
        if "LastEvaluatedKey" not in page:
            return marked
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
