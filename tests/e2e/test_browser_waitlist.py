"""The waitlist in the system Chromium: a parent applies at two daycares, staff offer a place in
childsys, the parent confirms it, and the other application is withdrawn on both sides."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.file_samples import PDF
from tests.waitlist_system import in_childsys, pump

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


def status_of(page, request_id) -> str | None:
    return page.locator(f"#application-{request_id} .badge").get_attribute("data-status")


def apply(page, base, nursery_id, child_label, criteria=()):
    page.goto(f"{base}/nurseries/{nursery_id}/apply")
    page.locator("#child").select_option(label=child_label)
    assert page.locator("#desired_start").input_value(), "the start month is filled in (next month)"
    for code in criteria:
        page.locator(f"#criteria-{code}").check()
    page.locator("#parent_name").fill("김부모")
    page.locator("#parent_tel").fill("010-1234-5678")
    page.locator("#parent_address").fill("서울특별시 마포구 월드컵북로 21")
    page.locator("#parent_postcode").fill("03991")
    submit(page)


def test_offer_confirm_and_the_other_application_is_withdrawn(system, make_user, chromium):  # noqa: F811
    reqsys_url, childsys_url = os.environ["REQSYS_URL"], os.environ["CHILDSYS_URL"]  # set by `system`
    parent = make_user(groups=("parents",), name="김부모")
    staff = make_user(groups=("staff",), daycare_id="A00017", name="이교사")
    child_id = "2023" + uuid.uuid4().hex[:11].translate(str.maketrans("abcdef", "123456"))
    offered, other = child_id + "A00017", child_id + "A00018"

    parent_page = chromium.new_context(locale="ko-KR").new_page()
    parent_page.on("dialog", lambda dialog: dialog.accept())  # "confirm the place?"
    sign_in(parent_page, reqsys_url, parent.email, parent.password)
    parent_page.goto(f"{reqsys_url}/children")
    parent_page.locator("#child_id").fill(child_id)
    parent_page.locator("#name").fill("김새싹")
    parent_page.locator("#birthday").fill("2023-03-01")
    submit(parent_page)

    apply(parent_page, reqsys_url, "A00017", "김새싹 (2023-03-01)", criteria=["DUAL_INCOME"])
    assert status_of(parent_page, offered) == "REQUESTED"
    assert "대기 순위 1위" in parent_page.locator(f"#application-{offered} .queue").inner_text()
    criterion = parent_page.locator(f"#criterion-{offered}-DUAL_INCOME")
    assert criterion.get_attribute("data-status") == "PENDING"
    # the proof goes from the browser straight to S3 (the emulator), then the server checks and records it
    criterion.locator("input[type=file]").set_input_files(
        files=[{"name": "재직증명서.pdf", "mimeType": "application/pdf", "buffer": PDF}])
    with parent_page.expect_navigation():
        criterion.get_by_role("button", name="증빙 서류 올리기").click()
    assert "증빙 서류를 올렸습니다" in parent_page.content()
    assert "재직증명서.pdf" in parent_page.locator(f"#criterion-{offered}-DUAL_INCOME").inner_text()
    parent_page.goto(f"{reqsys_url}/nurseries/A00018/apply")
    assert "3곳 중 1곳 신청 중" in parent_page.locator("#limits").inner_text(), "the form states the limit"
    apply(parent_page, reqsys_url, "A00018", "김새싹 (2023-03-01)")
    assert status_of(parent_page, other) == "REQUESTED"

    staff_page = chromium.new_context(locale="ko-KR").new_page()
    sign_in(staff_page, childsys_url, staff.email, staff.password)
    assert pump(system, lambda: staff_page.goto(f"{childsys_url}/applications") and "김새싹" in staff_page.content())
    with staff_page.expect_navigation():
        staff_page.get_by_role("link", name="김새싹").click()
    assert pump(system, lambda: staff_page.reload() or "재직증명서.pdf" in staff_page.content()), "the proof arrived"
    href = staff_page.get_by_role("link", name="증빙 서류 열기: 재직증명서.pdf").get_attribute("href")
    opened = staff_page.request.get(childsys_url + href, max_redirects=0)  # with the staff member's session
    link = opened.headers["location"]
    assert opened.status == 302 and link.startswith(os.environ["AWS_ENDPOINT_URL"]), "a short-lived link to S3"
    assert staff_page.request.get(link).body() == PDF
    with staff_page.expect_navigation():
        staff_page.locator("#criterion-DUAL_INCOME").get_by_role("button", name="확인").click()
    assert staff_page.locator("#criterion-DUAL_INCOME").get_attribute("data-status") == "VERIFIED"
    with staff_page.expect_navigation():
        staff_page.get_by_role("button", name="승인 (입소 제안)").click()
    assert "입소를 제안했습니다" in staff_page.content()

    def offer_arrived():
        parent_page.goto(f"{reqsys_url}/applications")
        return status_of(parent_page, offered) == "ACCEPTED"

    assert pump(system, offer_arrived)
    offer = parent_page.locator(f"#offer-{offered}")
    assert "입소를 제안했습니다" in offer.inner_text() and "까지 답해 주세요" in offer.inner_text()
    assert "다른 신청 1건은 자동으로 철회" in offer.inner_text()
    with parent_page.expect_navigation():
        offer.get_by_role("button", name="입소 확정").click()

    assert status_of(parent_page, offered) == "ENROLLED"
    assert status_of(parent_page, other) == "WITHDRAWN"
    assert "자동 철회" in parent_page.locator(f"#application-{other}").inner_text()

    # childsys learns both: the child is enrolled at A00017, and the other daycare's application is withdrawn
    assert pump(system, lambda: staff_page.goto(f"{childsys_url}/enrolled") and "김새싹" in staff_page.content())
    assert pump(system, lambda: (in_childsys(system, offered) or {}).get("status") == "ENROLLED")
    assert pump(system, lambda: (in_childsys(system, other, "A00018") or {}).get("status") == "WITHDRAWN")
