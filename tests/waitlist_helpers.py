"""Helpers for the waitlist tests (no tests here): the seed's body, daycares, the outbox, signed sync
calls, reading the parent's list."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from shared.platform.events import Envelope
from shared.platform.signing import sign
from shared.tools.demo import NURSERIES  # the five demo daycares
from shared.waitlist.calendar import offer_deadline


def seed_body(**changes) -> dict:
    """The seed's JSON body, with a child id of its own (the queues are shared by the session)."""
    body = {
        "child_id": "2023" + uuid.uuid4().hex[:11].translate(str.maketrans("abcdef", "123456")),
        "child_name": "김아기",
        "child_birthday": "20230101",
        "parent_name": "김부모",
        "parent_tel": "010-0000-0000",
        "parent_address": "서울특별시 마포구",
        "parent_postcode": "00001",
        "parent_email": "user@email.com",
        "nursery_id": "A00017",
    }
    body.update(changes)
    return body


def listed_start(envelope) -> str:
    """The default start month: the month after the application, Korean time."""
    from shared.waitlist.calendar import default_start

    return default_start(envelope.occurred_at)


def add_nurseries(app) -> None:
    with app.app_context():
        with app.extensions["sqlalchemy"].engine.begin() as conn:
            for row in NURSERIES:
                conn.execute(sa.text("INSERT INTO nurseries (nursery_id, name, address, area) VALUES (:i, :n, :a, :r)"),
                             {"i": row[0], "n": row[1], "a": row[2], "r": row[3]})


def receive_all(sqs, url: str, wait: int = 1) -> list[dict]:
    messages = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait,
                                  AttributeNames=["All"]).get("Messages", [])
        if not got:
            return messages
        for message in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        messages.extend(got)
        wait = 0


def count(app, table: str) -> int:
    with app.app_context():
        with app.extensions["sqlalchemy"].engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()  # noqa: S608


def pending(app) -> list[dict]:
    with app.app_context():
        with app.extensions["sqlalchemy"].engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT body, attempts FROM outbox_events WHERE published_at IS NULL"))
            return [{"envelope": json.loads(body), "attempts": attempts} for body, attempts in rows]


def applications(client, who) -> list[dict]:
    response = client.get("/enterwait", headers=who.headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["applications"]


def only(client, who) -> dict:
    rows = applications(client, who)
    assert len(rows) == 1, rows
    return rows[0]


def request_id(body: dict) -> str:
    return body["child_id"] + body["nursery_id"]


def signed(app, envelope: Envelope, secret: str | None = None, now: float | None = None):
    data = envelope.to_json().encode()
    headers = sign(secret or app.config["SETTINGS"].sync_secret, data, now=now)
    return {"data": data, "headers": headers, "content_type": "application/json"}


def decision(body: dict, event_type: str, version: int, **extra) -> Envelope:
    return Envelope(type=event_type, version=version, application={**body, **extra})


def offer(client, app, body, version=2, offered_at=None, days=7):
    offered_at = offered_at or datetime.now(UTC)
    envelope = Envelope(type="OFFER", version=version, occurred_at=offered_at, actor="staff@example.com",
                        application={**body, "offer_expires_at": offer_deadline(offered_at, days).isoformat() + "Z"})
    response = client.post("/request/offer", **signed(app, envelope))
    assert response.get_json() == {"status": "applied"}, response.get_data(as_text=True)


CHILD = {"child_id": "202301013333333", "name": "김아기", "birthday": "2023-01-01"}
