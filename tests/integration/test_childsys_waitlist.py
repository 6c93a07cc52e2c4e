"""childsys: staff decisions (offers, rejections, criteria), the signed sync endpoints, enrolment, the
ranked list, class places and prompts, proofs, the audit log, and who may do what."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.platform.events import Envelope, EventType
from shared.platform.signing import sign

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


@pytest.mark.parametrize("days", [None, 3])
def test_an_offer_runs_to_the_end_of_the_configured_day_seven_by_default(make_app, staff, queue, days):
    from shared.platform.settings import Settings
    from shared.waitlist.calendar import offer_deadline
    from shared.waitlist.settings import WaitlistSettings

    settings = Settings.load("childsys")
    app = make_app("childsys", {"WAITLIST": WaitlistSettings(offer_days=days)} if days else None)
    body = seed_body()
    raw = Envelope(type="REQUEST", application=body).to_json().encode()
    client = app.test_client()
    client.post("/enterwait/request", data=raw, headers={**SECRET_HEADERS, **sign(settings.sync_secret, raw)})

    before = datetime.now(UTC)
    offered = client.post("/request/accept", json=body, headers=staff).json["application"]

    expected = offer_deadline(before, days or 7)
    assert offered["offer_expires_at"] == expected.isoformat() + "Z"
    assert (expected - before.replace(tzinfo=None)).days in ((days or 7), (days or 7) + 1)


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
    assert again.json["error"]["code"] == "transition_not_allowed"


def test_other_daycares_staff_and_parents_are_refused(client, sync, make_user, bearer):
    body = seed_body()
    sync("REQUEST", body)
    other = bearer(make_user(groups=("staff",), daycare_id="B00102").email, app_name="childsys")
    parent = bearer(make_user(groups=("parents",)).email, app_name="childsys")

    assert client.get("/request?nursery_id=A00017", headers=other).status_code == 403
    assert client.post("/request/accept", json=body, headers=other).status_code == 403
    assert client.get("/request?nursery_id=A00017", headers=parent).status_code == 403
    assert client.get("/request?nursery_id=A00017").status_code == 401


def test_staff_cannot_reach_another_daycares_application_through_the_ambiguous_request_id(
        client, sync, staff, make_user, bearer, queue, sqs):
    """request_id = child_id + nursery_id: child "X" at A00017 and child "XA" at "00017" share one.
    Staff of a daycare whose id ends another's must not decide or verify that daycare's applications."""
    body = seed_body(criteria=["SIBLING_ENROLLED"])
    sync("REQUEST", body)
    received(sqs, queue)
    suffix_staff = bearer(make_user(groups=("staff",), daycare_id="00017").email, app_name="childsys")
    same_id = {"child_id": body["child_id"] + "A", "nursery_id": "00017"}

    offered = client.post("/request/accept", json=same_id, headers=suffix_staff)
    rejected = client.post("/request/reject", json={**same_id, "reason": "x"}, headers=suffix_staff)
    verified = client.post("/request/verify", json={**same_id, "criterion": "SIBLING_ENROLLED",
                                                    "status": "VERIFIED"}, headers=suffix_staff)

    assert (offered.status_code, rejected.status_code, verified.status_code) == (404, 404, 404)
    [mine] = waiting(client, staff)
    assert (mine["status"], mine["score"], len(mine["history"])) == ("REQUESTED", 0, 1)
    assert received(sqs, queue) == [], "nothing was published"


def test_an_admin_chooses_a_daycare_and_stays_on_it(client, app, sync, make_user, sign_in, submit, queue):
    """Admins belong to no daycare: their home lists the daycares, and the pages of the one they open keep
    to it (filters, the detail page's way back, the redirect after an offer)."""
    from tests.waitlist_helpers import add_nurseries

    add_nurseries(app)
    body = seed_body(child_name="무지개아이", nursery_id="B00102")
    sync("REQUEST", body)
    sign_in(client, make_user(groups=("admins",)).email)

    home = client.get("/")
    assert home.status_code == 200 and 'href="/applications?nursery_id=B00102"' in home.text
    assert client.get("/applications").location == "/", "no daycare chosen yet: back to the choice"
    listing = client.get("/applications?nursery_id=B00102")
    assert listing.status_code == 200 and "무지개아이" in listing.text
    assert "/applications?status=ACCEPTED&amp;nursery_id=B00102" in listing.text
    assert 'href="/classes?nursery_id=B00102"' in listing.text
    detail = f"/applications/{body['child_id']}B00102"
    assert 'href="/applications?nursery_id=B00102"' in client.get(detail).text, "the way back keeps the daycare"
    asked = submit(client, f"{detail}/accept", {}, page=detail)
    assert asked.status_code == 200 and "입소를 제안할까요?" in asked.text, "unconfirmed: the question page"
    assert "무지개아이" not in client.get("/applications?status=ACCEPTED&nursery_id=B00102").text, "nothing sent"
    offered = submit(client, f"{detail}/accept", {"confirmed": "yes"}, page=detail)
    assert offered.status_code == 302
    assert "무지개아이" in client.get("/applications?status=ACCEPTED&nursery_id=B00102").text


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


@pytest.mark.parametrize(("path", "field"), [
    ("/request?class=9", "class"), ("/request?class=one", "class"), ("/request?page=0", "page"),
    ("/request?page=two", "page"), ("/request?sort=oldest", "sort"), ("/request?status=WAITING", "status"),
    ("/request?nursery_id=A-17", "nursery_id"), ("/api/classes?nursery_id=../x", "nursery_id"),
    ("/api/audit?page=-1", "page"), ("/api/audit?type=NOPE", "type"), ("/api/audit?q=" + "가" * 51, "q"),
])
def test_a_bad_query_parameter_is_a_400_naming_it(client, staff, path, field):
    response = client.get(path, headers=staff)
    assert response.status_code == 400 and list(response.json["error"]["fields"]) == [field]


def test_the_staff_pages_name_a_bad_query_parameter_too(client, staff_browser):
    page = client.get("/applications?class=9")
    assert page.status_code == 400 and "class" in page.text
    assert client.get("/applications?class=&page=").status_code == 200, "empty parameters are absent ones"


def test_a_bad_event_names_the_field_inside_the_envelope(client, sync):
    body = seed_body(criteria=["DUAL_INCOME"])
    sync("REQUEST", body)
    bad_birthday = sync("CANCEL", {**body, "child_birthday": "2023-01-01"}, version=2)
    proof = Envelope(type="PROOF", application={**body, "criterion": {"code": "not a code"}})
    bad_code = sync("PROOF", body, envelope=proof)
    not_an_object = sync("PROOF", body, envelope=Envelope(type="PROOF", application={**body, "criterion": "x"}))

    assert bad_birthday.status_code == 400 and list(bad_birthday.json["error"]["fields"]) == [
        "application.child_birthday"]
    assert bad_code.status_code == 400 and list(bad_code.json["error"]["fields"]) == ["application.criterion.code"]
    assert not_an_object.status_code == 400 and list(not_an_object.json["error"]["fields"]) == [
        "application.criterion"]


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

    response = submit(client, f"{detail}/accept", {"confirmed": "yes"}, page=detail)
    assert response.status_code == 302
    assert 'data-status="ACCEPTED"' in client.get(detail).text, "offered, waiting for the parent"
    assert "박새싹" not in client.get("/enrolled").text
    conflict = submit(client, f"{detail}/reject", {"reason": "x", "confirmed": "yes"}, page=detail)
    assert conflict.status_code == 302, "the page no longer offers it; a replayed post is refused"
    after = client.get(detail).text
    assert "이 신청은 더 이상 대기 중이 아닙니다." in after and 'data-status="ACCEPTED"' in after
    assert sync("CONFIRM", body, version=3).json == {"status": "applied"}
    assert "박새싹" in client.get("/enrolled").text


# --- the portal waitlist: rank, verification, class places, prompts, proofs, audit ----------------------

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def request_at(sync, body, seconds: int, version: int = 1):
    """A REQUEST that happened `seconds` after T0 (its time is the application time ties go by)."""
    envelope = Envelope(type="REQUEST", version=version, application=body, occurred_at=T0 + timedelta(seconds=seconds),
                        actor=body["parent_email"])
    assert sync("REQUEST", body, envelope=envelope).json == {"status": "applied"}


def proof_sent(sync, body, code, key=None, name="증빙.pdf", version=1, at=None):
    envelope = Envelope(type="PROOF", version=version, occurred_at=at or datetime.now(UTC), actor=body["parent_email"],
                        application={**body, "criterion": {"code": code, "proof_key": key or f"proofs/p/{code}/1",
                                                           "proof_name": name}})
    return sync("PROOF", body, envelope=envelope).json["status"]


def verify(client, staff, body, code, status="VERIFIED", reason=None):
    return client.post("/request/verify", json={"child_id": body["child_id"], "nursery_id": body["nursery_id"],
                                                 "criterion": code, "status": status, "reason": reason},
                       headers=staff)


def waiting(client, staff, **params) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in {"status": "REQUESTED", **params}.items())
    return client.get(f"/request?{query}", headers=staff).json["applications"]


def test_the_staff_list_is_in_rank_order_and_only_verified_criteria_count(client, sync, staff, queue, sqs):
    declared = {"early": [], "second_tier": ["ADOPTED", "GRANDPARENT_FAMILY", "SIBLING_ENROLLED"],
                "unverified": ["DUAL_INCOME"], "first_tier": ["BASIC_LIVELIHOOD", "ADOPTED"], "late": []}
    bodies = {name: seed_body(child_name=name, criteria=codes) for name, codes in declared.items()}
    for seconds, name in enumerate(declared):
        request_at(sync, bodies[name], seconds)
    for name in ("second_tier", "first_tier"):
        for code in declared[name]:
            if code != "SIBLING_ENROLLED":  # the daycare checks that one in its own records
                assert proof_sent(sync, bodies[name], code) == "applied"
            assert verify(client, staff, bodies[name], code).status_code == 200
    missing = verify(client, staff, bodies["unverified"], "DUAL_INCOME")
    assert missing.status_code == 409 and "proof" in missing.json["error"]["message"], "no proof, no verification"

    listed = waiting(client, staff)
    assert [(a["child_name"], a["rank"], a["score"]) for a in listed] == [
        ("first_tier", 1, 150), ("second_tier", 2, 150), ("early", 3, 0), ("unverified", 4, 0), ("late", 5, 0)]
    assert [c["status"] for c in listed[3]["criteria"]] == ["PENDING"]
    verified = [e for e in received(sqs, queue) if e.type == "VERIFY"]
    assert len(verified) == 5 and {e.application["criterion"]["status"] for e in verified} == {"VERIFIED"}
    assert verified[0].application["criterion"]["label_ko"] and verified[0].actor.startswith("staff-")

    # a rejected criterion stops counting, with a reason; a new proof puts it back to be checked
    assert verify(client, staff, bodies["first_tier"], "BASIC_LIVELIHOOD", "REJECTED").status_code == 400
    rejected = verify(client, staff, bodies["first_tier"], "BASIC_LIVELIHOOD", "REJECTED", reason="서류 불일치")
    assert rejected.status_code == 200 and rejected.json["application"]["score"] == 50
    assert [a["child_name"] for a in waiting(client, staff)][:2] == ["second_tier", "first_tier"]
    assert proof_sent(sync, bodies["first_tier"], "BASIC_LIVELIHOOD", key="proofs/p/new") == "applied"
    [again] = [c for c in waiting(client, staff)[1]["criteria"] if c["code"] == "BASIC_LIVELIHOOD"]
    assert (again["status"], again["reason"], again["has_proof"]) == ("PENDING", None, True)


def test_the_staff_page_lists_the_queue_in_rank_order(client, sync, staff, make_user, sign_in):
    bodies = [seed_body(child_name=f"아이{i}", criteria=["SIBLING_ENROLLED"] if i == 2 else []) for i in range(3)]
    for seconds, body in enumerate(bodies):
        request_at(sync, body, seconds)
    verify(client, staff, bodies[2], "SIBLING_ENROLLED")
    user = make_user(groups=("staff",), daycare_id="A00017")
    sign_in(client, user.email)
    page = client.get("/applications").text
    order = [body["child_id"] + "A00017" for body in (bodies[2], bodies[0], bodies[1])]
    assert [page.index(f'id="row-{rid}"') for rid in order] == sorted(page.index(f'id="row-{rid}"') for rid in order)
    assert 'data-rank="1"' in page and "대기 순위" in page


def test_the_staff_list_costs_the_same_queries_however_many_applications(app, client, sync, staff, staff_browser):
    """No query per row (the JSON list once loaded each application's history one by one): a director's
    page of 25 from a queue of hundreds costs what a page of 3 does."""
    import sqlalchemy as sa

    from childsys.models import db

    with app.app_context():
        engine = db.engine
    statements = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    def queries(path, headers=None) -> int:
        statements.clear()
        assert client.get(path, headers=headers or {}).status_code == 200
        return len(statements)

    def costs() -> list[int]:
        return [queries("/request?status=REQUESTED", staff), queries("/request", staff),
                queries("/applications"), queries("/applications?status=ALL&class=2")]

    for i in range(3):
        request_at(sync, seed_body(criteria=["ADOPTED"]), i)
    few = costs()
    for i in range(3, 40):
        request_at(sync, seed_body(criteria=["ADOPTED"]), i)
    assert costs() == few


def set_places(client, submit, places: dict[int, int]):
    data = {f"class_{k}": str(v) for k, v in places.items()}
    response = submit(client, "/classes", data)
    assert response.status_code == 302, response.text


@pytest.fixture
def staff_browser(client, make_user, sign_in):
    user = make_user(groups=("staff",), daycare_id="A00017")
    sign_in(client, user.email)
    return client


def test_a_full_class_is_refused_unless_overridden_and_the_override_is_audited(client, sync, staff, staff_browser,
                                                                               submit, queue, sqs):
    start = f"{T0.year + 1}-03"
    klass = T0.year + 1 - 2023 - 1
    first, second = (seed_body(child_birthday="20230101", desired_start=start) for _ in range(2))
    request_at(sync, first, 0)
    request_at(sync, second, 1)
    set_places(staff_browser, submit, {klass: 1})

    assert client.post("/request/accept", json=first, headers=staff).status_code == 200
    [places] = [c for c in client.get("/api/classes", headers=staff).json["classes"] if c["age_class"] == klass]
    assert (places["places"], places["offered"], places["free"], places["waiting"]) == (1, 1, 0, 1)
    received(sqs, queue)

    refused = client.post("/request/accept", json=second, headers=staff)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "class_full"
    assert f"{klass}세반" in refused.json["error"]["message"] and "override" in refused.json["error"]["message"]
    assert received(sqs, queue) == [] and waiting(client, staff)[0]["child_id"] == second["child_id"]
    detail = f"/applications/{second['child_id']}A00017"
    page = submit(staff_browser, f"{detail}/accept", {"confirmed": "yes"}, page=detail)
    assert page.status_code == 409 and 'id="override_reason"' in page.text, "the page asks for the reason"

    overridden = client.post("/request/accept", json={**second, "override_reason": "쌍둥이 형제 재원"}, headers=staff)
    assert overridden.status_code == 200 and overridden.json["application"]["status"] == "ACCEPTED"
    [event] = received(sqs, queue)
    assert event.type == "OFFER"
    [entry] = client.get("/api/audit?type=OFFER&q=" + second["child_id"], headers=staff).json["entries"]
    assert (entry["override"], entry["note"], entry["actor"]) == (True, "쌍둥이 형제 재원", event.actor)
    assert "정원 초과 승인" in staff_browser.get("/audit?type=OFFER").text


def test_an_expired_offer_frees_the_place_and_staff_are_prompted_to_offer_the_next(client, sync, staff,
                                                                                  staff_browser, submit, queue):
    start = f"{T0.year + 1}-03"
    klass = T0.year + 1 - 2023 - 1
    first, second, other_class = (seed_body(child_birthday=born, desired_start=start, child_name=name)
                                  for born, name in (("20230101", "첫째"), ("20230301", "둘째"), ("20210101", "셋째")))
    for seconds, body in enumerate((first, second, other_class)):
        request_at(sync, body, seconds)
    set_places(staff_browser, submit, {klass: 1})
    assert f'id="prompt-{klass}"' in staff_browser.get("/applications").text, "a free place and children waiting"
    client.post("/request/accept", json=first, headers=staff)
    page = staff_browser.get("/applications").text
    assert f'id="prompt-{klass}"' not in page, "the place is offered"
    assert 'id="prompt-' not in page, "classes without places set prompt nothing"

    assert sync("EXPIRE", first, version=3).json == {"status": "applied"}

    [expired] = [a for a in client.get("/request?status=EXPIRED", headers=staff).json["applications"]]
    assert (expired["request_status"], expired["history"][-1]["actor"]) == (90, "system")
    page = staff_browser.get("/applications").text
    prompt = page[page.index(f'id="prompt-{klass}"'):]
    assert "둘째" in prompt[:prompt.index("</li>")] and "첫째" in page[page.index('class="released"'):]
    response = submit(staff_browser, f"/applications/{second['child_id']}A00017/accept",
                      {"back": "/applications", "confirmed": "yes"}, page="/applications")
    assert response.status_code == 302 and response.location.endswith("/applications"), "back to the list"


def test_a_withdrawal_at_the_same_version_as_an_offer_wins(client, sync, staff):
    body = seed_body()
    sync("REQUEST", body)
    client.post("/request/accept", json=body, headers=staff)  # v2 here
    assert sync("WITHDRAW", {**body, "reason": "햇살 어린이집"}, version=2).json == {"status": "applied"}
    [mine] = client.get("/request?status=WITHDRAWN", headers=staff).json["applications"]
    assert mine["history"][-1]["note"] == "햇살 어린이집"
    assert sync("WITHDRAW", seed_body(), version=2).json == {"status": "applied"}, "even before its request"


def test_proofs_open_only_for_the_daycares_staff_and_admins(client, sync, staff, make_user, bearer, resources):
    import requests

    from shared.platform.uploads import presigned_post
    from tests.file_samples import PDF, POLICY

    body = seed_body(criteria=["DUAL_INCOME"])
    sync("REQUEST", body)
    key = f"proofs/parent-sub/{body['child_id']}A00017/DUAL_INCOME/abc"
    post = presigned_post(resources["UPLOADS_BUCKET"], key, POLICY, "application/pdf", "재직증명서.pdf")
    requests.post(post["url"], data=post["fields"], files={"file": ("x.pdf", PDF, "application/pdf")}, timeout=10)
    assert proof_sent(sync, body, "DUAL_INCOME", key=key, name="재직증명서.pdf") == "applied"
    path = f"/api/applications/{body['child_id']}A00017/criteria/DUAL_INCOME/proof"

    link = client.get(path, headers=staff)
    assert link.status_code == 200 and link.json["expires_in"] <= 300
    assert requests.get(link.json["url"], timeout=10).content == PDF
    other_staff = bearer(make_user(groups=("staff",), daycare_id="B00102").email, app_name="childsys")
    parent = bearer(make_user(groups=("parents",)).email, app_name="childsys")
    admin = bearer(make_user(groups=("admins",)).email, app_name="childsys")
    assert client.get(path, headers=other_staff).status_code == 403
    assert client.get(path, headers=parent).status_code == 403
    assert client.get(path, headers=admin).status_code == 200
    assert client.get(path.replace("DUAL_INCOME", "ADOPTED"), headers=staff).status_code == 404
    assert "proofs/" not in str(client.get("/request", headers=staff).json), "keys never leave the server"


def test_the_audit_log_shows_staff_their_daycare_and_admins_every_daycare(client, sync, staff, make_user, bearer):
    here, there = seed_body(child_name="여기"), seed_body(child_name="저기", nursery_id="B00102")
    sync("REQUEST", here)
    sync("REQUEST", there)
    client.post("/request/reject", json={**here, "reason": "정원 초과"}, headers=staff)
    admin = bearer(make_user(groups=("admins",)).email, app_name="childsys")

    mine = client.get("/api/audit", headers=staff).json
    assert [(e["type"], e["child_name"], e["actor"]) for e in mine["entries"]] == [
        ("REJECT", "여기", mine["entries"][0]["actor"]), ("REQUEST", "여기", "parent@example.com")]
    assert mine["entries"][0]["note"] == "정원 초과" and mine["entries"][0]["actor"].startswith("staff-")
    assert client.get("/api/audit?nursery_id=B00102", headers=staff).status_code == 403
    everyone = client.get("/api/audit", headers=admin).json["entries"]
    assert {e["nursery_id"] for e in everyone} >= {"A00017", "B00102"}
    only_there = client.get("/api/audit?nursery_id=B00102&type=REQUEST", headers=admin).json["entries"]
    assert [e["child_name"] for e in only_there] == ["저기"]
    assert client.get("/api/audit?type=NOPE", headers=admin).status_code == 400
    assert client.get("/api/audit?q=%25", headers=admin).json["entries"] == [], "wildcards are literal"


@pytest.mark.mysql
def test_two_offers_cannot_both_take_the_last_place_on_mysql(make_app, mysql_database):
    """A request that read the application first (an older REPEATABLE READ snapshot) still counts the
    offer another staff member committed meanwhile: the check before an offer uses locking reads."""
    from childsys import capacity, services
    from childsys.models import Application, db
    from shared.platform.auth import Identity

    url = mysql_database("test_childsys_places")
    first_app, second_app = make_app("childsys", {"SQLALCHEMY_DATABASE_URI": url}), make_app(
        "childsys", {"SQLALCHEMY_DATABASE_URI": url}, migrate=False)
    staff = Identity("staff-sub", "staff@example.com", "", ("staff",), "A00017", 0)
    start = f"{T0.year + 1}-03"
    bodies = [seed_body(child_birthday="20230101", desired_start=start) for _ in range(2)]
    with first_app.app_context():
        for seconds, body in enumerate(bodies):
            services.apply_sync(Envelope(type="REQUEST", application=body, occurred_at=T0 + timedelta(seconds=seconds)))
        klass = db.session.scalars(db.select(Application.age_class)).first()
        capacity.set_places(staff, "A00017", {klass: 1})

    with first_app.app_context():
        services.get_application(staff, bodies[1]["child_id"] + "A00017")  # this request's snapshot starts here
        with second_app.app_context():  # another staff member offers the last place meanwhile
            services.decide(staff, bodies[0], EventType.OFFER)
        with pytest.raises(capacity.ClassFull):
            services.decide(staff, bodies[1], EventType.OFFER)
    with first_app.app_context():
        assert db.session.scalars(db.select(Application.status).order_by(Application.id)).all() == [2, 1]
