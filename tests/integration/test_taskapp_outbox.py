"""taskapp's notifications leave through an outbox: a notice is saved with the task change, and one SNS did not
take is published by the relay later (once, even with two relays); read notifications expire by TTL."""

from __future__ import annotations

import json
import threading
import time

from shared.platform.aws import client
from taskapp import notifications, store
from tests.taskapp_helpers import new_task, pump


def waiting(resources) -> list[dict]:
    """The notices in the outbox: (recipient, kind) and the raw item."""
    items = client("dynamodb").query(
        TableName=resources["TASKS_TABLE"], KeyConditionExpression="pk = :pk", ConsistentRead=True,
        ExpressionAttributeValues={":pk": {"S": notifications.OUTBOX_PK}})["Items"]
    found = []
    for item in items:
        notice = json.loads(json.loads(json.loads(item["entry"]["S"])["Message"])["sqs"])
        found.append({"user": notice["user"], "kind": notice["kind"], "item": item})
    return found


def lapse_claims(resources) -> None:
    for row in waiting(resources):
        client("dynamodb").update_item(TableName=resources["TASKS_TABLE"],
                                       Key={"pk": row["item"]["pk"], "sk": row["item"]["sk"]},
                                       UpdateExpression="SET claimed_until = :zero",
                                       ExpressionAttributeValues={":zero": {"N": "0"}})


def relay(resources) -> int:
    return notifications.relay({}, None)


def test_a_notice_sns_refused_waits_in_the_outbox_and_the_relay_sends_it(api, alice, bob, resources, monkeypatch,
                                                                        taskapp_runner):
    monkeypatch.setenv("TASK_TOPIC_ARN", resources["TASK_TOPIC_ARN"] + "-missing")  # SNS refuses the publish
    task = new_task(api, alice, title="문서 정리", assignee=bob.email)  # the change is saved all the same
    mine = [row for row in waiting(resources) if row["user"] == bob.sub]
    assert [row["kind"] for row in mine] == ["ASSIGNED"], "the notice waits in the outbox"
    assert int(mine[0]["item"]["expiration"]["N"]) > time.time() + 86400, "and expires by TTL in the end"

    monkeypatch.delenv("TASK_TOPIC_ARN")  # SNS is back
    relay(resources)
    assert [row["kind"] for row in waiting(resources) if row["user"] == bob.sub] == ["ASSIGNED"], (
        "the request's claim holds it for a minute")
    lapse_claims(resources)
    relay(resources)
    assert [row for row in waiting(resources) if row["user"] == bob.sub] == [], "sent and cleared"

    def notes():
        return api.get("/api/notifications", headers=bob.headers).get_json()

    assert pump(taskapp_runner, lambda: notes()["unread"] == 1)
    [note] = notes()["notifications"]
    assert (note["kind"], note["task_id"]) == ("ASSIGNED", task["task_id"])

    # read: it expires by TTL 90 days later
    api.post(f"/api/notifications/{note['note_id']}/read", headers=bob.headers)
    stored = store.get(f"USER#{bob.sub}", f"NOTE#{note['note_id']}")
    assert stored["expiration"] > time.time() + 80 * 86400


def test_a_published_notice_leaves_nothing_in_the_outbox(api, alice, bob, resources):
    new_task(api, alice, title="바로 보내기", assignee=bob.email)
    assert [row for row in waiting(resources) if row["user"] == bob.sub] == []


def test_two_relays_at_once_publish_each_notice_once(api, alice, bob, resources, monkeypatch):
    monkeypatch.setenv("TASK_TOPIC_ARN", resources["TASK_TOPIC_ARN"] + "-missing")
    for i in range(3):
        new_task(api, alice, title=f"재시도 {i}", assignee=bob.email)
    monkeypatch.delenv("TASK_TOPIC_ARN")
    lapse_claims(resources)
    published, real = [], notifications.send

    def counting_send(outgoing):
        time.sleep(0.2)
        sent = real(outgoing)
        published.extend(notice.note_id for notice in sent)
        return sent

    monkeypatch.setattr(notifications, "send", counting_send)
    barrier, threads = threading.Barrier(2), []
    for _ in range(2):
        threads.append(threading.Thread(target=lambda: (barrier.wait(), notifications.relay({}, None))))
        threads[-1].start()
    for thread in threads:
        thread.join(30)
    assert len(published) >= 3 and len(published) == len(set(published)), "each notice published once"
    assert [row for row in waiting(resources) if row["user"] == bob.sub] == []
