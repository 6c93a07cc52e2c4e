"""A parent applies in reqsys, staff accept in childsys, and the parent sees it accepted (system Chromium)."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.test_waitlist_e2e import make_system, pump, system  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


def sign_in(page, base, email, password):
    page.goto(f"{base}/auth/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()


def submit(page):
    with page.expect_navigation():
        page.locator("main form button[type=submit]").last.click()


def test_parent_applies_staff_accept_parent_sees_it(system, make_user, chromium):  # noqa: F811
    reqsys_url, childsys_url = os.environ["REQSYS_URL"], os.environ["CHILDSYS_URL"]  # set by `system`
    parent = make_user(groups=("parents",), name="김부모")
    staff = make_user(groups=("staff",), daycare_id="A00017", name="이교사")
    child_id = "2023" + uuid.uuid4().hex[:11].translate(str.maketrans("abcdef", "123456"))

    parent_page = chromium.new_context(locale="ko-KR").new_page()
    sign_in(parent_page, reqsys_url, parent.email, parent.password)
    parent_page.goto(f"{reqsys_url}/children")
    parent_page.locator("#child_id").fill(child_id)
    parent_page.locator("#name").fill("김새싹")
    parent_page.locator("#birthday").fill("2023-03-01")
    submit(parent_page)
    parent_page.goto(f"{reqsys_url}/nurseries/A00017/apply")
    parent_page.locator("#child").select_option(label="김새싹 (2023-03-01)")
    parent_page.locator("#parent_name").fill("김부모")
    parent_page.locator("#parent_tel").fill("010-1234-5678")
    parent_page.locator("#parent_address").fill("서울특별시 마포구 월드컵북로 21")
    parent_page.locator("#parent_postcode").fill("03991")
    submit(parent_page)
    request_id = child_id + "A00017"
    badge = parent_page.locator(f"#application-{request_id} .badge")
    assert badge.get_attribute("data-status") == "REQUESTED"

    staff_page = chromium.new_context(locale="ko-KR").new_page()
    sign_in(staff_page, childsys_url, staff.email, staff.password)
    assert pump(system, lambda: staff_page.goto(f"{childsys_url}/applications") and "김새싹" in staff_page.content())
    with staff_page.expect_navigation():
        staff_page.get_by_role("link", name="김새싹").click()
    with staff_page.expect_navigation():
        staff_page.get_by_role("button", name="승인").click()
    assert "승인했습니다" in staff_page.content()

    def accepted():
        parent_page.reload()
        return parent_page.locator(f"#application-{request_id} .badge").get_attribute("data-status") == "ACCEPTED"

    assert pump(system, accepted)
    assert "승인" in parent_page.content()
