"""Helpers for browser tests of any app: sizes, signing in as a role, axe-core, page width.

Use with the conftest fixtures `make_app`, `live_server`, `chromium` and `make_user`:

    page = new_page(chromium, PHONE)
    sign_in_as(page, base, make_user(groups=["parents"]))
    page.goto(f"{base}/children")
    assert_accessible_and_fits(page)

Roles (groups in the user pool): parents, staff (with a daycare id), admins; taskapp users need none.
"""

from __future__ import annotations

from urllib.parse import urlsplit

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
SIZES = {"phone": PHONE, "desktop": DESKTOP}
BLOCKING = ("critical", "serious")

_axe = None


def new_page(chromium, size: dict, locale: str = "ko-KR"):
    """A page in a fresh context (own cookies) of the given viewport size; close it with page.context.close()."""
    context = chromium.new_context(locale=locale, viewport=size)
    context.set_default_timeout(10_000)
    return context.new_page()


def sign_in_as(page, base: str, user) -> None:
    """Sign `user` (make_user's result) in through the login form; asserts it worked."""
    page.goto(f"{base}/auth/login")
    page.locator("#email").fill(user.email)
    page.locator("#password").fill(user.password)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    assert urlsplit(page.url).path != "/auth/login", "sign-in failed"


def axe_violations(page, impacts=BLOCKING) -> list[dict]:
    """axe-core's violations of the given impacts on the current page (axe-playwright-python bundles axe)."""
    global _axe
    if _axe is None:
        from axe_playwright_python.sync_playwright import Axe

        _axe = Axe()
    results = _axe.run(page)
    return [v for v in results.response["violations"] if v.get("impact") in impacts]


def describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        targets = [", ".join(node["target"]) for node in v["nodes"][:3]]
        lines.append(f"{v['impact']} {v['id']}: {v['help']} at {targets}")
    return "\n".join(lines)


def overflow(page) -> int:
    """How many CSS pixels the page is wider than the viewport (0 when it fits)."""
    return page.evaluate("Math.max(0, document.documentElement.scrollWidth - window.innerWidth)")


def assert_accessible_and_fits(page, label: str = "") -> None:
    where = label or urlsplit(page.url).path
    found = axe_violations(page)
    assert not found, f"{where}: axe found\n{describe(found)}"
    extra = overflow(page)
    assert extra == 0, f"{where}: the page is {extra}px wider than the {page.viewport_size['width']}px viewport"
