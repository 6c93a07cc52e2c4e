"""Notifications: SNS messages per recipient with attributes, filter policies keeping each user's to
themselves, preferences making and removing email/SMS subscriptions, and the in-app list and bell fed
by the TASK_NOTIFICATIONS queue through the runner."""

from __future__ import annotations

import json
import uuid

import pytest

from shared.platform.aws import client
from taskapp import notifications
from tests.conftest import csrf_token_in
from tests.taskapp_helpers import new_task, pump


@pytest.fixture
def carol(task_user):
    return task_user("캐럴")


@pytest.fixture
def user_queue(resources):
    """user_queue(sub) -> queue URL of a new SQS queue subscribed to the task topic with the filter
    policy a user's email/SMS subscription gets ({"user": [sub]}): it receives what they would."""
    sns, sqs = client("sns"), client("sqs")
    made = []

    def make(sub: str) -> str:
        url = sqs.create_queue(QueueName=f"test-user-{uuid.uuid4().hex[:10]}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        subscription = sns.subscribe(TopicArn=resources["TASK_TOPIC_ARN"], Protocol="sqs", Endpoint=arn,
                                     Attributes={"RawMessageDelivery": "true",
                                                 "FilterPolicy": json.dumps({"user": [sub]})},
                                     ReturnSubscriptionArn=True)["SubscriptionArn"]
        made.append((url, subscription))
        return url

    yield make
    for url, subscription in made:
        sns.unsubscribe(SubscriptionArn=subscription)
        sqs.delete_queue(QueueUrl=url)


def received(url: str) -> list[dict]:
    messages = client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                             WaitTimeSeconds=0).get("Messages", [])
    return [{"body": json.loads(m["Body"]),
             "attributes": {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()}} for m in messages]


def test_each_user_gets_only_notices_about_their_own_tasks(api, alice, bob, carol, user_queue):
    queues = {user.sub: user_queue(user.sub) for user in (alice, bob, carol)}
    task = new_task(api, alice, title="보고서 작성", assignee=carol.email)
    [assigned] = received(queues[carol.sub])
    assert assigned["attributes"] == {"user": carol.sub, "kind": "ASSIGNED", "task": task["task_id"]}
    assert assigned["body"]["actor"] == "앨리스" and assigned["body"]["title"] == "보고서 작성"
    assert received(queues[alice.sub]) == [], "nobody is told about their own change"

    moved = api.patch(f"/api/tasks/{task['task_id']}", json={"status": "IN_PROGRESS", "version": 1},
                      headers=carol.headers)
    assert moved.status_code == 200
    [status] = received(queues[alice.sub])
    assert status["attributes"] == {"user": alice.sub, "kind": "STATUS_CHANGED", "task": task["task_id"],
                                    "old_status": "TODO", "new_status": "IN_PROGRESS"}
    assert received(queues[carol.sub]) == [], "the assignee moved it: not told"
    assert received(queues[bob.sub]) == [], "B is not notified about A's task"

    api.patch(f"/api/tasks/{task['task_id']}", json={"status": "DONE", "version": 2}, headers=alice.headers)
    assert [m["attributes"]["new_status"] for m in received(queues[carol.sub])] == ["DONE"]
    assert received(queues[bob.sub]) == [] and received(queues[alice.sub]) == []


def test_the_in_app_notification_appears_for_the_right_user(api, alice, bob, carol, taskapp_runner, client_for,
                                                            sign_in):
    task = new_task(api, alice, title="예산안 검토", assignee=carol.email)
    api.patch(f"/api/tasks/{task['task_id']}", json={"status": "DONE", "version": 1}, headers=carol.headers)

    def notes(user):
        return api.get("/api/notifications", headers=user.headers).get_json()

    assert pump(taskapp_runner, lambda: notes(alice)["unread"] == 1)
    [note] = notes(alice)["notifications"]
    assert (note["kind"], note["task_id"], note["old_status"], note["new_status"], note["read"]) == (
        "STATUS_CHANGED", task["task_id"], "TODO", "DONE", False)
    assert pump(taskapp_runner, lambda: notes(carol)["unread"] == 1)
    assert notes(carol)["notifications"][0]["kind"] == "ASSIGNED"
    assert notes(bob) == {"unread": 0, "notifications": [], "cursor": None}

    # the bell on every page, and the list
    web = client_for("taskapp")
    sign_in(web, alice.email)
    board = web.get("/board").get_data(as_text=True)
    assert 'data-unread="1"' in board
    page = web.get("/notifications").get_data(as_text=True)
    assert "예산안 검토" in page and "캐럴" in page and 'class="note unread"' in page
    # opening it marks it read and leads to the task
    opened = web.get(f"/notifications/{note['note_id']}/open")
    assert opened.status_code == 302 and opened.headers["Location"].endswith(f"/tasks/{task['task_id']}")
    assert notes(alice)["unread"] == 0 and notes(alice)["notifications"][0]["read"] is True
    assert 'data-unread' not in web.get("/board").get_data(as_text=True)
    # someone else's notification is 404, for reading and opening
    assert api.post(f"/api/notifications/{note['note_id']}/read", headers=bob.headers).status_code == 404


def test_mark_read_one_and_all(api, alice, bob, taskapp_runner, client_for, sign_in):
    for i in range(3):
        new_task(api, bob, title=f"할 일 {i}", assignee=alice.email)
    assert pump(taskapp_runner, lambda: api.get("/api/notifications", headers=alice.headers).json["unread"] == 3)
    listed = api.get("/api/notifications?limit=2", headers=alice.headers).get_json()
    assert len(listed["notifications"]) == 2 and listed["cursor"]
    rest = api.get(f"/api/notifications?limit=2&cursor={listed['cursor']}", headers=alice.headers).get_json()
    assert len(rest["notifications"]) == 1 and rest["cursor"] is None
    ats = [n["at"] for n in listed["notifications"] + rest["notifications"]]
    assert ats == sorted(ats, reverse=True), "newest first"

    first = listed["notifications"][0]["note_id"]
    assert api.post(f"/api/notifications/{first}/read", headers=alice.headers).get_json()["read"] is True
    assert api.post(f"/api/notifications/{first}/read", headers=alice.headers).status_code == 200  # again is fine
    assert api.get("/api/notifications", headers=alice.headers).json["unread"] == 2

    web = client_for("taskapp")
    sign_in(web, alice.email)
    page = web.get("/notifications").get_data(as_text=True)
    marked = web.post("/notifications/read-all", data={"csrf_token": csrf_token_in(page)})
    assert marked.status_code == 302
    body = api.get("/api/notifications", headers=alice.headers).get_json()
    assert body["unread"] == 0 and all(n["read"] for n in body["notifications"])
    assert api.post("/api/notifications/read-all", headers=alice.headers).get_json() == {"marked": 0}


def _record(body: str, message_id: str | None = None) -> dict:
    return {"messageId": message_id or str(uuid.uuid4()), "body": body, "attributes": {},
            "eventSourceARN": "arn:aws:sqs:ap-northeast-2:123456789012:daycare-test-task-notifications"}


def test_the_handler_stores_a_repeated_message_once_and_refuses_a_malformed_one(resources, alice, api):
    notice = notifications.Notice(note_id=notifications.new_note_id(), user=alice.sub, kind="ASSIGNED",
                                  at="2026-01-01T00:00:00.000000Z", title="중복", actor="밥", task_id="t-1")
    record = _record(notice.model_dump_json())
    assert notifications.handler({"Records": [record, record]}, None) == {"batchItemFailures": []}
    body = api.get("/api/notifications", headers=alice.headers).get_json()
    assert body["unread"] == 1 and [n["title"] for n in body["notifications"]] == ["중복"]

    bad = [_record("not json", "m-1"), _record(json.dumps({**notice.model_dump(), "kind": "PARTY"}), "m-2"),
           _record(json.dumps({**notice.model_dump(), "user": ""}), "m-3")]
    assert notifications.handler({"Records": bad}, None) == {
        "batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}, {"itemIdentifier": "m-3"}]}


def test_in_app_notices_off_are_not_stored(api, alice):
    assert api.patch("/api/profile", json={"notify_in_app": False}, headers=alice.headers).status_code == 200
    notice = notifications.Notice(note_id=notifications.new_note_id(), user=alice.sub, kind="ASSIGNED",
                                  at="2026-01-01T00:00:00.000000Z", title="조용히", actor="밥")
    assert notifications.deliver_in_app(notice) is False
    assert api.get("/api/notifications", headers=alice.headers).get_json()["notifications"] == []


# --- profile preferences -> SNS subscriptions ----------------------------------------------------


def subscriptions(resources, endpoint: str) -> list[dict]:
    sns = client("sns")
    found = []
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=resources["TASK_TOPIC_ARN"]):
        for sub in page["Subscriptions"]:
            if sub["Endpoint"] == endpoint:
                attributes = sns.get_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"])["Attributes"]
                found.append({"protocol": sub["Protocol"], "filter": json.loads(attributes.get("FilterPolicy", "{}"))})
    return found


def test_preferences_make_and_remove_filtered_email_and_sms_subscriptions(api, alice, resources):
    phone = f"010-{uuid.uuid4().int % 9000 + 1000}-{uuid.uuid4().int % 9000 + 1000}"
    e164 = "+82" + phone.replace("-", "")[1:]
    saved = api.patch("/api/profile", json={"notify_email": True, "notify_sms": True, "phone": phone,
                                            "time_zone": "America/New_York"}, headers=alice.headers)
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["subscriptions"] == {"email": True, "sms": True}
    assert subscriptions(resources, alice.email) == [{"protocol": "email", "filter": {"user": [alice.sub]}}]
    assert subscriptions(resources, e164) == [{"protocol": "sms", "filter": {"user": [alice.sub]}}]
    # the phone is in Cognito too (one place edits it)
    attributes = client("cognito-idp").admin_get_user(UserPoolId=resources["COGNITO_USERPOOL_ID"],
                                                      Username=alice.email)["UserAttributes"]
    assert {"Name": "phone_number", "Value": e164} in attributes

    new_phone = "010-" + ("8" if phone[4] == "9" else "9") + phone[5:]  # always another number
    moved = api.patch("/api/profile", json={"phone": new_phone, "notify_email": False}, headers=alice.headers)
    assert moved.status_code == 200 and moved.get_json()["subscriptions"] == {"email": False, "sms": True}
    assert subscriptions(resources, alice.email) == [] and subscriptions(resources, e164) == []
    assert subscriptions(resources, "+82" + new_phone.replace("-", "")[1:])[0]["filter"] == {"user": [alice.sub]}
    off = api.patch("/api/profile", json={"notify_sms": False}, headers=alice.headers).get_json()
    assert off["subscriptions"] == {"email": False, "sms": False} and off["time_zone"] == "America/New_York"
    assert subscriptions(resources, "+82" + new_phone.replace("-", "")[1:]) == []


@pytest.mark.parametrize(("body", "fields"), [
    ({"time_zone": "Mars/Olympus", "phone": "12", "notify_sms": "maybe"}, {"time_zone", "phone", "notify_sms"}),
    ({"notify_sms": True}, {"notify_sms"}),  # no phone to text
    ({"display_name": "", "unread": 0}, {"display_name", "unread"}),
    ({"notify_email": None}, {"notify_email"}),
])
def test_bad_profile_input_is_400_naming_the_field(api, alice, body, fields):
    response = api.patch("/api/profile", json=body, headers=alice.headers)
    assert response.status_code == 400 and set(response.get_json()["error"]["fields"]) == fields


def test_profile_page_edits_name_phone_time_zone_and_preferences(client_for, api, alice, sign_in, submit):
    web = client_for("taskapp")
    sign_in(web, alice.email)
    assert web.get("/auth/profile").headers["Location"].endswith("/profile")  # one profile page in taskapp
    page = web.get("/profile").get_data(as_text=True)
    assert 'value="앨리스"' in page and '<option selected value="Asia/Seoul">' in page
    bad = submit(web, "/profile", {"name": "앨리스", "phone": "", "time_zone": "Asia/Seoul", "notify_sms": "y"})
    assert bad.status_code == 400 and 'id="notify_sms-error"' in bad.get_data(as_text=True)
    saved = submit(web, "/profile", {"name": "앨리스 김", "phone": "010-2222-3333", "time_zone": "Europe/Berlin",
                                     "notify_in_app": "y"})
    assert saved.status_code == 302
    profile = api.get("/api/profile", headers=alice.headers).get_json()
    assert (profile["display_name"], profile["phone"], profile["time_zone"]) == ("앨리스 김", "+821022223333",
                                                                                 "Europe/Berlin")
    assert (profile["notify_in_app"], profile["notify_email"], profile["notify_sms"]) == (True, False, False)
    assert "앨리스 김" in web.get("/tasks").get_data(as_text=True)  # the session's name follows
