"""taskapp test fixtures (a pytest plugin of conftest): users with tokens, the JSON client, uploads
through the emulator's S3 as a browser or client does, and the runner driving taskapp_local's handlers."""

from __future__ import annotations

import base64
import json
import re
from html import unescape as html_unescape
from urllib.parse import quote, urlsplit

import pytest
import requests

from shared.tools.runner import Runner, load_event_sources

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
PDF = b"%PDF-1.7\n" + b"1 0 obj <<>> endobj\n" * 10


@pytest.fixture
def api(client_for):
    """A test client of a new taskapp (JSON routes take `headers=user.headers`)."""
    return client_for("taskapp")


@pytest.fixture
def task_user(make_user, bearer):
    """task_user(name=...): a new user with `.headers` (a taskapp bearer token) and `.sub`."""

    def make(name: str = "테스트 사용자"):
        user = make_user(name=name)
        user.headers = bearer(user.email, app_name="taskapp")
        payload = user.headers["Authorization"].split()[1].split(".")[1]
        user.sub = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]
        return user

    return make


@pytest.fixture
def alice(task_user):
    return task_user("앨리스")


@pytest.fixture
def bob(task_user):
    return task_user("밥")


def new_task(api, user, **body) -> dict:
    response = api.post("/api/tasks", json={"title": "Write report", **body}, headers=user.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def post_to_s3(upload: dict, content: bytes, content_type: str, filename: str = "file.bin", **fields):
    """POST a file with a presigned form, as a browser does (fields, then the file)."""
    data = {**upload["fields"], **fields}
    return requests.post(upload["url"], data=data, files={"file": (filename, content, content_type)},
                         allow_redirects=False, timeout=30)


def post_page_form(web, page: str, content: bytes, content_type: str, filename: str):
    """Send the page's S3 upload form (the s3_upload macro) as the browser does, with the two fields
    uploads.js fills in, and follow S3's redirect back into the app (`web`); the app's response."""
    html = page.split("data-s3-upload", 1)[0].rsplit("<form", 1)[1] + page.split("data-s3-upload", 1)[1]
    action = html_unescape(re.search(r'action="([^"]+)"', html)[1])
    form = html.split("</form>", 1)[0]
    fields = {name: html_unescape(value)
              for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form)}
    fields.update({"Content-Type": content_type, "x-amz-meta-filename": quote(filename)})
    sent = requests.post(action, data=fields, files={"file": (filename, content, content_type)},
                         allow_redirects=False, timeout=30)
    assert sent.status_code == 303, sent.text
    back = urlsplit(sent.headers["Location"])
    return web.get(f"{back.path}?{back.query}")


@pytest.fixture
def taskapp_runner(resources, tmp_path):
    """The local runner over taskapp_local's event sources (on the test stage's queues); a failed
    message is visible again at once, so retries happen within a test."""
    from tests.pipeline_helpers import runner_settings

    path = runner_settings(resources, tmp_path, "taskapp_local")
    return Runner(load_event_sources(path, "test"), failed_visibility=0)


def browser_sign_in(page, base: str, user) -> None:
    """Sign in through the login page of the app served at `base`, in a real browser."""
    page.goto(f"{base}/auth/login")
    page.locator("#email").fill(user.email)
    page.locator("#password").fill(user.password)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()


def pump(runner, done, passes: int = 40) -> bool:
    """Run the event sources until `done()` or the passes run out."""
    for _ in range(passes):
        if done():
            return True
        runner.run_once()
    return done()
