"""reqsys waitlist: JSON routes, the rules behind them, the outbox, and the sync endpoints.

Against the moto server (the `resources` fixture) and a migrated SQLite file per test.
"""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest

from shared.platform.events import Envelope
from shared.platform.signing import sign
from tests.waitlist_helpers import (
    add_nurseries,
    applications,
    count,
    decision,
    listed_start,
    only,
    pending,
    receive_all,
    request_id,
    seed_body,
    signed,
)

# --- fixtures -------------------------------------------------------------------------------------------
















# --- apply -----------------------------------------------------------------------------------------------


def test_apply_publishes_request_event_and_lists_it(app, client, parent, sqs, resources):
    url = resources["INTEGRATED_EVENTS_QUEUE_URL"]
    sqs.purge_queue(QueueUrl=url)  # leftovers of earlier tests of the session
    body = seed_body()

    response = client.post("/enterwait/request", json=body, headers=parent.headers)

    assert response.status_code == 201, response.get_data(as_text=True)
    created = response.get_json()["application"]
    assert created["request_id"] == request_id(body, parent)
    assert (created["status"], created["request_status"], created["version"]) == ("REQUESTED", 1, 1)

    messages = [m for m in receive_all(sqs, url)
                if json.loads(m["Body"])["application"]["child_id"] == body["child_id"]]
    assert len(messages) == 1
    envelope = Envelope.from_json(messages[0]["Body"])
    assert (envelope.type, envelope.version) == ("REQUEST", 1)
    assert messages[0]["Attributes"]["MessageGroupId"] == request_id(body, parent)
    # the seed's body (user_id from the token), with the start month, criteria and daycare name
    assert {k: v for k, v in envelope.application.items() if k in body or k == "user_id"} == {
        **body, "user_id": parent.sub}
    assert envelope.application["criteria"] == [] and envelope.application["nursery_name"] == "햇살 어린이집"
    assert envelope.application["desired_start"] == listed_start(envelope)
    assert envelope.actor == parent.email
    assert pending(app) == [], "published right after the commit"

    listed = only(client, parent)
    assert (listed["status"], listed["request_status"]) == ("REQUESTED", 1)
    assert (listed["rank"], listed["score"], listed["criteria"]) == (1, 0, [])
    assert listed["nursery_name"] == "햇살 어린이집"
    assert listed["child_name"] == "김아기"
    assert [(h["type"], h["status"]) for h in listed["history"]] == [("REQUEST", "REQUESTED")]
    assert listed["history"][0]["at"].endswith("Z")


@pytest.mark.parametrize("field, value", [
    ("child_id", ""),
    ("child_id", "12/34"),
    ("child_name", ""),
    ("child_birthday", "20231340"),
    ("child_birthday", "2023-01-01"),
    ("child_birthday", time.strftime("%Y%m%d", time.localtime(time.time() + 400 * 86400))),
    ("parent_name", ""),
    ("parent_tel", "12345"),
    ("parent_address", ""),
    ("parent_postcode", "1234"),
    ("parent_email", "not-an-email"),
    ("nursery_id", "A-17"),
    ("nursery_id", "Z99999"),  # well formed, but no such daycare
    ("parent_email", None),  # missing
])
def test_invalid_field_is_named_and_nothing_is_written_or_sent(app, client, parent, queue, sqs, field, value):
    body = seed_body()
    if value is None:
        del body[field]
    else:
        body[field] = value

    response = client.post("/enterwait/request", json=body, headers=parent.headers)

    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "invalid"
    assert list(error["fields"]) == [field]
    assert count(app, "applications") == 0
    assert count(app, "outbox_events") == 0
    assert count(app, "application_history") == 0
    assert receive_all(sqs, queue) == []


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", ""])
def test_malformed_json_is_400_and_nothing_is_written_or_sent(app, client, parent, queue, sqs, raw):
    response = client.post("/enterwait/request", data=raw, content_type="application/json", headers=parent.headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "malformed_json"
    assert count(app, "applications") == 0
    assert count(app, "outbox_events") == 0
    assert receive_all(sqs, queue) == []


def test_user_id_of_someone_else_is_forbidden(app, client, parent, queue, sqs):
    response = client.post("/enterwait/request", json=seed_body(user_id="someone-else"), headers=parent.headers)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    assert count(app, "applications") == 0
    assert count(app, "outbox_events") == 0
    assert receive_all(sqs, queue) == []


@pytest.mark.parametrize("own", ["sub", "email"])
def test_user_id_may_name_the_parent(client, parent, queue, own):
    body = seed_body(user_id=getattr(parent, own))
    response = client.post("/enterwait/request", json=body, headers=parent.headers)
    assert response.status_code == 201, response.get_data(as_text=True)


def test_routes_need_a_parent_token(client, account, queue):
    staff = account("staff")
    assert client.get("/enterwait").status_code == 401
    assert client.post("/enterwait/request", json=seed_body()).status_code == 401
    assert client.post("/enterwait/request", json=seed_body(), headers=staff.headers).status_code == 403
    assert client.get("/enterwait", headers=staff.headers).status_code == 403


def test_parents_see_and_cancel_only_their_own(app, client, account, queue):
    alice, bob, admin = account("parents"), account("parents"), account("admins")
    body = seed_body()
    assert client.post("/enterwait/request", json=body, headers=alice.headers).status_code == 201

    assert applications(client, bob) == []
    response = client.post("/enterwait/cancel", json=body, headers=bob.headers)
    assert response.status_code == 404, "another parent's application is not revealed"
    assert only(client, alice)["status"] == "REQUESTED"
    assert only(client, alice)["version"] == 1
    assert [a["request_id"] for a in applications(client, admin)] == [request_id(body, alice)], "admins may read"
    assert admin.sub != alice.sub
    assert client.post("/enterwait/cancel", json=body, headers=admin.headers).status_code == 403


def test_state_machine_at_the_api(app, client, parent, queue, sqs):
    body = seed_body()
    assert client.post("/enterwait/request", json=body, headers=parent.headers).status_code == 201
    again = client.post("/enterwait/request", json=body, headers=parent.headers)
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "transition_not_allowed"

    ids = {"child_id": body["child_id"], "nursery_id": body["nursery_id"]}  # a cancel needs only the ids
    cancelled = client.post("/enterwait/cancel", json=ids, headers=parent.headers)
    assert cancelled.status_code == 200, cancelled.get_data(as_text=True)
    assert (cancelled.get_json()["application"]["status"], cancelled.get_json()["application"]["version"]) == (
        "CANCELLED", 2)
    twice = client.post("/enterwait/cancel", json=body, headers=parent.headers)  # the full body works too
    assert twice.status_code == 409

    renewed = client.post("/enterwait/request", json=body, headers=parent.headers)
    assert renewed.status_code == 201
    listed = only(client, parent)
    assert (listed["status"], listed["request_status"], listed["version"]) == ("REQUESTED", 1, 3)
    assert [(h["type"], h["version"]) for h in listed["history"]] == [("REQUEST", 1), ("CANCEL", 2), ("REQUEST", 3)]

    events = [Envelope.from_json(m["Body"]) for m in receive_all(sqs, queue)]
    assert [(e.type, e.version) for e in events] == [("REQUEST", 1), ("CANCEL", 2), ("REQUEST", 3)]
    assert count(app, "outbox_events") == 3
    assert pending(app) == []


def test_cancel_of_unknown_application_is_404_and_bad_ids_400(client, parent, queue):
    assert client.post("/enterwait/cancel", json={"child_id": "1", "nursery_id": "A00017"},
                       headers=parent.headers).status_code == 404
    response = client.post("/enterwait/cancel", json={"child_id": "1"}, headers=parent.headers)
    assert response.status_code == 400
    assert list(response.get_json()["error"]["fields"]) == ["nursery_id"]


# --- the outbox when SQS is down --------------------------------------------------------------------------


def unreachable(monkeypatch, sqs, resources):
    """Point the integrated-events queue at a queue that does not exist (yet)."""
    name = f"later-{uuid.uuid4().hex[:8]}.fifo"
    url = resources["INTEGRATED_EVENTS_QUEUE_URL"].rsplit("/", 1)[0] + "/" + name
    monkeypatch.setenv("INTEGRATED_EVENTS_QUEUE_URL", url)

    def restore():
        assert sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"] == url
        return url

    return restore


def dead_endpoint(monkeypatch, sqs, resources):
    """Point boto3 at an endpoint where nothing listens."""
    from tests.conftest import free_port

    url = sqs.create_queue(QueueName=f"back-{uuid.uuid4().hex[:8]}.fifo", Attributes={"FifoQueue": "true"})[
        "QueueUrl"]
    monkeypatch.setenv("INTEGRATED_EVENTS_QUEUE_URL", url)
    real = os.environ["AWS_ENDPOINT_URL"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")

    def restore():
        monkeypatch.setenv("AWS_ENDPOINT_URL", real)
        return url

    return restore


@pytest.mark.parametrize("outage", [unreachable, dead_endpoint], ids=["missing-queue", "dead-endpoint"])
def test_apply_succeeds_while_sqs_is_down_and_the_relay_sends_later(app, client, parent, sqs, resources,
                                                                    monkeypatch, outage):
    from shared.platform.outbox import scheduled_relay

    restore = outage(monkeypatch, sqs, resources)
    body = seed_body()

    response = client.post("/enterwait/request", json=body, headers=parent.headers)

    assert response.status_code == 201, response.get_data(as_text=True)
    assert only(client, parent)["status"] == "REQUESTED"
    waiting = pending(app)
    assert len(waiting) == 1
    assert waiting[0]["envelope"]["type"] == "REQUEST"
    assert waiting[0]["attempts"] == 1, "the fast path tried once"

    from reqsys.models import OutboxEvent, db

    relay = scheduled_relay(lambda: app, db, OutboxEvent)  # what reqsys.relay.handler is
    assert relay({}, None) == 0, "still down: nothing sent, nothing lost"
    assert len(pending(app)) == 1

    url = restore()
    assert relay({"source": "aws.events"}, None) == 1
    assert pending(app) == []
    messages = receive_all(sqs, url)
    assert len(messages) == 1
    envelope = Envelope.from_json(messages[0]["Body"])
    assert (envelope.type, envelope.version, envelope.request_id) == ("REQUEST", 1, request_id(body, parent))
    assert envelope.event_id == waiting[0]["envelope"]["event_id"]
    assert relay({}, None) == 0, "sent once"


def test_relay_handler_builds_its_app_once(monkeypatch, app):
    from reqsys.models import OutboxEvent, db
    from shared.platform.outbox import scheduled_relay

    built = []
    relay = scheduled_relay(lambda: built.append(1) or app, db, OutboxEvent)
    relay({}, None)
    relay({}, None)
    assert built == [1]


# --- sync from childsys -----------------------------------------------------------------------------------






@pytest.fixture
def applied(client, parent, queue):
    body = seed_body()
    assert client.post("/enterwait/request", json=body, headers=parent.headers).status_code == 201
    return body


@pytest.mark.parametrize("how", ["unsigned", "wrong-secret", "replayed", "tampered"])
def test_sync_refuses_unsigned_wrong_and_replayed_calls(app, client, parent, applied, how):
    envelope = decision(applied, "ACCEPT", 2)
    if how == "unsigned":
        call = {"data": envelope.to_json(), "content_type": "application/json"}
    elif how == "wrong-secret":
        call = signed(app, envelope, secret="not-the-secret")
    elif how == "replayed":
        call = signed(app, envelope, now=time.time() - 3600)
    else:
        call = signed(app, envelope)
        call["data"] = call["data"].replace(b'"version":2', b'"version":9')

    response = client.post("/request/accept", **call)

    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert only(client, parent)["status"] == "REQUESTED"


def test_signed_offer_applies_once_with_its_deadline(app, client, parent, applied, queue, sqs):
    from datetime import UTC, datetime

    from shared.waitlist.calendar import offer_deadline

    receive_all(sqs, queue)
    deadline = offer_deadline(datetime.now(UTC), 3)  # fixed by childsys when it made the offer
    envelope = decision(applied, "OFFER", 2, offer_expires_at=deadline.isoformat() + "Z")

    first = client.post("/request/offer", **signed(app, envelope))
    assert first.status_code == 200, first.get_data(as_text=True)
    assert first.get_json() == {"status": "applied"}
    listed = only(client, parent)
    assert (listed["status"], listed["request_status"], listed["version"]) == ("ACCEPTED", 2, 2)
    assert listed["offer_expires_at"] == deadline.isoformat() + "Z" and listed["rank"] is None

    again = client.post("/request/offer", **signed(app, envelope))
    assert again.status_code == 200
    assert again.get_json() == {"status": "ignored"}
    assert [h["type"] for h in only(client, parent)["history"]] == ["REQUEST", "OFFER"]
    assert count(app, "application_history") == 2
    assert count(app, "outbox_events") == 1, "a synced change is not published again"
    assert receive_all(sqs, queue) == []


def test_an_accept_still_in_flight_from_the_old_flow_enrols(app, client, parent, applied):
    """Before offers, childsys's ACCEPT meant accepted and enrolled: one arriving now keeps that meaning."""
    response = client.post("/request/accept", **signed(app, decision(applied, "ACCEPT", 2)))
    assert response.get_json() == {"status": "applied"}
    listed = only(client, parent)
    assert (listed["status"], listed["request_status"], listed["offer_expires_at"]) == ("ENROLLED", 3, None)


def test_stale_offer_after_cancel_is_ignored(app, client, parent, applied):
    assert client.post("/enterwait/cancel", json=applied, headers=parent.headers).status_code == 200  # v2

    response = client.post("/request/offer", **signed(app, decision(applied, "OFFER", 2)))

    assert response.status_code == 200
    assert response.get_json() == {"status": "ignored"}
    listed = only(client, parent)
    assert (listed["status"], listed["version"]) == ("CANCELLED", 2)
    stale = client.post("/request/offer", **signed(app, decision(applied, "OFFER", 1)))
    assert stale.get_json() == {"status": "ignored"}


def test_reject_keeps_the_reason_and_the_parent_may_apply_again(app, client, parent, applied):
    response = client.post("/request/reject", **signed(app, decision(applied, "REJECT", 2, reason="정원 초과")))
    assert response.get_json() == {"status": "applied"}
    listed = only(client, parent)
    assert (listed["status"], listed["request_status"], listed["reason"]) == ("REJECTED", 88, "정원 초과")

    again = client.post("/enterwait/request", json=applied, headers=parent.headers)
    assert again.status_code == 201
    assert (again.get_json()["application"]["status"], again.get_json()["application"]["version"]) == (
        "REQUESTED", 3)
    assert again.get_json()["application"]["reason"] is None


def test_cancel_after_an_offer(app, client, parent, applied, queue, sqs):
    client.post("/request/offer", **signed(app, decision(applied, "OFFER", 2)))
    response = client.post("/enterwait/cancel", json=applied, headers=parent.headers)
    assert response.status_code == 200
    assert response.get_json()["application"]["version"] == 3
    events = [Envelope.from_json(m["Body"]) for m in receive_all(sqs, queue)]
    assert [(e.type, e.version) for e in events] == [("REQUEST", 1), ("CANCEL", 3)]


def test_sync_type_must_match_the_path(app, client, parent, applied):
    response = client.post("/request/reject", **signed(app, decision(applied, "OFFER", 2)))
    assert response.status_code == 400
    assert "type" in response.get_json()["error"]["fields"]
    assert only(client, parent)["status"] == "REQUESTED"


def test_sync_of_unknown_application_is_a_conflict(app, client, queue):
    response = client.post("/request/offer", **signed(app, decision(seed_body(), "OFFER", 2)))
    assert response.status_code == 409
    assert count(app, "application_history") == 0


def test_sync_rejects_a_malformed_envelope(app, client):
    for data in (b"{nope", b'{"type": "ACCEPT"}'):
        response = client.post("/request/accept", data=data, content_type="application/json",
                               headers=sign(app.config["SETTINGS"].sync_secret, data))
        assert response.status_code == 400, response.get_data(as_text=True)


# --- MariaDB / MySQL ----------------------------------------------------------------------------------------


@pytest.mark.mysql
def test_waitlist_flow_on_mysql(make_app, mysql_database, parent, queue, sqs):
    app = make_app("reqsys", {"SQLALCHEMY_DATABASE_URI": mysql_database("test_reqsys_waitlist")})
    add_nurseries(app)
    client = app.test_client()
    body = seed_body()

    assert client.post("/enterwait/request", json=body, headers=parent.headers).status_code == 201
    assert client.post("/request/offer", **signed(app, decision(body, "OFFER", 2))).get_json() == {
        "status": "applied"}
    assert client.post("/request/offer", **signed(app, decision(body, "OFFER", 2))).get_json() == {
        "status": "ignored"}
    assert client.post("/enterwait/cancel", json=body, headers=parent.headers).status_code == 200
    assert client.post("/enterwait/cancel", json=body, headers=parent.headers).status_code == 409
    late = client.post("/request/reject", **signed(app, decision(body, "REJECT", 3, reason="정원 초과")))
    assert late.get_json() == {"status": "ignored"}, "a decision at the version of the parent's cancel loses to it"

    listed = only(client, parent)
    assert (listed["status"], listed["version"], listed["child_name"]) == ("CANCELLED", 3, "김아기")
    assert [h["type"] for h in listed["history"]] == ["REQUEST", "OFFER", "CANCEL"]
    assert [Envelope.from_json(m["Body"]).type for m in receive_all(sqs, queue)] == ["REQUEST", "CANCEL"]
    assert pending(app) == []
    with app.app_context():
        assert app.extensions["sqlalchemy"].engine.dialect.name == "mysql"
