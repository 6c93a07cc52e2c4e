"""The page shell in a real browser at phone and desktop size: axe-core finds nothing serious, nothing is wider
than the screen, and a refused form moves focus to its error summary."""

from __future__ import annotations

import pytest

from tests.browser_helpers import SIZES, assert_accessible_and_fits, new_page, sign_in_as

pytestmark = pytest.mark.browser

SIGNED_OUT = ["/auth/login", "/auth/signup", "/auth/confirm", "/auth/forgot", "/auth/reset", "/no-such-page"]


@pytest.fixture
def reqsys_server(make_app, live_server):
    return live_server(make_app("reqsys"))


@pytest.mark.parametrize("size", SIZES)
def test_shell_pages_pass_axe_and_fit_the_screen(size, reqsys_server, chromium, make_user):
    base = reqsys_server
    page = new_page(chromium, SIZES[size])
    try:
        for path in SIGNED_OUT:
            page.goto(f"{base}{path}")
            assert_accessible_and_fits(page, f"{path} at {size}")
        # a refused form, with its error summary and field messages
        page.goto(f"{base}/auth/signup")
        page.locator("#email").fill("not-an-email")
        page.locator("#phone").fill("123")
        with page.expect_navigation():
            page.locator("main form button[type=submit]").click()
        assert page.locator("[data-error-summary] li").count() >= 3
        assert_accessible_and_fits(page, f"refused sign-up at {size}")
        # in English too
        page.goto(f"{base}/lang/en")
        page.goto(f"{base}/auth/login")
        assert_accessible_and_fits(page, f"English sign-in at {size}")
        page.goto(f"{base}/lang/ko")

        parent = make_user(groups=["parents"])
        sign_in_as(page, base, parent)
        for path in ("/auth/profile", "/admin/init"):  # the second answers 403 to a parent: the error page
            page.goto(f"{base}{path}")
            assert_accessible_and_fits(page, f"{path} as a parent at {size}")
        page.context.clear_cookies()

        admin = make_user(groups=["admins"])
        sign_in_as(page, base, admin)
        page.goto(f"{base}/admin/init")
        assert page.locator("h1").inner_text() == "데이터베이스"
        assert_accessible_and_fits(page, f"/admin/init as an admin at {size}")
    finally:
        page.context.close()


def test_a_refused_form_focuses_its_error_summary_and_links_to_the_fields(reqsys_server, chromium):
    page = new_page(chromium, SIZES["phone"])
    try:
        page.goto(f"{reqsys_server}/auth/login")
        with page.expect_navigation():
            page.locator("main form button[type=submit]").click()
        summary = page.locator("[data-error-summary]")
        assert summary.get_attribute("role") == "alert"
        assert "입력 내용을 확인해 주세요" in summary.inner_text()
        page.wait_for_function("document.activeElement && document.activeElement.hasAttribute('data-error-summary')")
        summary.get_by_role("link").nth(1).click()
        assert page.evaluate("document.activeElement.id") == "password"
        # the message sits beside its field and the field says so
        assert page.locator("#password").get_attribute("aria-invalid") == "true"
        assert page.locator("#password-error").is_visible()
    finally:
        page.context.close()


def test_the_phone_header_shows_the_menu_without_overflow(reqsys_server, chromium, make_user):
    page = new_page(chromium, SIZES["phone"])
    try:
        sign_in_as(page, reqsys_server, make_user(groups=["parents"]))
        nav = page.get_by_role("navigation", name="주 메뉴")
        for label in ("내 아이", "내 신청 현황"):
            assert nav.get_by_role("link", name=label).is_visible()
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip", "the skip link comes first"
    finally:
        page.context.close()
