"""Page weight: what a browser downloads for the reqsys apply page and the taskapp board, gzip-compressed
(HTML + CSS + fonts + scripts + images), on a first visit (empty cache) and on the next visit (the same
browser, its cache warm). Real Chromium, apps served locally as in `make run`. Prints; asserts nothing.

Targets (issue 13): at most 400 KB on a first visit, 30 KB on the next.

    .venv/bin/python -m tests.bench_pages
"""

from __future__ import annotations

import gzip
import threading
from urllib.parse import urlsplit

from tests.bench_support import dispose, emulator, make_app, seed_accounts

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "Demo-1234!"
CHILD = {"child_id": "202301013333333", "name": "김아기", "birthday": "2023-01-01"}
KINDS = {"document": "HTML", "stylesheet": "CSS", "font": "fonts", "script": "scripts", "image": "images"}


def serve(app) -> tuple[str, object]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


def sign_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/auth/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()


def weigh(page, url: str) -> dict[str, int]:
    """Bytes (gzip level 6, as a web server or S3 with Content-Encoding would send) per kind of the responses
    that came over the network while loading `url`; those the browser took from its cache count 0."""
    import base64

    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    seen: dict[str, str] = {}
    cached: set[str] = set()

    def received(event):
        response = event["response"]
        if response.get("fromDiskCache") or response.get("fromMemoryCache") or response["status"] == 304:
            cached.add(event["requestId"])
        seen[event["requestId"]] = event["type"].lower()

    cdp.on("Network.requestServedFromCache", lambda event: cached.add(event["requestId"]))
    cdp.on("Network.responseReceived", received)
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    totals: dict[str, int] = {}
    for request_id, kind in seen.items():
        if request_id in cached:
            continue
        try:
            body = cdp.send("Network.getResponseBody", {"requestId": request_id})
        except Exception:  # noqa: S112 - a redirect has no body
            continue
        data = base64.b64decode(body["body"]) if body["base64Encoded"] else body["body"].encode()
        label = KINDS.get(kind, "other")
        totals[label] = totals.get(label, 0) + len(gzip.compress(data, 6))
    cdp.detach()
    return totals


def report(name: str, first: dict[str, int], repeat: dict[str, int]) -> None:
    print(f"\n{name}")
    print(f"  {'':10}{'first visit':>14}{'next visit':>14}")
    for label in [*KINDS.values(), "other"]:
        if first.get(label) or repeat.get(label):
            print(f"  {label:10}{first.get(label, 0) / 1024:>11.1f} KB{repeat.get(label, 0) / 1024:>11.1f} KB")
    total_first, total_repeat = sum(first.values()), sum(repeat.values())
    print(f"  {'total':10}{total_first / 1024:>11.1f} KB{total_repeat / 1024:>11.1f} KB"
          f"   (targets: 400 KB, 30 KB)")


def main() -> None:
    import logging

    from playwright.sync_api import sync_playwright

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with emulator() as outputs:
        seed_accounts()
        database = f"sqlite:///{outputs['WORK_DIR']}/reqsys.db"
        reqsys, taskapp = make_app("reqsys", database), make_app("taskapp")
        (reqsys_base, reqsys_server), (task_base, task_server) = serve(reqsys), serve(taskapp)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
                pages = []
                for base, email, path in ((reqsys_base, "parent@example.com", "/nurseries/A00017/apply"),
                                          (task_base, "user@example.com", "/board")):
                    context = browser.new_context(locale="ko-KR", viewport={"width": 390, "height": 844})
                    page = context.new_page()
                    sign_in(page, base, email)
                    if "apply" in path:  # the apply form needs a registered child
                        page.goto(f"{base}/children")
                        for field, value in CHILD.items():
                            page.locator(f"#{field}").fill(value)
                        with page.expect_navigation():
                            page.locator("main form button[type=submit]").click()
                    # a first visit: the sign-in pages above already cached the shell, so start afresh
                    cookies = context.cookies()
                    fresh = browser.new_context(locale="ko-KR", viewport={"width": 390, "height": 844})
                    fresh.add_cookies(cookies)
                    page = fresh.new_page()
                    assert urlsplit(page.url).path != "/auth/login"
                    first = weigh(page, f"{base}{path}")
                    repeat = weigh(page, f"{base}{path}")
                    app_name = "reqsys" if base == reqsys_base else "taskapp"
                    pages.append((f"{app_name} {path}", first, repeat))
                    context.close()
                    fresh.close()
                browser.close()
            print("Page weight, gzip-compressed (phone size, signed in)")
            for name, first, repeat in pages:
                report(name, first, repeat)
        finally:
            for server in (reqsys_server, task_server):
                server.shutdown()
            dispose(reqsys)
            dispose(taskapp)


if __name__ == "__main__":
    main()
