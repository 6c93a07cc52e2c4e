"""reqsys, the parent's side of the portal waitlist: limits, start months, criteria and the live rank,
offers answered before their deadline (and expired or reminded by the schedule), withdrawals on
confirmation, and proof documents uploaded straight to S3.

Against the moto server and a migrated SQLite file per test (MariaDB where marked); childsys's
events are the signed sync calls the pipeline would make.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
import sqlalchemy as sa

from shared.platform.events import Envelope
from shared.waitlist.calendar import offer_deadline
from tests.file_samples import PDF
from tests.waitlist_helpers import (
    add_nurseries,
    applications,
    count,
    offer,
    pending,
    receive_all,
    request_id,
    seed_body,
    signed,
)


def by_id(client, who) -> dict[str, dict]:
    return {a["request_id"]: a for a in applications(client, who)}


def apply(client, who, body) -> dict:
    response = client.post("/enterwait/request", json=body, headers=who.headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["application"]




def verify(client, app, body, code, status="VERIFIED", at=None, proof_key=None, reason=None):
    envelope = Envelope(type="VERIFY", version=1, occurred_at=at or datetime.now(UTC), actor="staff@example.com",
                        application={**body, "criterion": {"code": code, "status": status, "reason": reason,
                                                           "proof_key": proof_key}})
    return client.post("/request/verify", **signed(app, envelope)).get_json()["status"]


def events_of(sqs, url) -> list[Envelope]:
    return [Envelope.from_json(m["Body"]) for m in receive_all(sqs, url)]


# --- limits -------------------------------------------------------------------------------------------


def test_a_fourth_application_is_refused_and_explained(app, client, parent, queue, sqs):
    body = seed_body()
    for nursery in ("A00017", "A00018", "A00021"):
        apply(client, parent, {**body, "nursery_id": nursery})
    receive_all(sqs, queue)

    fourth = client.post("/enterwait/request", json={**body, "nursery_id": "B00102"}, headers=parent.headers)

    assert fourth.status_code == 409
    error = fourth.get_json()["error"]
    assert error["code"] == "limit_reached" and "3 active applications" in error["message"]
    assert count(app, "applications") == 3 and receive_all(sqs, queue) == [], "nothing written or sent"
    # a cancelled one no longer counts
    cancelled = client.post("/enterwait/cancel", json={**body, "nursery_id": "A00021"}, headers=parent.headers)
    assert cancelled.status_code == 200
    assert apply(client, parent, {**body, "nursery_id": "B00102"})["status"] == "REQUESTED"


def test_a_third_application_is_refused_for_an_enrolled_child(app, client, parent, queue):
    body = seed_body()
    apply(client, parent, body)  # A00017
    offer(client, app, body)
    assert client.post("/enterwait/confirm", json=body, headers=parent.headers).status_code == 200
    apply(client, parent, {**body, "nursery_id": "A00018"})
    apply(client, parent, {**body, "nursery_id": "A00021"})

    third = client.post("/enterwait/request", json={**body, "nursery_id": "B00102"}, headers=parent.headers)

    assert third.status_code == 409
    assert "while the child is enrolled" in third.get_json()["error"]["message"]
    assert by_id(client, parent)[request_id(body, parent)]["status"] == "ENROLLED"


def test_another_account_using_the_same_child_id_neither_blocks_nor_withdraws_the_child(app, client, parent, account,
                                                                                       queue):
    """A child is known by the id its parent gave; nothing verifies it across accounts. Someone else applying
    under the same id must not use up this child's limit, and their confirmation must not withdraw it."""
    body = seed_body()
    apply(client, parent, body)  # A00017
    stranger, copied = account("parents"), {**body, "parent_email": "someone@example.com"}
    for nursery in ("A00018", "A00021", "B00102"):
        apply(client, stranger, {**copied, "nursery_id": nursery})

    assert apply(client, parent, {**body, "nursery_id": "B00215"})["status"] == "REQUESTED", "not the stranger's limit"
    offer(client, app, {**copied, "nursery_id": "A00018"})
    confirmed = client.post("/enterwait/confirm", json={**copied, "nursery_id": "A00018"}, headers=stranger.headers)

    assert confirmed.status_code == 200 and confirmed.get_json()["withdrawn"] == [
        request_id({**body, "nursery_id": n}, stranger) for n in ("A00021", "B00102")], "only the stranger's own"
    assert {a["nursery_id"]: a["status"] for a in applications(client, parent)} == {
        "A00017": "REQUESTED", "B00215": "REQUESTED"}


def test_the_apply_form_states_the_limit_before_the_parent_tries(app, client, parent, make_user, sign_in, submit):
    from tests.waitlist_helpers import CHILD

    browser = app.test_client()
    user = make_user(groups=["parents"])
    sign_in(browser, user.email)
    submit(browser, "/children", CHILD)
    form = browser.get("/nurseries/A00017/apply").get_data(as_text=True)
    assert 'id="limits"' in form and "3곳" in form and "2곳" in form, "the rule, before the parent tries"
    assert 'type="month"' in form and 'name="criteria"' in form and "DUAL_INCOME" in form


# --- start month and criteria -----------------------------------------------------------------------


def test_the_desired_start_month_sets_the_class_and_is_checked(client, parent, queue):
    now = datetime.now(UTC)
    next_march = f"{now.year + 1}-03"
    body = seed_body(child_birthday="20230505", desired_start=next_march)
    created = apply(client, parent, body)
    assert (created["desired_start"], created["age_class"]) == (next_march, now.year + 1 - 2023 - 1)

    for month, why in (("2001-01", "between this month"), (f"{now.year + 5}-03", "between this month")):
        response = client.post("/enterwait/request", json={**seed_body(), "desired_start": month},
                               headers=parent.headers)
        assert response.status_code == 400 and why in response.get_json()["error"]["fields"]["desired_start"]
    too_old = client.post("/enterwait/request", json=seed_body(child_birthday="20170101",
                                                               desired_start=next_march), headers=parent.headers)
    assert too_old.status_code == 400 and "5세반" in too_old.get_json()["error"]["fields"]["desired_start"]


def test_unknown_criteria_are_refused_by_name(client, parent, queue):
    response = client.post("/enterwait/request", json=seed_body(criteria=["DUAL_INCOME", "VIP"]),
                           headers=parent.headers)
    assert response.status_code == 400 and "VIP" in response.get_json()["error"]["fields"]["criteria"]


# --- ranking ------------------------------------------------------------------------------------------


def test_rank_and_score_follow_the_verified_criteria(app, client, account, queue):
    """Points add up; only verified criteria count; any 1순위 item beats any number of 2순위 points; ties by time."""
    families = {name: account("parents") for name in ("early", "late", "second_tier", "first_tier", "unverified")}
    bodies = {}
    declared = {"early": [], "late": [], "second_tier": ["ADOPTED", "GRANDPARENT_FAMILY", "SIBLING_ENROLLED"],
                "first_tier": ["BASIC_LIVELIHOOD", "ADOPTED"], "unverified": ["DUAL_INCOME"]}
    for name in ("early", "second_tier", "unverified", "first_tier", "late"):  # the application order
        bodies[name] = seed_body(criteria=declared[name])
        apply(client, families[name], bodies[name])

    def standing(name) -> tuple[int, int]:
        [mine] = applications(client, families[name])
        return mine["rank"], mine["score"]

    assert [standing(n) for n in ("early", "second_tier", "unverified", "first_tier", "late")] == [
        (1, 0), (2, 0), (3, 0), (4, 0), (5, 0)], "nothing verified yet: application order"

    for code in declared["second_tier"]:
        assert verify(client, app, bodies["second_tier"], code) == "applied"
    assert verify(client, app, bodies["first_tier"], "BASIC_LIVELIHOOD") == "applied"
    assert verify(client, app, bodies["first_tier"], "ADOPTED") == "applied"

    assert standing("first_tier") == (1, 150), "100 + 50, and a 1순위 item"
    assert standing("second_tier") == (2, 150), "the same points, but only 2순위 items"
    assert standing("early") == (3, 0) and standing("unverified") == (4, 0) and standing("late") == (5, 0)
    [unverified] = applications(client, families["unverified"])
    assert unverified["criteria"][0]["status"] == "PENDING" and unverified["criteria"][0]["counts"] is False

    # a rejected criterion stops counting; an older verification arriving late changes nothing
    earlier = datetime.now(UTC) - timedelta(hours=1)
    assert verify(client, app, bodies["first_tier"], "BASIC_LIVELIHOOD", "REJECTED", reason="서류 불일치") == "applied"
    assert verify(client, app, bodies["first_tier"], "BASIC_LIVELIHOOD", at=earlier) == "ignored"
    assert standing("first_tier") == (2, 50) and standing("second_tier") == (1, 150)
    [rejected] = [c for c in applications(client, families["first_tier"])[0]["criteria"]
                  if c["code"] == "BASIC_LIVELIHOOD"]
    assert (rejected["status"], rejected["reason"]) == ("REJECTED", "서류 불일치")


@pytest.mark.mysql
def test_rank_in_sql_on_mysql(make_app, mysql_database, account, queue):
    app = make_app("reqsys", {"SQLALCHEMY_DATABASE_URI": mysql_database("test_reqsys_rank")})
    add_nurseries(app)
    client = app.test_client()
    first, second, third = (account("parents") for _ in range(3))
    bodies = [seed_body(criteria=["ADOPTED"]), seed_body(), seed_body(criteria=["MULTI_CHILD"])]
    for who, body in zip((first, second, third), bodies, strict=True):
        apply(client, who, body)
    assert verify(client, app, bodies[0], "ADOPTED") == "applied"
    assert verify(client, app, bodies[2], "MULTI_CHILD") == "applied"
    ranks = [applications(client, who)[0]["rank"] for who in (first, second, third)]
    assert ranks == [2, 3, 1]
    with app.app_context():
        assert app.extensions["sqlalchemy"].engine.dialect.name == "mysql"


# --- offers, deadlines and withdrawals ----------------------------------------------------------------


def test_confirming_enrols_and_withdraws_the_childs_other_applications(app, client, parent, queue, sqs):
    body = seed_body()
    for nursery in ("A00017", "A00018", "A00021"):
        apply(client, parent, {**body, "nursery_id": nursery})
    offer(client, app, body)
    receive_all(sqs, queue)

    response = client.post("/enterwait/confirm", json={"child_id": body["child_id"], "nursery_id": "A00017"},
                           headers=parent.headers)

    assert response.status_code == 200, response.get_data(as_text=True)
    others = [request_id({**body, "nursery_id": n}, parent) for n in ("A00018", "A00021")]
    assert sorted(response.get_json()["withdrawn"]) == others
    listed = by_id(client, parent)
    assert listed[request_id(body, parent)]["status"] == "ENROLLED"
    assert [listed[o]["status"] for o in others] == ["WITHDRAWN", "WITHDRAWN"]
    assert listed[others[0]]["reason"] == "햇살 어린이집"
    events = events_of(sqs, queue)
    assert sorted((e.type, e.request_id, e.actor) for e in events) == sorted(
        [("CONFIRM", request_id(body, parent), parent.email)] + [("WITHDRAW", o, "system") for o in others])
    withdraw = next(e for e in events if e.type == "WITHDRAW")
    assert withdraw.application["enrolled_nursery_name"] == "햇살 어린이집"
    assert withdraw.version == 2, "versioned like any change, so a late event never undoes it"
    again = client.post("/enterwait/confirm", json=body, headers=parent.headers)
    assert again.status_code == 409


def test_decline_frees_the_offer_and_other_parents_cannot_answer(app, client, parent, account, queue, sqs):
    body = seed_body()
    apply(client, parent, body)
    offer(client, app, body)
    stranger = account("parents")
    assert client.post("/enterwait/decline", json=body, headers=stranger.headers).status_code == 404
    assert client.post("/enterwait/confirm", json=body, headers=stranger.headers).status_code == 404
    receive_all(sqs, queue)

    response = client.post("/enterwait/decline", json=body, headers=parent.headers)

    assert response.status_code == 200 and response.get_json()["application"]["status"] == "DECLINED"
    assert response.get_json()["application"]["request_status"] == 89
    assert [e.type for e in events_of(sqs, queue)] == ["DECLINE"]
    assert apply(client, parent, body)["status"] == "REQUESTED", "the parent may wait there again"


def test_the_schedule_expires_unanswered_offers_and_reminds_once(app, client, parent, account, queue, sqs):
    from reqsys.offers import run_deadlines

    body, other_parent = seed_body(), account("parents")
    other = seed_body()
    apply(client, parent, body)
    apply(client, other_parent, other)
    offered_at = datetime.now(UTC)
    offer(client, app, body, offered_at=offered_at, days=7)
    deadline = offer_deadline(offered_at, 7).replace(tzinfo=UTC)
    receive_all(sqs, queue)

    with app.app_context():
        assert run_deadlines(deadline - timedelta(days=3)) == {"expired": 0, "reminded": 0}
        assert run_deadlines(deadline - timedelta(days=1)) == {"expired": 0, "reminded": 1}
        assert run_deadlines(deadline - timedelta(hours=1)) == {"expired": 0, "reminded": 0}, "once"
    [reminder] = events_of(sqs, queue)
    assert reminder.type == "REMIND" and reminder.application["offer_expires_at"] == deadline.isoformat().replace(
        "+00:00", "Z")

    with app.app_context():
        assert run_deadlines(deadline + timedelta(seconds=1)) == {"expired": 1, "reminded": 0}
        assert run_deadlines(deadline + timedelta(minutes=10)) == {"expired": 0, "reminded": 0}
    listed = by_id(client, parent)[request_id(body, parent)]
    assert (listed["status"], listed["request_status"], listed["version"]) == ("EXPIRED", 90, 3)
    [expired] = events_of(sqs, queue)
    assert (expired.type, expired.actor, expired.version) == ("EXPIRE", "system", 3)
    assert client.post("/enterwait/confirm", json=body, headers=parent.headers).status_code == 409
    assert by_id(client, other_parent)[request_id(other, other_parent)]["status"] == "REQUESTED", \
        "only the offer moved on"


def test_the_schedule_handler_runs_the_deadlines_in_the_app(app, client, parent, queue, monkeypatch):
    """reqsys.schedule.handler is what Zappa's expression event calls: it builds the app once and runs."""
    import importlib

    body = seed_body()
    apply(client, parent, body)
    offer(client, app, body, offered_at=datetime.now(UTC) - timedelta(days=9), days=7)
    built = []
    monkeypatch.setattr("reqsys.create_app", lambda: built.append(1) or app)
    schedule = importlib.reload(importlib.import_module("reqsys.schedule"))
    assert schedule.handler({"source": "aws.events"}, None) == {"expired": 1, "reminded": 0}
    assert schedule.handler({}, None) == {"expired": 0, "reminded": 0} and built == [1]
    assert by_id(client, parent)[request_id(body, parent)]["status"] == "EXPIRED"


def test_a_confirmation_after_the_deadline_expires_the_offer_instead(app, client, parent, queue, sqs):
    body = seed_body()
    apply(client, parent, body)
    offer(client, app, body, offered_at=datetime.now(UTC) - timedelta(days=10), days=7)  # the schedule is late
    receive_all(sqs, queue)

    response = client.post("/enterwait/confirm", json=body, headers=parent.headers)

    assert response.status_code == 409 and response.get_json()["error"]["code"] == "offer_expired"
    assert by_id(client, parent)[request_id(body, parent)]["status"] == "EXPIRED"
    assert [e.type for e in events_of(sqs, queue)] == ["EXPIRE"]


def test_a_page_that_showed_the_offer_before_it_expired_cannot_confirm_it(app, make_app, client, parent, queue):
    """The confirm page loads the application, the schedule (another process) expires the offer, then the
    confirmation locks the row: it must decide on the row as it is now, not as the page loaded it."""
    from reqsys import offers, services
    from reqsys.offers import run_deadlines
    from shared.platform.auth import Identity

    body = seed_body()
    apply(client, parent, body)
    offered_at = datetime.now(UTC) - timedelta(days=7, hours=23, minutes=59)
    offer(client, app, body, offered_at=offered_at, days=7)
    deadline = offer_deadline(offered_at, 7).replace(tzinfo=UTC)
    schedule = make_app("reqsys", {"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"]}, migrate=False)
    who = Identity(parent.sub, parent.email, "", ("parents",), None, 0)

    with app.test_request_context():
        shown = services.get_application(who, request_id(body, parent))  # what the page saw
        assert shown.status_enum.name == "ACCEPTED"
        with schedule.app_context():
            assert run_deadlines(deadline + timedelta(seconds=1))["expired"] == 1
        with pytest.raises(offers.Conflict):
            offers.confirm(who, body, now=deadline - timedelta(minutes=5))
    assert by_id(client, parent)[request_id(body, parent)]["status"] == "EXPIRED"


@pytest.mark.mysql
def test_a_confirmation_holding_the_row_wins_over_the_schedule_on_mysql(make_app, mysql_database, parent, queue):
    """The schedule skips an offer a parent is answering (SKIP LOCKED), so the confirmation decides."""
    from reqsys.models import Application, db
    from reqsys.offers import run_deadlines

    app = make_app("reqsys", {"SQLALCHEMY_DATABASE_URI": mysql_database("test_reqsys_race")})
    add_nurseries(app)
    client = app.test_client()
    body = seed_body()
    apply(client, parent, body)
    offered_at = datetime.now(UTC) - timedelta(days=7, hours=23, minutes=59)
    offer(client, app, body, offered_at=offered_at, days=7)
    deadline = offer_deadline(offered_at, 7).replace(tzinfo=UTC)

    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with engine.connect() as parent_side:  # the parent's confirmation, holding the row lock
        parent_side.execute(sa.text("SELECT id FROM applications WHERE request_id = :r FOR UPDATE"),
                            {"r": request_id(body, parent)})
        with app.app_context():
            assert run_deadlines(deadline + timedelta(seconds=1))["expired"] == 0, "skipped, not blocked"
        parent_side.execute(sa.text("UPDATE applications SET status = 3, version = version + 1 WHERE request_id = :r"),
                            {"r": request_id(body, parent)})
        parent_side.commit()
    engine.dispose()
    with app.app_context():
        assert run_deadlines(deadline + timedelta(minutes=10))["expired"] == 0, "confirmed: nothing to expire"
        assert db.session.scalars(sa.select(Application.status)).one() == 3


# --- proof documents ----------------------------------------------------------------------------------


def upload_proof(client, who, body, code, content=PDF, content_type="application/pdf", filename="재직증명서.pdf"):
    ids = {"child_id": body["child_id"], "nursery_id": body["nursery_id"], "criterion": code}
    form = client.post("/enterwait/proofs/upload", json={**ids, "content_type": content_type, "filename": filename},
                       headers=who.headers)
    assert form.status_code == 200, form.get_data(as_text=True)
    upload = form.get_json()["upload"]
    posted = requests.post(upload["url"], data=upload["fields"], files={"file": (filename, content, content_type)},
                           timeout=10)
    assert posted.status_code == 204
    return client.post("/enterwait/proofs", json={**ids, "key": upload["key"]}, headers=who.headers), upload["key"]


def test_a_proof_goes_to_s3_is_checked_and_told_to_childsys(app, client, parent, account, queue, sqs, resources):
    body = seed_body(criteria=["DUAL_INCOME"])
    apply(client, parent, body)
    receive_all(sqs, queue)

    response, key = upload_proof(client, parent, body, "DUAL_INCOME")

    assert response.status_code == 200, response.get_data(as_text=True)
    [criterion] = response.get_json()["application"]["criteria"]
    assert criterion["proof"]["filename"] == "재직증명서.pdf" and criterion["status"] == "PENDING"
    assert key.startswith(f"proofs/{parent.sub}/{request_id(body, parent)}/DUAL_INCOME/")
    [event] = events_of(sqs, queue)
    assert (event.type, event.application["criterion"]["proof_key"], event.actor) == (
        "PROOF", key + ".checked", parent.email)
    assert "proof_key" not in str(applications(client, parent)), "the key is never shown back"

    # a file that is not what it says is refused and removed; someone else's key is refused
    bad, bad_key = upload_proof(client, parent, body, "DUAL_INCOME", content=b"MZ\x90\x00" + b"\x00" * 64)
    assert bad.status_code == 400 and "file" in bad.get_json()["error"]["fields"]
    stranger = account("parents")
    stolen = client.post("/enterwait/proofs", json={"child_id": body["child_id"], "nursery_id": "A00017",
                                                    "criterion": "DUAL_INCOME", "key": key}, headers=stranger.headers)
    assert stolen.status_code == 404
    undeclared = client.post("/enterwait/proofs/upload", json={
        "child_id": body["child_id"], "nursery_id": "A00017", "criterion": "ADOPTED",
        "content_type": "application/pdf", "filename": "x.pdf"}, headers=parent.headers)
    assert undeclared.status_code == 400 and "criterion" in undeclared.get_json()["error"]["fields"]
    assert pending(app) == []


def test_a_proof_cannot_be_swapped_after_it_was_checked(app, client, parent, queue, sqs, resources):
    """The presigned POST stays valid for minutes: posting another file to the same key after the check
    must not change what the daycare opens. The checked file is kept where no browser can write."""
    from shared.platform.aws import client as aws_client

    body = seed_body(criteria=["DUAL_INCOME"])
    apply(client, parent, body)
    receive_all(sqs, queue)
    ids = {"child_id": body["child_id"], "nursery_id": body["nursery_id"], "criterion": "DUAL_INCOME"}
    upload = client.post("/enterwait/proofs/upload", json={**ids, "content_type": "application/pdf",
                                                           "filename": "재직증명서.pdf"}, headers=parent.headers)
    upload = upload.get_json()["upload"]

    def post(content: bytes) -> None:
        files = {"file": ("재직증명서.pdf", content, "application/pdf")}
        assert requests.post(upload["url"], data=upload["fields"], files=files, timeout=10).status_code == 204

    post(PDF)
    registered = client.post("/enterwait/proofs", json={**ids, "key": upload["key"]}, headers=parent.headers)
    assert registered.status_code == 200, registered.get_data(as_text=True)
    post(b"MZ\x90\x00" + b"\x00" * 64)  # the same form again, with a program in it

    [event] = events_of(sqs, queue)
    recorded = event.application["criterion"]["proof_key"]
    stored = aws_client("s3").get_object(Bucket=resources["UPLOADS_BUCKET"], Key=recorded)["Body"].read()
    assert stored == PDF and recorded.startswith(f"proofs/{parent.sub}/{request_id(body, parent)}/DUAL_INCOME/")
    for key in (recorded, upload["key"] + "x", upload["key"] + "/x"):
        again = client.post("/enterwait/proofs", json={**ids, "key": key}, headers=parent.headers)
        assert again.status_code == 400 and "key" in again.get_json()["error"]["fields"], key


def test_a_verified_criterion_takes_no_new_proof(app, client, parent, queue):
    body = seed_body(criteria=["SIBLING_ENROLLED"])  # needs no proof
    apply(client, parent, body)
    assert verify(client, app, body, "SIBLING_ENROLLED") == "applied"
    response = client.post("/enterwait/proofs/upload", json={
        "child_id": body["child_id"], "nursery_id": "A00017", "criterion": "SIBLING_ENROLLED",
        "content_type": "application/pdf", "filename": "x.pdf"}, headers=parent.headers)
    assert response.status_code == 409
    assert applications(client, parent)[0]["score"] == 50


def test_the_criteria_route_lists_the_configuration(client):
    listed = client.get("/api/criteria").get_json()
    assert listed["limits"] == {"active": 3, "active_when_enrolled": 2} and listed["offer_days"] == 7
    dual = next(c for c in listed["criteria"] if c["code"] == "DUAL_INCOME")
    assert (dual["tier"], dual["points"], dual["label"]["ko"][:3]) == (1, 200, "맞벌이")
