"""Reports in the system Chromium: a user asks for a report on the reports page, the page follows it
while the jobs handler (driven by the runner, over the emulator) makes it, then shows the chart with
the figures under it, on a desktop and on a phone."""

from __future__ import annotations

import pytest

from taskapp.analytics import export
from tests.taskapp_helpers import browser_sign_in, new_task, pump

pytestmark = pytest.mark.browser


def test_ask_for_a_report_and_see_its_chart(analytics_env, make_app, live_server, alice, bob, chromium, api,
                                            taskapp_runner):
    base = live_server(make_app("taskapp"))
    for title in ("예산안 검토", "교육 자료 정리"):
        new_task(api, alice, title=title, status="DONE")
    new_task(api, alice, title="학부모 설명회 준비", status="IN_PROGRESS", assignee=bob.email)
    new_task(api, alice, title="월간 보고", due_date="2030-01-31")
    export.export()

    context = chromium.new_context(locale="ko-KR", viewport={"width": 1024, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    browser_sign_in(page, base, alice)

    with page.expect_navigation():
        page.get_by_role("link", name="보고서", exact=True).click()
    page.get_by_label("보고서", exact=True).select_option(label="주간 처리량")
    with page.expect_navigation():
        page.get_by_role("button", name="보고서 만들기").click()
    status = page.locator("#report")
    assert status.get_attribute("data-status") == "queued"
    assert page.locator("ol.progress [aria-current=step] .badge").inner_text() == "대기 중"

    def ready() -> bool:
        page.reload()
        return status.get_attribute("data-status") == "ready"

    assert pump(taskapp_runner, ready)

    chart = page.get_by_role("img", name="주간 처리량")
    assert chart.is_visible()
    assert "13주 동안 업무 2건 완료" in page.locator("figure.chart desc").text_content()
    [bar] = page.locator("rect.bar").all()  # this week: the two tasks done today
    box = bar.bounding_box()
    plot = chart.bounding_box()
    assert box["height"] > 100 and box["x"] > plot["x"] + plot["width"] * 0.85, "the last week's bar, full height"
    assert "2" in page.locator("table.figures tbody tr").last.inner_text()
    assert page.locator("table.figures tbody tr").count() == 13

    # the same report on a phone: the chart fits the screen and its text stays readable
    page.set_viewport_size({"width": 360, "height": 740})
    page.reload()
    plot = chart.bounding_box()
    assert plot["width"] <= 360
    label = page.locator("figure.chart svg text").first
    assert float(label.evaluate("e => getComputedStyle(e).fontSize").removesuffix("px")) >= 12
    context.close()
