"""The whole waitlist as one system for end-to-end tests (no tests here): both apps served over HTTP,
the pipeline run by the local runner from zappa_settings.json's wiring, emails in the emulator's SES."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import pytest

from shared.pipeline.email import SUBJECTS
from shared.pipeline.mailbox import sent_emails
from shared.tools.runner import Runner, load_event_sources
from tests.pipeline_helpers import pipeline_settings
from tests.waitlist_helpers import add_nurseries, seed_body

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
        return SimpleNamespace(
            reqsys=reqsys_app.test_client(), childsys=childsys_app.test_client(), runner=runner,
            parent=bearer(parent.email), staff=bearer(staff.email, app_name="childsys"),
            admin=bearer(admin.email, app_name="childsys"))

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


def subjects_to(address):
    return [mail["subject"] for mail in sent_emails(to=address)]


def apply_and_decide(system, decision, status, code):
    email = f"parent-{uuid.uuid4().hex[:8]}@example.com"
    body = seed_body(parent_email=email)
    request_id = body["child_id"] + body["nursery_id"]
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
