"""reqsys pages: a parent registers a child, applies, follows and cancels the application (real CSRF)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from html import unescape
from pathlib import Path

import pytest

import tests.waitlist_helpers as waitlist
from tests.waitlist_helpers import CHILD, add_nurseries, pending

TRANSLATIONS = Path(__file__).resolve().parents[2] / "shared" / "platform" / "translations"
KOREAN_STATUS = {"REQUESTED": "대기 중", "ACCEPTED": "입소 제안", "REJECTED": "반려됨", "CANCELLED": "취소됨"}


def badge(html: str, request_id: str) -> tuple[str, str]:
    """(data-status, visible label) of an application's status badge."""
    block = re.search(rf'id="application-{re.escape(request_id)}".*?</article>', html, re.S)
    assert block, f"application {request_id} is not on the page"
    found = re.search(r'data-status="([A-Z]+)">([^<]*)<', block.group(0))
    return found.group(1), unescape(found.group(2)).strip()


def option_value(html: str, label_part: str) -> str:
    for value, label in re.findall(r'<option[^>]*value="(\d+)"[^>]*>([^<]*)</option>', html):
        if label_part in unescape(label):
            return value
    raise AssertionError(f"no option with {label_part!r}")


def field_error(html: str, field: str) -> str:
    found = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', html)
    return unescape(found.group(1)) if found else ""


@pytest.fixture
def app(make_app):
    app = make_app("reqsys")
    add_nurseries(app)
    return app


@pytest.fixture
def parent_browser(app, make_user, sign_in):
    user = make_user(groups=["parents"], name="김부모")
    browser = app.test_client()
    sign_in(browser, user.email)
    return browser


PARENT = {"parent_name": "김부모", "parent_tel": "010-1234-5678", "parent_email": "parent@example.com",
          "parent_address": "서울특별시 마포구 월드컵북로 21", "parent_postcode": "03991"}


def test_pages_need_a_signed_in_parent(app, make_user, sign_in):
    browser = app.test_client()
    for path in ("/children", "/applications", "/nurseries/A00017/apply"):
        response = browser.get(path)
        assert response.status_code == 302 and "/auth/login" in response.location
    staff = make_user(groups=["staff"], daycare_id="A00017")
    sign_in(browser, staff.email)
    assert browser.get("/applications").status_code == 403


def test_parent_registers_applies_follows_and_cancels(app, parent_browser, submit, queue, sqs):
    browser = parent_browser

    # register a child; a bad birthday is shown next to its field and nothing is saved
    future = (date.today() + timedelta(days=30)).isoformat()
    response = submit(browser, "/children", {**CHILD, "birthday": future})
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "birthday")
    assert 'id="child-' not in response.get_data(as_text=True)

    response = submit(browser, "/children", CHILD, follow_redirects=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="child-202301013333333"' in html and "김아기" in html
    response = submit(browser, "/children", CHILD)
    assert response.status_code == 400, "the same child twice"
    assert field_error(response.get_data(as_text=True), "child_id")

    # the daycare list has an apply button; the form offers my child and knows who I am
    assert 'href="/nurseries/A00017/apply"' in browser.get("/nurseries").get_data(as_text=True)
    form = browser.get("/nurseries/A00017/apply").get_data(as_text=True)
    assert 'value="김부모"' in form, "prefilled from the account"
    child = option_value(form, "김아기")

    bad = submit(browser, "/nurseries/A00017/apply", {"child": child, **PARENT, "parent_tel": "12345"})
    assert bad.status_code == 400
    assert field_error(bad.get_data(as_text=True), "parent_tel")
    assert waitlist.count(app, "applications") == 0

    response = submit(browser, "/nurseries/A00017/apply", {"child": child, **PARENT})
    assert response.status_code == 302 and response.location.endswith("/applications#application-202301013333333A00017")
    page = browser.get("/applications").get_data(as_text=True)
    request_id = "202301013333333A00017"
    assert badge(page, request_id)[0] == "REQUESTED"
    assert "햇살 어린이집" in page
    assert re.search(r'<time datetime="[^"]+Z">\d{4}-\d\d-\d\d \d\d:\d\d</time>', page), "history with times"
    assert pending(app) == [], "the event went out"
    assert [waitlist.Envelope.from_json(m["Body"]).type for m in waitlist.receive_all(sqs, queue)] == ["REQUEST"]

    # applying again while it is open: a flash message, no second application
    response = submit(browser, "/nurseries/A00017/apply", {"child": child, **PARENT}, follow_redirects=True)
    assert response.status_code == 200
    assert 'class="flash error"' in response.get_data(as_text=True)
    assert waitlist.count(app, "applications") == 1

    # cancelling needs the CSRF token, then works once
    assert browser.post(f"/applications/{request_id}/cancel").status_code == 400
    assert badge(browser.get("/applications").get_data(as_text=True), request_id)[0] == "REQUESTED"
    response = submit(browser, f"/applications/{request_id}/cancel", {}, page="/applications",
                      follow_redirects=True)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert badge(page, request_id)[0] == "CANCELLED"
    assert 'class="flash success"' in page
    assert "/cancel" not in page, "no cancel button on a cancelled application"
    assert 'href="/nurseries/A00017/apply"' in page, "but one to apply again"
    types = [waitlist.Envelope.from_json(m["Body"]).type for m in waitlist.receive_all(sqs, queue)]
    assert types == ["CANCEL"]


def test_another_parent_cannot_cancel_from_the_page(app, parent_browser, make_user, sign_in, submit, queue):
    child = CHILD["child_id"]
    submit(parent_browser, "/children", CHILD)
    form = parent_browser.get("/nurseries/A00018/apply").get_data(as_text=True)
    submit(parent_browser, "/nurseries/A00018/apply", {"child": option_value(form, "김아기"), **PARENT})

    other = app.test_client()
    sign_in(other, make_user(groups=["parents"]).email)
    assert f"{child}A00018" not in other.get("/applications").get_data(as_text=True)
    response = submit(other, f"/applications/{child}A00018/cancel", {}, page="/applications")
    assert response.status_code == 404
    assert badge(parent_browser.get("/applications").get_data(as_text=True), f"{child}A00018")[0] == "REQUESTED"


def korean_catalogue_has(msgid: str) -> bool:
    from babel.support import Translations

    return Translations.load(str(TRANSLATIONS), ["ko"]).gettext(msgid) != msgid


def test_status_badges_are_korean(app, parent_browser, submit, queue):
    submit(parent_browser, "/children", CHILD)
    form = parent_browser.get("/nurseries/A00017/apply").get_data(as_text=True)
    submit(parent_browser, "/nurseries/A00017/apply", {"child": option_value(form, "김아기"), **PARENT})
    status, label = badge(parent_browser.get("/applications").get_data(as_text=True), "202301013333333A00017")
    assert status == "REQUESTED"
    if not korean_catalogue_has("Waiting for a place"):
        pytest.xfail("reqsys's Korean strings are not merged into shared/platform/translations yet")
    assert label == KOREAN_STATUS["REQUESTED"]
