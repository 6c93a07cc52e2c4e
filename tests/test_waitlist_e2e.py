"""The whole waitlist through the emulator and the local runner: reqsys -> pipeline -> childsys -> pipeline -> reqsys.

Both apps are served over HTTP (the forward handler calls their signed sync endpoints), the
pipeline handlers run from zappa_settings.json's real wiring, and emails land in the emulator's SES.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from shared.pipeline.email import SUBJECTS
from shared.pipeline.mailbox import sent_emails
from shared.platform.events import Envelope
from shared.tools.runner import Runner, load_event_sources
from shared.waitlist.body import request_id_for
from tests.conftest import claims_of
from tests.test_pipeline_flow import pipeline_settings
from tests.test_reqsys_waitlist import add_nurseries, seed_body

PASSES = 60
EMAILED = {"accept": "OFFER", "reject": "REJECT"}  # staff acceptance offers a place


@pytest.fixture
def make_system(make_app, live_server, make_user, bearer, resources, tmp_path, monkeypatch):
    """make_system(database_urls={}) -> both apps served over HTTP, the runner, a parent's and a staff token."""

    def make(database_urls: dict[str, str] | None = None):
        urls = database_urls or {}
        reqsys_app, childsys_app = (
            make_app(name, {"SQLALCHEMY_DATABASE_URI": urls[name]} if name in urls else None)
            for name in ("reqsys", "childsys"))
        add_nurseries(reqsys_app)
        monkeypatch.setenv("REQSYS_URL", live_server(reqsys_app))
        monkeypatch.setenv("CHILDSYS_URL", live_server(childsys_app))

        path = pipeline_settings(resources, tmp_path)
        settings = json.loads(path.read_text())
        for entry in settings["pipeline_test"]["events"]:  # only this test's events, not older ones in the table
            if "starting_position" in entry["event_source"]:
                entry["event_source"]["starting_position"] = "LATEST"
        path.write_text(json.dumps(settings))
        runner = Runner(load_event_sources(path, "test"), failed_visibility=0)
        runner.run_once()

        parent = make_user(groups=("parents",))
        staff = make_user(groups=("staff",), daycare_id="A00017")
        admin = make_user(groups=("admins",))
        parent_headers = bearer(parent.email)
        return SimpleNamespace(
            reqsys=reqsys_app.test_client(), childsys=childsys_app.test_client(), runner=runner,
            parent=parent_headers, staff=bearer(staff.email, app_name="childsys"),
            admin=bearer(admin.email, app_name="childsys"), parent_email=parent.email,
            parent_sub=claims_of(parent_headers["Authorization"].split()[1])["sub"])

    return make


@pytest.fixture
def system(make_system):
    return make_system()


def pump(system, done) -> bool:
    """Run the event sources until `done()` or the passes run out."""
    for _ in range(PASSES):
        if done():
            return True
        system.runner.run_once()
    return done()


def in_childsys(system, request_id, nursery_id="A00017"):
    """The application as childsys lists it (staff of A00017; an admin for another daycare), or None."""
    headers = system.staff if nursery_id == "A00017" else system.admin
    listed = system.childsys.get(f"/request?nursery_id={nursery_id}", headers=headers).json["applications"]
    return next((a for a in listed if a["request_id"] == request_id), None)


def in_reqsys(system, request_id):
    listed = system.reqsys.get("/enterwait", headers=system.parent).json["applications"]
    return next(a for a in listed if a["request_id"] == request_id)


def rid(system, body, nursery_id=None) -> str:
    """The id of the system's parent's application in `body` (the account's tag after the seed's ids)."""
    return request_id_for(system.parent_sub, body["child_id"], nursery_id or body["nursery_id"])


def subjects_to(address):
    return [mail["subject"] for mail in sent_emails(to=address)]


@pytest.mark.parametrize(("decision", "status", "code"), [("accept", "ACCEPTED", 2), ("reject", "REJECTED", 88)])
def test_apply_then_staff_decide_and_both_sides_agree(system, decision, status, code):
    apply_and_decide(system, decision, status, code)


def apply_and_decide(system, decision, status, code):
    email = system.parent_email  # the account's own (verified) address: the notices go there
    body = seed_body(parent_email=email)
    request_id = rid(system, body)
    assert system.reqsys.post("/enterwait/request", json=body, headers=system.parent).status_code == 201

    assert pump(system, lambda: in_childsys(system, request_id) is not None)
    assert in_childsys(system, request_id)["status"] == "REQUESTED"

    decided = system.childsys.post(f"/request/{decision}", json={**body, "reason": "정원 초과"}, headers=system.staff)
    assert decided.status_code == 200

    assert pump(system, lambda: in_reqsys(system, request_id)["status"] == status)
    assert in_reqsys(system, request_id)["request_status"] == code
    assert pump(system, lambda: len(subjects_to(email)) >= 2)
    english = sorted(subject.rsplit(" / ", 1)[-1] for subject in subjects_to(email))
    assert english == sorted([SUBJECTS["REQUEST"][1], SUBJECTS[EMAILED[decision]][1]])


def test_cancel_after_accept_reaches_childsys_and_unenrols(system):
    email = system.parent_email  # the account's own (verified) address: the notices go there
    body = seed_body(parent_email=email)
    request_id = rid(system, body)
    system.reqsys.post("/enterwait/request", json=body, headers=system.parent)
    assert pump(system, lambda: in_childsys(system, request_id) is not None)
    system.childsys.post("/request/accept", json=body, headers=system.staff)
    assert pump(system, lambda: in_reqsys(system, request_id)["status"] == "ACCEPTED")

    assert system.reqsys.post("/enterwait/cancel", json=body, headers=system.parent).status_code == 200
    assert pump(system, lambda: in_childsys(system, request_id)["status"] == "CANCELLED")
    assert pump(system, lambda: len(subjects_to(email)) >= 3)
    assert any(s.endswith(SUBJECTS["CANCEL"][1]) for s in subjects_to(email))

    from childsys.models import Enrollment, db

    with system.childsys.application.app_context():
        assert db.session.query(Enrollment).filter_by(request_id=request_id).count() == 0


def test_an_envelope_is_what_travels(system):
    """The same event id reaches childsys as left reqsys: one envelope end to end."""
    body = seed_body()
    request_id = rid(system, body)
    system.reqsys.post("/enterwait/request", json=body, headers=system.parent)
    assert pump(system, lambda: in_childsys(system, request_id) is not None)
    from reqsys.models import OutboxEvent, db

    with system.reqsys.application.app_context():
        sent = Envelope.from_json(db.session.query(OutboxEvent).one().body)
    assert sent.request_id == request_id
    assert in_childsys(system, request_id)["history"][0]["version"] == sent.version


def test_at_expiry_the_offer_moves_on_and_staff_are_prompted_to_offer_the_next(system, make_user, sign_in, submit):
    """reqsys's schedule expires the unanswered offer; childsys frees the place and names the next child."""
    from datetime import UTC, datetime, timedelta

    from reqsys.offers import run_deadlines

    start = f"{datetime.now(UTC).year + 1}-03"
    email = system.parent_email  # the account's own (verified) address: the notices go there
    first, second = (seed_body(parent_email=email, desired_start=start, child_name=name) for name in ("첫째", "둘째"))
    for body in (first, second):
        assert system.reqsys.post("/enterwait/request", json=body, headers=system.parent).status_code == 201
    ids = [rid(system, body, "A00017") for body in (first, second)]
    assert pump(system, lambda: all(in_childsys(system, one) for one in ids))
    klass = in_childsys(system, ids[0])["age_class"]
    staff = make_user(groups=("staff",), daycare_id="A00017")
    page = system.childsys.application.test_client()
    sign_in(page, staff.email)
    assert submit(page, "/classes", {f"class_{klass}": "1"}).status_code == 302  # one place in the class
    assert system.childsys.post("/request/accept", json=first, headers=system.staff).status_code == 200
    assert pump(system, lambda: in_reqsys(system, ids[0])["status"] == "ACCEPTED")
    deadline = datetime.fromisoformat(in_reqsys(system, ids[0])["offer_expires_at"])
    assert f'id="prompt-{klass}"' not in page.get("/applications").text, "the class's one place is offered"

    with system.reqsys.application.app_context():
        assert run_deadlines(deadline + timedelta(seconds=1))["expired"] == 1

    assert in_reqsys(system, ids[0])["status"] == "EXPIRED"
    assert pump(system, lambda: in_childsys(system, ids[0])["status"] == "EXPIRED")
    listing = page.get("/applications").text
    prompt = listing[listing.index(f'id="prompt-{klass}"'):]
    assert "둘째" in prompt[:prompt.index("</li>")], "the next in rank is named"
    assert pump(system, lambda: any(s.endswith(SUBJECTS["EXPIRE"][1]) for s in subjects_to(email)))
    assert any(s.endswith(SUBJECTS["OFFER"][1]) for s in subjects_to(email))


def test_proofs_and_verifications_travel_and_the_rank_follows(system, resources):
    """A proof uploaded in reqsys reaches childsys; the staff's verification reaches reqsys, and the rank moves."""
    import requests

    from tests.test_reqsys_portal import PDF

    email = system.parent_email  # the account's own (verified) address: the notices go there
    plain, declared = seed_body(parent_email=email), seed_body(parent_email=email, criteria=["DUAL_INCOME"])
    for body in (plain, declared):
        assert system.reqsys.post("/enterwait/request", json=body, headers=system.parent).status_code == 201
    declared_id = rid(system, declared, "A00017")
    assert in_reqsys(system, declared_id)["rank"] == 2

    ids = {"child_id": declared["child_id"], "nursery_id": "A00017", "criterion": "DUAL_INCOME"}
    upload = system.reqsys.post("/enterwait/proofs/upload", json={
        **ids, "content_type": "application/pdf", "filename": "재직증명서.pdf"}, headers=system.parent).json["upload"]
    requests.post(upload["url"], data=upload["fields"], timeout=10,
                  files={"file": ("재직증명서.pdf", PDF, "application/pdf")}).raise_for_status()
    assert system.reqsys.post("/enterwait/proofs", json={**ids, "key": upload["key"]},
                              headers=system.parent).status_code == 200

    def proof_arrived():
        application = in_childsys(system, declared_id)
        return application and application["criteria"][0]["has_proof"]

    assert pump(system, proof_arrived)
    verified = system.childsys.post("/request/verify", json={**ids, "status": "VERIFIED"}, headers=system.staff)
    assert verified.status_code == 200 and verified.json["application"]["rank"] == 1

    assert pump(system, lambda: in_reqsys(system, declared_id)["score"] == 200)
    assert in_reqsys(system, declared_id)["rank"] == 1
    assert in_reqsys(system, rid(system, plain, "A00017"))["rank"] == 2
    assert pump(system, lambda: any(s.endswith(SUBJECTS["VERIFY"][1]) for s in subjects_to(email)))
