"""taskapp's pages in the system Chromium: the board's cards move by drag and drop and by keyboard
(a stale card says so), long titles stay inside their card, a running job's page follows it without
a reload, and every page passes axe-core (no critical or serious violation) and fits a phone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from taskapp.analytics import export
from tests.taskapp_helpers import (
    board_column,
    browser_sign_in,
    new_task,
    page_width,
    pump,
    serious_accessibility_problems,
)

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
LONG_TITLE = ("2027년도 상반기 어린이집 보조금 정산 자료와 교사 연수 일정표를 시청 담당자에게 보내기 전에 다시 확인하기"
              "_첨부파일명이_아주_길어서_줄바꿈이_안_되는_경우도_있음_" + "x" * 60)


def _status(api, user, task_id: str) -> tuple[str, int]:
    task = api.get(f"/api/tasks/{task_id}", headers=user.headers).get_json()
    return task["status"], task["version"]


def test_cards_move_by_drag_and_drop_and_by_keyboard(make_app, live_server, alice, bob, chromium, api):
    base = live_server(make_app("taskapp"))
    dragged = new_task(api, alice, title="끌어서 옮길 일", due_date="2020-01-02", labels=["회의"], priority="HIGH")
    typed = new_task(api, alice, title="키보드로 옮길 일", assignee=bob.email)
    long = new_task(api, alice, title=LONG_TITLE)
    context = chromium.new_context(locale="ko-KR", viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(10_000)
    browser_sign_in(page, base, alice)
    page.goto(f"{base}/board")

    todo, doing, done = (board_column(page, name) for name in ("할 일", "진행 중", "완료"))
    card = page.locator(f"#task-{dragged['task_id']}")
    assert "마감 지남" in card.inner_text() and "높음" in card.inner_text() and "회의" in card.inner_text()
    assert bob.email in page.locator(f"#task-{typed['task_id']}").inner_text()

    # drag from 할 일 to 진행 중: the card moves, the status is saved, the change is announced
    card.drag_to(doing.locator("ul"))
    expect(doing.locator(f"#task-{dragged['task_id']}")).to_be_visible()
    expect(page.locator("#board-status")).to_contain_text("진행 중으로 옮겼습니다")
    assert _status(api, alice, dragged["task_id"]) == ("IN_PROGRESS", 2)
    assert doing.locator("[data-count]").inner_text() == "1"

    # by keyboard: Tab from the card's title to its "move to" control, choose 완료, Enter
    page.locator(f"#task-{typed['task_id']} h3 a").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == f"move-{typed['task_id']}"
    page.keyboard.press("ArrowDown")  # 진행 중 -> 완료
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(done.locator(f"#task-{typed['task_id']}")).to_be_visible()
    assert _status(api, alice, typed["task_id"]) == ("DONE", 2)
    assert page.evaluate("document.activeElement.id") == f"move-{typed['task_id']}", "focus stays on the card"

    # someone else changed the card meanwhile: the move is refused, said so, and the card stays
    assert api.patch(f"/api/tasks/{dragged['task_id']}", json={"priority": "LOW", "version": 2},
                     headers=alice.headers).status_code == 200
    doing.locator(f"#task-{dragged['task_id']}").drag_to(todo.locator("ul"))
    expect(page.locator("#board-error")).to_contain_text("다른 사람이 이 업무를 바꿔서 옮기지 않았습니다")
    assert doing.locator(f"#task-{dragged['task_id']}").count() == 1
    assert _status(api, alice, dragged["task_id"]) == ("IN_PROGRESS", 3)

    # a long title wraps inside its card, on a desktop and on a phone
    for size in (DESKTOP, PHONE):
        page.set_viewport_size(size)
        page.goto(f"{base}/board")
        title = page.locator(f"#task-{long['task_id']} h3")
        box, column = title.bounding_box(), todo.bounding_box()
        assert box["x"] + box["width"] <= column["x"] + column["width"], size
        assert title.evaluate("e => e.scrollWidth <= e.clientWidth"), size
        assert page_width(page) <= size["width"], size
    context.close()


def test_a_job_page_follows_the_job_without_a_reload(make_app, live_server, alice, chromium, api, taskapp_runner):
    base = live_server(make_app("taskapp"))
    new_task(api, alice, title="내보낼 일")
    context = chromium.new_context(locale="ko-KR", viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(10_000)
    browser_sign_in(page, base, alice)
    job = api.post("/api/exports", headers=alice.headers).get_json()
    page.goto(f"{base}/jobs/{job['job_id']}")
    assert page.locator("[data-status]").first.get_attribute("data-status") == "queued"
    assert page.locator("meta[http-equiv=refresh]").count() == 0
    page.evaluate("window.stillHere = true")  # gone if the page reloads

    def done() -> bool:
        return api.get(f"/api/jobs/{job['job_id']}", headers=alice.headers).get_json()["status"] == "succeeded"

    assert pump(taskapp_runner, done)
    expect(page.locator("[data-status=succeeded]")).to_be_visible(timeout=15_000)
    expect(page.locator("#live-status")).to_contain_text("완료")
    assert page.evaluate("window.stillHere") is True
    context.close()


def test_every_taskapp_page_passes_axe_and_fits_a_phone(analytics_env, make_app, live_server, alice, bob,
                                                        make_user, chromium, api, taskapp_runner):
    base = live_server(make_app("taskapp"))
    task = new_task(api, alice, title=LONG_TITLE, due_date="2020-01-02", labels=["회의", "예산"], assignee=bob.email,
                    description="시청 담당자에게 보내기 전에 다시 확인합니다.")
    new_task(api, alice, title="예산안 검토", status="DONE")
    new_task(api, alice, title="학부모 설명회 준비", status="IN_PROGRESS", priority="HIGH", due_date="2030-01-31")
    export.export()
    job = api.post("/api/exports", headers=alice.headers).get_json()
    report = api.post("/api/reports", json={"report": "cumulative_flow"}, headers=alice.headers).get_json()

    def finished() -> bool:
        states = (api.get(f"/api/jobs/{job['job_id']}", headers=alice.headers).get_json()["status"],
                  api.get(f"/api/reports/{report['report_id']}", headers=alice.headers).get_json()["status"])
        return states[0] in ("succeeded", "failed") and states[1] in ("ready", "failed")

    assert pump(taskapp_runner, finished)
    pages = {
        "board": "/board", "list": "/tasks", "detail": f"/tasks/{task['task_id']}", "new": "/tasks/new",
        "edit": f"/tasks/{task['task_id']}/edit", "reports": "/reports", "report": f"/reports/{report['report_id']}",
        "jobs": "/jobs", "job": f"/jobs/{job['job_id']}", "profile": "/profile", "notifications": "/notifications",
    }
    shots = os.environ.get("TASKAPP_SCREENSHOTS")
    problems: list[str] = []

    def check(user, role: str, pages: dict[str, str]) -> None:
        for size_name, size in (("phone", PHONE), ("desktop", DESKTOP)):
            context = chromium.new_context(locale="ko-KR", viewport=size)
            page = context.new_page()
            page.set_default_timeout(10_000)
            browser_sign_in(page, base, user)
            for name, path in pages.items():
                page.goto(base + path)
                if name == "new":  # the form after a submit with errors: the summary and the messages
                    page.locator("#assignee").fill("밥")
                    with page.expect_navigation():
                        page.locator("main form button[type=submit]").click()
                    assert page.locator("[data-error-summary]").count() == 1
                if shots:
                    Path(shots).mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=f"{shots}/taskapp-{name}-{role}-{size_name}.png", full_page=True)
                if page_width(page) > size["width"]:
                    problems.append(f"{name} as {role} at {size_name}: {page_width(page)} px wide")
                problems.extend(f"{name} as {role} at {size_name}: {p}" for p in serious_accessibility_problems(page))
            context.close()

    check(alice, "staff", pages)
    check(make_user(groups=("admins",), name="관리자"), "admin", {"reports": "/reports", "export": "/admin/analytics"})
    assert problems == []
