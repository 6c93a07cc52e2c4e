"""The whole waitlist through the emulator and the local runner: reqsys -> pipeline -> childsys -> pipeline -> reqsys.

Both apps are served over HTTP (the forward handler calls their signed sync endpoints), the
pipeline handlers run from zappa_settings.json's real wiring, and emails land in the emulator's SES.
"""

from __future__ import annotations

import uuid

import pytest

from shared.pipeline.email import SUBJECTS
from shared.platform.events import Envelope
from tests.waitlist_helpers import seed_body
from tests.waitlist_system import (
    apply_and_decide,
    in_childsys,
    in_reqsys,
    pump,
    subjects_to,
)


@pytest.mark.parametrize(("decision", "status", "code"), [("accept", "ACCEPTED", 2), ("reject", "REJECTED", 88)])
def test_apply_then_staff_decide_and_both_sides_agree(system, decision, status, code):
    apply_and_decide(system, decision, status, code)




def test_cancel_after_accept_reaches_childsys_and_unenrols(system):
    email = f"parent-{uuid.uuid4().hex[:8]}@example.com"
    body = seed_body(parent_email=email)
    request_id = body["child_id"] + body["nursery_id"]
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
    request_id = body["child_id"] + body["nursery_id"]
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
    email = f"parent-{uuid.uuid4().hex[:8]}@example.com"
    first, second = (seed_body(parent_email=email, desired_start=start, child_name=name) for name in ("첫째", "둘째"))
    for body in (first, second):
        assert system.reqsys.post("/enterwait/request", json=body, headers=system.parent).status_code == 201
    ids = [body["child_id"] + "A00017" for body in (first, second)]
    assert pump(system, lambda: all(in_childsys(system, rid) for rid in ids))
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

    from tests.file_samples import PDF

    email = f"parent-{uuid.uuid4().hex[:8]}@example.com"
    plain, declared = seed_body(parent_email=email), seed_body(parent_email=email, criteria=["DUAL_INCOME"])
    for body in (plain, declared):
        assert system.reqsys.post("/enterwait/request", json=body, headers=system.parent).status_code == 201
    rid = declared["child_id"] + "A00017"
    assert in_reqsys(system, rid)["rank"] == 2

    ids = {"child_id": declared["child_id"], "nursery_id": "A00017", "criterion": "DUAL_INCOME"}
    upload = system.reqsys.post("/enterwait/proofs/upload", json={
        **ids, "content_type": "application/pdf", "filename": "재직증명서.pdf"}, headers=system.parent).json["upload"]
    requests.post(upload["url"], data=upload["fields"], timeout=10,
                  files={"file": ("재직증명서.pdf", PDF, "application/pdf")}).raise_for_status()
    assert system.reqsys.post("/enterwait/proofs", json={**ids, "key": upload["key"]},
                              headers=system.parent).status_code == 200

    def proof_arrived():
        application = in_childsys(system, rid)
        return application and application["criteria"][0]["has_proof"]

    assert pump(system, proof_arrived)
    verified = system.childsys.post("/request/verify", json={**ids, "status": "VERIFIED"}, headers=system.staff)
    assert verified.status_code == 200 and verified.json["application"]["rank"] == 1

    assert pump(system, lambda: in_reqsys(system, rid)["score"] == 200)
    assert in_reqsys(system, rid)["rank"] == 1 and in_reqsys(system, plain["child_id"] + "A00017")["rank"] == 2
    assert pump(system, lambda: any(s.endswith(SUBJECTS["VERIFY"][1]) for s in subjects_to(email)))
