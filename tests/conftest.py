"""Test fixtures: the moto server as the AWS emulator, reached through boto3 as in production."""

from __future__ import annotations

import importlib
import os
import re
import socket
import threading
import uuid
from types import SimpleNamespace

import pytest

from shared.platform import aws

# fixtures kept in helper modules: taskapp's, and the reqsys tests' app, client and parent (a module that
# defines its own fixture of a name keeps its own)
pytest_plugins = ["tests.taskapp_helpers", "tests.reqsys_fixtures"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def aws_endpoint(tmp_path_factory):
    """A moto server for the whole test session, with the environment pointing at it."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        **aws.emulator_environment(endpoint),
        "STAGE": "test",
        "AWS_OUTPUTS_DIR": str(tmp_path_factory.mktemp("aws")),
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.delenv("AWS_PROFILE", raising=False)
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
        aws.clear_cache()
        yield endpoint
    server.stop()
    aws.clear_cache()


@pytest.fixture(scope="session")
def resources(aws_endpoint) -> dict[str, str]:
    """Every resource of the system, provisioned once on the emulator; the outputs."""
    from shared.tools import provision

    return provision.apply("test").outputs






@pytest.fixture
def own_emulator(aws_endpoint, monkeypatch):
    """A moto server process of its own: once it holds a Lambda function, moto's /moto-api/data.json
    (which the local mailbox reads) fails, so these functions must not reach the shared emulator."""
    import socket
    import subprocess
    import sys
    import time

    from shared.platform import aws

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
        assert time.monotonic() < deadline and server.poll() is None, "moto server did not start"
        time.sleep(0.1)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    yield
    server.terminate()
    server.wait(timeout=10)
    monkeypatch.undo()
    aws.clear_cache()


@pytest.fixture
def sqs(aws_endpoint):
    return aws.client("sqs")


@pytest.fixture
def queue(sqs, monkeypatch):
    """A fresh FIFO queue standing in for integrated-events (Settings.resource reads the env first)."""
    import uuid

    url = sqs.create_queue(QueueName=f"events-{uuid.uuid4().hex[:8]}.fifo", Attributes={"FifoQueue": "true"})[
        "QueueUrl"]
    monkeypatch.setenv("INTEGRATED_EVENTS_QUEUE_URL", url)
    return url


@pytest.fixture
def mysql_database():
    """mysql_database(name) -> URL of a fresh database on TEST_MYSQL_URL's server, dropped afterwards.

    The name gets a random suffix, so test runs sharing one server never collide. Skips when
    TEST_MYSQL_URL is unset; when it is set, an unreachable server fails the test."""
    base_url = os.environ.get("TEST_MYSQL_URL")
    if not base_url:
        pytest.skip("TEST_MYSQL_URL is not set (e.g. mysql+pymysql://root@127.0.0.1:3306/test)")
    import pymysql
    import sqlalchemy as sa

    url = sa.engine.make_url(base_url)
    created = []

    def run(statement: str) -> None:
        with pymysql.connect(host=url.host or "127.0.0.1", port=url.port or 3306, user=url.username or "root",
                             password=url.password or "", connect_timeout=5, autocommit=True) as conn:
            conn.cursor().execute(statement)

    def create(name: str) -> str:
        name = f"{name}_{uuid.uuid4().hex[:8]}"
        run(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        created.append(name)
        return url.set(database=name).render_as_string(hide_password=False)

    yield create
    for name in created:
        run(f"DROP DATABASE IF EXISTS `{name}`")


def pytest_report_header(config):
    url = os.environ.get("TEST_MYSQL_URL")
    return f"MySQL tests: {'on ' + url.split('@')[-1] if url else 'off (TEST_MYSQL_URL unset)'}"


# --- apps, users and forms against the provisioned emulator ------------------------------------

TEST_PASSWORD = "Test-1234!pw"
SQL_APPS = ("reqsys", "childsys")
_CSRF_INPUT = re.compile(r'<input[^>]*name="csrf_token"[^>]*>')
_VALUE = re.compile(r'value="([^"]*)"')


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def csrf_token_in(html: str) -> str:
    """The CSRF token of the first form on a page (hidden_tag or the sign-out form)."""
    tag = _CSRF_INPUT.search(html)
    assert tag, "the page has no CSRF token"
    return _VALUE.search(tag.group(0)).group(1)


@pytest.fixture
def make_app(resources, tmp_path):
    """make_app(app_name, config=None, blueprints=(), migrate=True): an app on the provisioned
    emulator, with its settings from the outputs file and (SQL apps) a migrated SQLite file."""
    from shared.platform.db import upgrade_schema
    from shared.platform.settings import Settings

    made = []

    def make(app_name: str, config: dict | None = None, blueprints=(), migrate: bool = True):
        module = importlib.import_module(app_name)
        full = {"SETTINGS": Settings.load(app_name), **(config or {})}
        if app_name in SQL_APPS:
            full.setdefault("SQLALCHEMY_DATABASE_URI", f"sqlite:///{tmp_path / f'{app_name}-{len(made)}.db'}")
        app = module.create_app(full)
        for blueprint in blueprints:
            app.register_blueprint(blueprint)
        if app_name in SQL_APPS and migrate:
            upgrade_schema(app)
        made.append(app)
        return app

    yield make
    for app in made:
        if "sqlalchemy" in app.extensions:
            with app.app_context():
                app.extensions["sqlalchemy"].engine.dispose()


@pytest.fixture
def client_for(make_app):
    """client_for(app_name, **make_app_kwargs): a test client (its own cookie jar) for a new app."""

    def client(app_name: str, **kwargs):
        return make_app(app_name, **kwargs).test_client()

    return client


@pytest.fixture
def cognito(resources):
    return aws.client("cognito-idp")


@pytest.fixture
def make_user(resources, cognito):
    """make_user(email=None, groups=(), daycare_id=None, name=..., password=TEST_PASSWORD):
    a confirmed user in the provisioned pool (admin_create_user + permanent password + groups).
    Returns a SimpleNamespace(email, password, name); the users are deleted afterwards."""
    pool = resources["COGNITO_USERPOOL_ID"]
    created = []

    def make(email: str | None = None, groups=(), daycare_id: str | None = None, name: str = "테스트 사용자",
             password: str = TEST_PASSWORD):
        email = email or unique_email("-".join(groups) or "user")
        attributes = [
            {"Name": "email", "Value": email},
            {"Name": "email_verified", "Value": "true"},
            {"Name": "name", "Value": name},
        ]
        if daycare_id:
            attributes.append({"Name": "custom:daycare_id", "Value": daycare_id})
        cognito.admin_create_user(UserPoolId=pool, Username=email, UserAttributes=attributes,
                                  MessageAction="SUPPRESS")
        created.append(email)
        cognito.admin_set_user_password(UserPoolId=pool, Username=email, Password=password, Permanent=True)
        for group in groups:
            cognito.admin_add_user_to_group(UserPoolId=pool, Username=email, GroupName=group)
        return SimpleNamespace(email=email, password=password, name=name)

    yield make
    for email in created:
        try:
            cognito.admin_delete_user(UserPoolId=pool, Username=email)
        except cognito.exceptions.UserNotFoundException:
            pass


@pytest.fixture
def tokens_for(make_app):
    """tokens_for(email, password=TEST_PASSWORD, app_name="reqsys"): POST /auth/token's answer."""
    apps: dict[str, object] = {}

    def tokens(email: str, password: str = TEST_PASSWORD, app_name: str = "reqsys") -> dict:
        if app_name not in apps:
            apps[app_name] = make_app(app_name, migrate=False)
        response = apps[app_name].test_client().post("/auth/token", json={"email": email, "password": password})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    return tokens


@pytest.fixture
def bearer(tokens_for):
    """bearer(email, password=TEST_PASSWORD, app_name="reqsys"): headers with the user's id token."""

    def headers(email: str, password: str = TEST_PASSWORD, app_name: str = "reqsys") -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens_for(email, password, app_name)['id_token']}"}

    return headers


def claims_of(token: str) -> dict:
    """The claims of a JWT, unverified (what the test itself was just given)."""
    import base64
    import json

    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.fixture
def account(make_user, tokens_for):
    """account(*groups) -> SimpleNamespace(email, sub, headers) of a new user with a reqsys id token."""

    def make(*groups: str):
        user = make_user(groups=groups or ("parents",))
        token = tokens_for(user.email)["id_token"]
        return SimpleNamespace(email=user.email, sub=claims_of(token)["sub"],
                               headers={"Authorization": f"Bearer {token}"})

    return make


@pytest.fixture
def submit():
    """submit(client, path, data, page=None, **post_kwargs): post a form the way a browser does,
    with the CSRF token read from `page` (default: the form's own page)."""

    def post(client, path: str, data: dict, page: str | None = None, **kwargs):
        html = client.get(page or path).get_data(as_text=True)
        return client.post(path, data={"csrf_token": csrf_token_in(html), **data}, **kwargs)

    return post


@pytest.fixture
def sign_in(submit):
    """sign_in(client, email, password=TEST_PASSWORD): the login form; asserts it succeeded."""

    def login(client, email: str, password: str = TEST_PASSWORD):
        response = submit(client, "/auth/login", {"email": email, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)
        return response

    return login


# --- a served app and a real browser (system Chromium through Playwright) ------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]


@pytest.fixture
def live_server():
    """live_server(app) -> base URL: the app served by werkzeug on a free 127.0.0.1 port, in a thread."""
    from werkzeug.serving import make_server

    servers = []

    def serve(app) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, name=f"live-{app.name}", daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server, thread in servers:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture(scope="session")
def chromium():
    """The system Chromium, launched once per session (skipped locally, failed in CI, if absent)."""
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium):
    """A fresh page in its own browser context (own cookies), closed afterwards."""
    context = chromium.new_context(locale="ko-KR")
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


# --- analytics: a tasks table and an analytics bucket of a test's own -----------------------------


@pytest.fixture
def analytics_env(resources, monkeypatch):
    """A fresh tasks table and analytics bucket (Settings.resource reads the environment first), so
    an export sees only the test's own tasks. SimpleNamespace(table, bucket, settings)."""
    from dataclasses import replace

    from shared.platform.settings import Settings
    from shared.tools import provision

    suffix = uuid.uuid4().hex[:8]
    spec = provision.spec("test", "000000000000")
    result = provision.Result()
    table = next(t for t in spec.tables if t.key == "TASKS_TABLE")
    provision.ensure_table(replace(table, name=f"tasks-{suffix}"), result)
    bucket = next(b for b in spec.buckets if b.key == "ANALYTICS_BUCKET")
    provision.ensure_bucket(replace(bucket, purpose=f"analytics-{suffix}"), result)
    for key in ("TASKS_TABLE", "ANALYTICS_BUCKET"):
        monkeypatch.setenv(key, result.outputs[key])
    return SimpleNamespace(table=result.outputs["TASKS_TABLE"], bucket=result.outputs["ANALYTICS_BUCKET"],
                           settings=Settings.load("taskapp"))


# the whole waitlist as one system, for the end-to-end tests (tests/waitlist_system.py)
from tests.waitlist_system import make_system, system  # noqa: E402, F401, I001 - fixtures
