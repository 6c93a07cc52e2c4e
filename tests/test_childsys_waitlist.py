"""childsys: staff decisions, the signed sync endpoints, enrolment, and who may do what."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from shared.events import Envelope
from shared.signing import sign

SECRET_HEADERS = {"Content-Type": "application/json"}


def seed_body(**changes) -> dict:
    body = {
        "child_id": "2023" + uuid.uuid4().hex[:11].translate(str.maketrans("abcdef", "123456")),
        "child_name": "김아기", "child_birthday": "20230101", "user_id": "parent-sub", "parent_name": "김부모",
        "parent_tel": "010-0000-0000", "parent_address": "서울특별시 마포구", "parent_postcode": "00001",
        "parent_email": "parent@example.com", "nursery_id": "A00017",
    }
    return body | changes


@pytest.fixture
def app(make_app):
    return make_app("childsys")


@pytest.fixture
def client(app):
    return app.test_client()


def received(sqs, url) -> list[Envelope]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    for m in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return [Envelope.from_json(m["Body"]) for m in messages]


@pytest.fixture
def sync(client, app):
    """sync(type, body, version) -> response of a correctly signed sync call."""
    secret = app.config["SETTINGS"].sync_secret

    def call(event_type: str, body: dict, version: int = 1, envelope: Envelope | None = None, headers=None):
        envelope = envelope or Envelope(type=event_type, version=version, application=body)
        raw = envelope.to_json().encode()
        path = f"/enterwait/{event_type.lower()}"
        return client.post(path, data=raw, headers=headers if headers is not None else
                           {**SECRET_HEADERS, **sign(secret, raw)})

    return call


@pytest.fixture
def staff(make_user, bearer):
    user = make_user(groups=("staff",), daycare_id="A00017")
    return bearer(user.email, app_name="childsys")


def test_requested_application_is_listed_offered_published_and_enrolled_on_confirm(client, sync, staff, queue, sqs):
    body = seed_body()
    assert sync("REQUEST", body).json == {"status": "applied"}

    listed = client.get("/request?nursery_id=A00017", headers=staff).json["applications"]
    mine = next(a for a in listed if a["child_id"] == body["child_id"])
    assert (mine["status"], mine["request_status"], mine["parent_email"]) == ("REQUESTED", 1, "parent@example.com")
    assert (mine["rank"], mine["score"]) == (1, 0)

    response = client.post("/request/accept", json=body, headers=staff)
    assert response.status_code == 200
    assert response.json["application"]["status"] == "ACCEPTED"
    assert response.json["application"]["request_status"] == 2
    deadline = response.json["application"]["offer_expires_at"]

    [event] = received(sqs, queue)
    assert (event.type, event.version, event.request_id) == ("OFFER", 2, body["child_id"] + "A00017")
    assert event.application["parent_email"] == "parent@example.com"
    assert event.application["offer_expires_at"] == deadline and event.actor.startswith("staff-")

    from childsys.models import Enrollment, db

    def enrolled() -> int:
        with client.application.app_context():
            return db.session.query(Enrollment).filter_by(request_id=event.request_id).count()

    assert enrolled() == 0, "an offer is not an enrolment yet"
    assert sync("CONFIRM", body, version=3).json == {"status": "applied"}
    assert enrolled() == 1


def test_reject_needs_a_reason_and_a_rejected_application_cannot_be_accepted(client, sync, staff, queue, sqs):
    body = seed_body()
    sync("REQUEST", body)
    missing = client.post("/request/reject", json=body, headers=staff)
    assert missing.status_code == 400 and "reason" in missing.json["error"]["fields"]
    assert received(sqs, queue) == []

    rejected = client.post("/request/reject", json={**body, "reason": "정원 초과"}, headers=staff)
    assert rejected.json["application"]["status"] == "REJECTED"
    [event] = received(sqs, queue)
    assert event.type == "REJECT" and event.application["reason"] == "정원 초과"

    again = client.post("/request/accept", json=body, headers=staff)
    assert again.status_code == 409
    assert again.json["error"]["code"] == "conflict"


def test_other_daycares_staff_and_parents_are_refused(client, sync, make_user, bearer):
    body = seed_body()
    sync("REQUEST", body)
    other = bearer(make_user(groups=("staff",), daycare_id="B00102").email, app_name="childsys")
    parent = bearer(make_user(groups=("parents",)).email, app_name="childsys")

    assert client.get("/request?nursery_id=A00017", headers=other).status_code == 403
    assert client.post("/request/accept", json=body, headers=other).status_code == 403
    assert client.get("/request?nursery_id=A00017", headers=parent).status_code == 403
    assert client.get("/request?nursery_id=A00017").status_code == 401


def test_sync_calls_must_be_signed_recently(client, app, sync):
    body = seed_body()
    envelope = Envelope(type="REQUEST", application=body)
    raw = envelope.to_json().encode()
    secret = app.config["SETTINGS"].sync_secret
    assert sync("REQUEST", body, headers=SECRET_HEADERS).status_code == 401
    assert sync("REQUEST", body, headers={**SECRET_HEADERS, **sign("wrong-secret", raw)},
                envelope=envelope).status_code == 401
    stale = sign(secret, raw, now=time.time() - 3600)
    assert sync("REQUEST", body, headers={**SECRET_HEADERS, **stale}, envelope=envelope).status_code == 401
    assert sync("REQUEST", body, envelope=envelope).json == {"status": "applied"}


def test_the_same_event_twice_has_one_effect(client, sync, staff):
    body = seed_body()
    envelope = Envelope(type="REQUEST", application=body)
    assert sync("REQUEST", body, envelope=envelope).json == {"status": "applied"}
    assert sync("REQUEST", body, envelope=envelope).json == {"status": "ignored"}
    listed = client.get("/request", headers=staff).json["applications"]
    mine = [a for a in listed if a["child_id"] == body["child_id"]]
    assert len(mine) == 1 and len(mine[0]["history"]) == 1


def test_cancel_before_its_request_ends_cancelled(client, sync, staff):
    body = seed_body()
    assert sync("CANCEL", body, version=2).json == {"status": "applied"}
    assert sync("REQUEST", body, version=1).json == {"status": "ignored"}
    mine = [a for a in client.get("/request", headers=staff).json["applications"] if a["child_id"] == body["child_id"]]
    assert mine[0]["status"] == "CANCELLED" and mine[0]["request_status"] == 99


def test_cancel_after_enrolment_removes_it(client, sync, staff, queue, make_user, sign_in):
    body = seed_body()
    sync("REQUEST", body)
    client.post("/request/accept", json=body, headers=staff)
    assert sync("CONFIRM", body, version=3).json == {"status": "applied"}
    assert sync("CANCEL", body, version=4).json == {"status": "applied"}

    from childsys.models import Enrollment, db

    with client.application.app_context():
        assert db.session.query(Enrollment).filter_by(request_id=body["child_id"] + "A00017").count() == 0


def test_bad_input_writes_and_publishes_nothing(client, staff, queue, sqs, app):
    assert client.post("/request/accept", data="{nope", headers={**staff, **SECRET_HEADERS}).status_code == 400
    response = client.post("/request/accept", json={"child_id": "", "nursery_id": "A00017"}, headers=staff)
    assert response.status_code == 400 and "child_id" in response.json["error"]["fields"]
    assert client.post("/request/accept", json=seed_body(), headers=staff).status_code == 404
    secret = app.config["SETTINGS"].sync_secret
    raw = json.dumps({"type": "REQUEST"}).encode()
    signed = {**SECRET_HEADERS, **sign(secret, raw)}
    assert client.post("/enterwait/request", data=raw, headers=signed).status_code == 400
    assert received(sqs, queue) == []

    from childsys.models import Application, OutboxEvent, db

    with app.app_context():
        assert db.session.query(Application).count() == 0
        assert db.session.query(OutboxEvent).count() == 0


def test_staff_pages_list_open_and_accept(client, sync, make_user, sign_in, submit, queue):
    body = seed_body(child_name="박새싹")
    sync("REQUEST", body)
    user = make_user(groups=("staff",), daycare_id="A00017")
    sign_in(client, user.email)

    listing = client.get("/applications")
    assert listing.status_code == 200 and "박새싹" in listing.text
    request_id = body["child_id"] + "A00017"
    detail = f"/applications/{request_id}"
    assert client.get(detail).status_code == 200

    response = submit(client, f"{detail}/accept", {}, page=detail)
    assert response.status_code == 302
    assert 'data-status="ACCEPTED"' in client.get(detail).text, "offered, waiting for the parent"
    assert "박새싹" not in client.get("/enrolled").text
    conflict = submit(client, f"{detail}/reject", {"reason": "x"}, page=detail)
    assert conflict.status_code in (200, 302)  # the page no longer offers it; a replayed post is refused
    assert 'data-status="ACCEPTED"' in client.get(detail).text
    assert sync("CONFIRM", body, version=3).json == {"status": "applied"}
    assert "박새싹" in client.get("/enrolled").text
