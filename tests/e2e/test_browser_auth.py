"""A parent signs up, confirms, signs in and out in a real browser (system Chromium)."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser

PASSWORD = "Test-1234!pw"


def submit_main_form(page) -> None:
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()


def test_sign_up_confirm_sign_in_and_out_in_the_browser(make_app, live_server, browser_page, cognito, resources):
    base = live_server(make_app("reqsys"))
    page = browser_page
    email = f"browser-{os.urandom(4).hex()}@example.com"

    page.goto(f"{base}/")
    with page.expect_navigation():
        page.get_by_role("link", name="회원가입").first.click()
    assert urlsplit(page.url).path == "/auth/signup"
    page.get_by_label("이메일", exact=True).fill(email)
    page.get_by_label("이름", exact=True).fill("김하늘")
    page.locator("#phone").fill("010-1234-5678")
    page.locator("#password").fill(PASSWORD)
    page.locator("#password_again").fill(PASSWORD)
    submit_main_form(page)

    assert urlsplit(page.url).path == "/auth/confirm"
    assert page.locator("#email").input_value() == email, "the address is carried over"
    page.locator("#code").fill("123456")
    submit_main_form(page)

    assert urlsplit(page.url).path == "/auth/login"
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    submit_main_form(page)

    assert urlsplit(page.url).path == "/"
    header = page.locator("header.topbar")
    assert "김하늘" in header.inner_text(), "the header names the signed-in user"
    page.goto(f"{base}/auth/profile")
    assert urlsplit(page.url).path == "/auth/profile"
    assert page.locator("#phone").input_value() == "010-1234-5678"

    with page.expect_navigation():
        header.get_by_role("button", name="로그아웃").click()
    assert urlsplit(page.url).path == "/auth/login"
    assert "김하늘" not in page.locator("header.topbar").inner_text()

    page.goto(f"{base}/auth/profile")
    assert urlsplit(page.url).path == "/auth/login", "the protected page sends the signed-out user to sign in"
    assert re.search(r"next=(/|%2F)auth(/|%2F)profile", page.url)

    cognito.admin_delete_user(UserPoolId=resources["COGNITO_USERPOOL_ID"], Username=email)


def test_wrong_password_in_the_browser_shows_the_message(make_app, live_server, browser_page, make_user):
    user = make_user(groups=["parents"])
    base = live_server(make_app("reqsys"))
    page = browser_page
    page.goto(f"{base}/auth/login")
    page.locator("#email").fill(user.email)
    page.locator("#password").fill("Wrong-1234!pw")
    submit_main_form(page)
    assert urlsplit(page.url).path == "/auth/login"
    assert "이메일 또는 비밀번호가 올바르지 않습니다." in page.locator("main").inner_text()
    assert page.locator("#email").input_value() == user.email
