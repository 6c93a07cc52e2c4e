"""Helpers for the waitlist's browser tests: served apps with the demo daycares, a parent's and a staff
member's browser, a signed sync call into childsys (no pipeline needed), and page measurements."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from shared.platform.events import Envelope
from shared.platform.signing import sign
from shared.tools.demo import NURSERIES

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


def child_id() -> str:
    return "2023" + uuid.uuid4().hex[:11].translate(str.maketrans("abcdef", "123456"))


def add_nurseries(app) -> None:
    with app.app_context(), app.extensions["sqlalchemy"].engine.begin() as conn:
        for nursery_id, name, address, area in NURSERIES:
            conn.execute(sa.text("INSERT INTO nurseries (nursery_id, name, address, area) VALUES (:i, :n, :a, :r)"),
                         {"i": nursery_id, "n": name, "a": address, "r": area})


def serve(make_app, live_server, name: str):
    """(app, base URL): reqsys or childsys with the demo daycares, served over HTTP."""
    app = make_app(name)
    add_nurseries(app)
    return app, live_server(app)


def seed_body(**changes) -> dict:
    body = {"child_id": child_id(), "child_name": "김아기", "child_birthday": "20230101", "user_id": "parent-sub",
            "parent_name": "김부모", "parent_tel": "010-0000-0000", "parent_address": "서울특별시 마포구",
            "parent_postcode": "00001", "parent_email": "parent@example.com", "nursery_id": "A00017"}
    return body | changes


def sync_into(app, event_type: str, body: dict, version: int = 1):
    """A signed sync call, as the pipeline makes it: the application arrives in childsys."""
    envelope = Envelope(type=event_type, version=version, application=body)
    raw = envelope.to_json().encode()
    answer = app.test_client().post(f"/enterwait/{event_type.lower()}", data=raw, headers={
        "Content-Type": "application/json", **sign(app.config["SETTINGS"].sync_secret, raw)})
    assert answer.status_code == 200, answer.text
    return answer


def new_page(chromium, viewport=PHONE, **options):
    context = chromium.new_context(locale="ko-KR", viewport=viewport, **options)
    context.set_default_timeout(15_000)
    return context.new_page()


def sign_in(page, base, email, password):
    page.goto(f"{base}/auth/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()


def register_child(page, base, kid_id: str, name: str = "김새싹", birthday: str = "2023-03-01"):
    page.goto(f"{base}/children")
    page.locator("#child_id").fill(kid_id)
    page.locator("#name").fill(name)
    page.locator("#birthday").fill(birthday)
    with page.expect_navigation():
        page.get_by_role("button", name="등록").click()


def fill_apply(page, base, nursery_id: str, criteria=(), **fields):
    page.goto(f"{base}/nurseries/{nursery_id}/apply")
    for code in criteria:
        page.locator(f"#criteria-{code}").check()
    values = {"parent_name": "김부모", "parent_tel": "010-1234-5678", "parent_email": "parent@example.com",
              "parent_address": "서울특별시 마포구 월드컵북로 21", "parent_postcode": "03991", **fields}
    for name, value in values.items():
        page.locator(f"#{name}").fill(value)


def send(page, name: str):
    with page.expect_navigation():
        page.get_by_role("button", name=name).click()


def page_width(page) -> int:
    """How wide the page's content is (wider than the viewport: a sideways scroll on a phone)."""
    return page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")


def in_viewport(page, locator) -> bool:
    box = locator.bounding_box()
    size = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= size["height"] \
        and box["x"] >= 0 and box["x"] + box["width"] <= size["width"]


def axe_problems(page) -> list[str]:
    """Critical and serious axe-core findings on the page (axe-playwright-python), as 'id: target' lines."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}" for v in results.response["violations"]
            if v.get("impact") in ("critical", "serious")]


def application_id(page, seed_id: str) -> str:
    """The request id of the parent's application shown for the seed's child_id + nursery_id (the account's
    tag follows it)."""
    return page.locator(f"article[id^='application-{seed_id}.']").get_attribute("id").removeprefix("application-")
