"""Children are each parent account's own, and notices go only to verified addresses (one test per defect
an attack found: a child's id squatted by another account, a 409 revealing that a child applied, mail to
any address a parent typed)."""

from __future__ import annotations

import re

import pytest

from shared.platform.events import Envelope
from tests.waitlist_helpers import applications, receive_all, request_id, seed_body


def apply(client, who, body):
    return client.post("/enterwait/request", json=body, headers=who.headers)


# --- children are the account's own --------------------------------------------------------------------


def test_another_account_squatting_a_childs_id_does_not_block_the_real_parent(client, parent, account, queue):
    stranger, body = account("parents"), seed_body()
    assert apply(client, stranger, body).status_code == 201
    assert client.post("/enterwait/cancel", json=body, headers=stranger.headers).status_code == 200

    response = apply(client, parent, body)

    assert response.status_code == 201, response.get_data(as_text=True)
    assert [(a["child_id"], a["status"]) for a in applications(client, parent)] == [(body["child_id"], "REQUESTED")]
    assert [a["status"] for a in applications(client, stranger)] == ["CANCELLED"], "each account's own"


def test_applying_reveals_nothing_about_another_accounts_child(client, parent, account, queue, sqs):
    """Whether a child id already applied at a daycare (under another account) makes no difference to
    what a second account is answered: no 409, an id of the same form, and it reaches none of the first's."""
    stranger, body = account("parents"), seed_body()
    assert apply(client, parent, body).status_code == 201

    taken, fresh = apply(client, stranger, body), apply(client, stranger, seed_body())

    assert (taken.status_code, fresh.status_code) == (201, 201)
    mine, theirs = taken.get_json()["application"], applications(client, parent)[0]
    assert mine["request_id"] == request_id(body, stranger) != theirs["request_id"] == request_id(body, parent)
    assert re.fullmatch(r"\d+A00017\.[0-9a-f]{10}", mine["request_id"]), "the same form whoever applied first"
    assert (mine["status"], mine["version"]) == ("REQUESTED", 1) == (theirs["status"], theirs["version"])
    assert client.post("/enterwait/cancel", json={"request_id": theirs["request_id"]},
                       headers=stranger.headers).status_code == 404
    assert applications(client, parent)[0]["status"] == "REQUESTED"


def test_staff_name_an_ambiguous_application_by_its_request_id(make_app, make_user, bearer, queue):
    """Two accounts' children with one child id at one daycare: the seed's two ids are ambiguous, so the staff
    JSON route asks for the application's request_id (409), and with it offers exactly that one."""
    from childsys import services
    from tests.waitlist_helpers import seed_body as childsys_body

    childsys = make_app("childsys")
    staff = bearer(make_user(groups=("staff",), daycare_id="A00017").email, app_name="childsys")
    body = childsys_body()
    ids = [f"{body['child_id']}A00017.{tag}" for tag in ("aaaaaaaaaa", "bbbbbbbbbb")]
    with childsys.app_context():
        for n, rid in enumerate(ids):
            envelope = Envelope(type="REQUEST", application={**body, "request_id": rid, "user_id": f"parent-{n}"})
            assert services.apply_sync(envelope) == "applied"
    staff_client = childsys.test_client()

    ambiguous = staff_client.post("/request/accept", json=body, headers=staff)
    named = staff_client.post("/request/accept", json={"request_id": ids[1]}, headers=staff)

    assert ambiguous.status_code == 409 and ambiguous.get_json()["error"]["code"] == "ambiguous_application"
    assert named.status_code == 200, named.get_data(as_text=True)
    listed = staff_client.get("/request?nursery_id=A00017&status=ACCEPTED", headers=staff).get_json()
    assert [a["request_id"] for a in listed["applications"]] == [ids[1]]


# --- notices only to verified addresses ------------------------------------------------------------------


def events_for(sqs, queue, child_id: str) -> list[Envelope]:
    return [e for e in (Envelope.from_json(m["Body"]) for m in receive_all(sqs, queue))
            if e.application.get("child_id") == child_id]


def test_a_parent_email_to_another_address_gets_no_notice_until_confirmed(client, parent, queue, sqs, resources):
    from shared.pipeline import email as email_handler
    from shared.pipeline.mailbox import sent_emails
    from tests.pipeline_helpers import email_record

    other = f"victim-{parent.sub[:8]}@example.com"
    body = seed_body(parent_email=other, child_name="악성문구", parent_name="클릭하세요 http://evil.example")
    created = apply(client, parent, body)
    assert created.status_code == 201
    shown = created.get_json()["application"]
    assert (shown["notify_email"], shown["parent_email_confirmed"]) == (parent.email, False)

    [request] = events_for(sqs, queue, body["child_id"])
    assert request.application["notify_email"] == parent.email
    assert email_handler.handler({"Records": [email_record(resources, request)]}, None) == {"batchItemFailures": []}
    [code_mail] = sent_emails(to=other)  # the confirmation, not the notice
    assert "REQUEST" not in code_mail["subject"] and "입소대기 신청이 접수" not in code_mail["subject"]
    for typed in (body["child_name"], body["parent_name"], parent.email):
        assert typed not in code_mail["subject"] + code_mail["text"], "nothing the applicant typed"
    assert sent_emails(to=parent.email), "the notice went to the account's own email"

    code = re.search(r"code=([A-Za-z0-9_-]+)", code_mail["text"])[1]
    assert client.post("/enterwait/contact/confirm", json={"code": "x" * 24}).status_code == 404
    assert client.post("/enterwait/contact/confirm", json={"code": code}).status_code == 200
    cancelled = client.post("/enterwait/cancel", json=body, headers=parent.headers).get_json()["application"]

    assert (cancelled["notify_email"], cancelled["parent_email_confirmed"]) == (other, True)
    [cancel] = [e for e in events_for(sqs, queue, body["child_id"]) if e.type == "CANCEL"]
    assert cancel.application["notify_email"] == other
    assert email_handler.handler({"Records": [email_record(resources, cancel)]}, None) == {"batchItemFailures": []}
    assert len(sent_emails(to=other)) == 2, "confirmed: the notices go there now"


def test_the_applications_page_says_where_notices_go(client, app, account, sign_in, queue):
    who = account("parents")
    assert apply(client, who, seed_body(parent_email="grandma@example.com")).status_code == 201
    browser = app.test_client()
    sign_in(browser, who.email)

    page = browser.get("/applications").get_data(as_text=True)

    assert 'data-notify="pending"' in page and "grandma@example.com" in page and who.email in page


@pytest.mark.parametrize("carried", [{"notify_email": ""}, {}])
def test_the_email_handler_sends_only_where_the_event_says(resources, carried):
    from shared.pipeline import email as email_handler

    env = Envelope(type="REQUEST", application={**seed_body(parent_email="typed@example.com"), **carried})
    assert email_handler.recipient(env) == ("" if carried else "typed@example.com"), "old events: as before"
