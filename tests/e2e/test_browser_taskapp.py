"""taskapp in the system Chromium: sign in, create a task, move it across the board, attach a file
(posted by the browser straight to the emulator's S3 and redirected back), and see the notification
of another user's change arrive through SNS -> SQS -> the handler driven by the runner."""

from __future__ import annotations

import pytest

from tests.taskapp_helpers import PDF, browser_sign_in, pump

pytestmark = pytest.mark.browser


def test_a_days_work_in_the_browser(make_app, live_server, alice, bob, chromium, api, taskapp_runner):
    base = live_server(make_app("taskapp"))
    page = chromium.new_context(locale="ko-KR").new_page()
    page.set_default_timeout(10_000)

    browser_sign_in(page, base, alice)

    page.goto(f"{base}/tasks/new")
    page.locator("#title").fill("학부모 상담 일정 정리")
    page.locator("#due_date").fill("2030-05-01")
    page.locator("#assignee").fill(bob.email)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    task_url = page.url
    task_id = task_url.rstrip("/").rsplit("/", 1)[-1]
    assert page.locator("h1").inner_text() == "학부모 상담 일정 정리"

    page.goto(f"{base}/board")
    card = page.locator("li", has=page.get_by_role("link", name="학부모 상담 일정 정리"))
    with page.expect_navigation():
        card.get_by_role("button", name="진행 중(으)로 이동").click()
    columns = page.locator("section.column")
    assert "학부모 상담 일정 정리" in columns.nth(1).inner_text()
    assert "학부모 상담 일정 정리" not in columns.nth(0).inner_text()

    page.goto(task_url)
    page.locator("#attachment").set_input_files(
        {"name": "상담 일정.pdf", "mimeType": "application/pdf", "buffer": PDF})
    with page.expect_navigation(url=f"**/tasks/{task_id}#files"):
        page.get_by_role("button", name="올리기").click()
    assert page.get_by_role("link", name="상담 일정.pdf").is_visible()
    assert page.locator(".bell .count").count() == 0

    # bob, the assignee, finishes it; alice hears about it in the app
    moved = api.patch(f"/api/tasks/{task_id}", json={"status": "DONE", "version": 2}, headers=bob.headers)
    assert moved.status_code == 200, moved.get_json()

    def bell() -> bool:
        page.reload()
        return page.locator(".bell .count").count() == 1

    assert pump(taskapp_runner, bell)
    assert page.locator(".bell .count").get_attribute("data-unread") == "1"
    with page.expect_navigation():
        page.locator("a.bell").click()
    note = page.locator("li.note.unread")
    assert "학부모 상담 일정 정리" in note.inner_text() and "밥" in note.inner_text()
    with page.expect_navigation():
        note.get_by_role("link").click()
    assert page.url == task_url and page.locator(".bell .count").count() == 0
    assert "완료" in page.locator("dl").inner_text()
