"""What the benchmarks (tests/bench_apps.py, tests/bench_pipeline.py) share: the emulator in a
process of its own, provisioned once; demo accounts and daycares; apps on a given database;
sign-in as a browser and as a JSON client; timing and tables. No measurements here."""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

STAGE = "bench"
MYSQL_DEFAULT = "mysql+pymysql://root@127.0.0.1:3306/test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the emulator did not start on port {port} (exit code {process.poll()})")
        time.sleep(0.1)


@contextlib.contextmanager
def emulator() -> Iterator[dict[str, str]]:
    """A moto server in its own process (so the emulator's work is not on the measured process's
    GIL, as AWS is not on Lambda's), the environment pointed at it, every resource provisioned
    for stage `bench`. Yields the provisioning outputs; stops the server afterwards."""
    work = Path(tempfile.mkdtemp(prefix="daycare-bench-"))
    port = free_port()
    log = open(work / "emulator.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, server)
        from shared.platform import aws

        os.environ.update({**aws.emulator_environment(f"http://127.0.0.1:{port}"), "STAGE": STAGE,
                           "AWS_OUTPUTS_DIR": str(work)})
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "DATABASE_URL"):
            os.environ.pop(name, None)
        from shared.tools import provision

        aws.clear_cache()
        outputs = provision.apply(STAGE).outputs
        outputs["WORK_DIR"] = str(work)
        yield outputs
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def seed_accounts() -> None:
    """The demo accounts (shared.tools.demo, password Demo-1234!) in the emulator's user pool."""
    from shared.platform.aws import client
    from shared.platform.settings import Settings
    from shared.tools.demo import DEMO_PASSWORD, DEMO_USERS

    pool_id = Settings.load("reqsys").cognito_userpool_id
    cognito = client("cognito-idp")
    for email, name, groups, daycare_id in DEMO_USERS:
        attributes = [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"},
                      {"Name": "name", "Value": name}]
        if daycare_id:
            attributes.append({"Name": "custom:daycare_id", "Value": daycare_id})
        with contextlib.suppress(cognito.exceptions.UsernameExistsException):
            cognito.admin_create_user(UserPoolId=pool_id, Username=email, UserAttributes=attributes,
                                      MessageAction="SUPPRESS")
        cognito.admin_set_user_password(UserPoolId=pool_id, Username=email, Password=DEMO_PASSWORD, Permanent=True)
        for group in groups:
            cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=email, GroupName=group)


def make_app(name: str, database_url: str | None = None):
    """An app as Zappa builds it (create_app), on `database_url` for the SQL apps, migrated, with
    the demo daycares (and childsys's places per class)."""
    from shared.platform.db import upgrade_schema
    from shared.tools.demo import CLASS_PLACES, NURSERIES

    module = importlib.import_module(name)
    if database_url is None:
        return module.create_app({})
    app = module.create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    upgrade_schema(app)
    models = importlib.import_module(f"{name}.models")
    with app.app_context():
        for nursery_id, title, address, area in NURSERIES:
            models.db.session.merge(models.Nursery(nursery_id=nursery_id, name=title, address=address, area=area))
        if name == "childsys":
            for nursery_id, places in CLASS_PLACES.items():
                for age_class, count in enumerate(places):
                    models.db.session.merge(models.ClassCapacity(nursery_id=nursery_id, age_class=age_class,
                                                                 places=count))
        models.db.session.commit()
    return app


def dispose(app) -> None:
    if "sqlalchemy" in app.extensions:
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()


def csrf_token(html: str) -> str:
    import re

    tag = re.search(r'<input[^>]*name="csrf_token"[^>]*>', html)
    if not tag:
        raise RuntimeError("the page has no CSRF token")
    return re.search(r'value="([^"]*)"', tag.group(0)).group(1)


def signed_in_client(app, email: str, password: str):
    """A test client with a browser session: the login form, as a browser posts it."""
    client = app.test_client()
    page = client.get("/auth/login").get_data(as_text=True)
    response = client.post("/auth/login", data={"csrf_token": csrf_token(page), "email": email, "password": password})
    if response.status_code != 302:
        raise RuntimeError(f"sign-in of {email} failed: {response.status_code}")
    return client


def bearer(app, email: str, password: str) -> dict[str, str]:
    """Headers with the user's id token from the app's POST /auth/token (the emulator's Cognito)."""
    response = app.test_client().post("/auth/token", json={"email": email, "password": password})
    if response.status_code != 200:
        raise RuntimeError(f"token for {email} failed: {response.status_code} {response.get_data(as_text=True)}")
    return {"Authorization": f"Bearer {response.get_json()['id_token']}"}


# --- MariaDB ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def mysql_database(prefix: str) -> Iterator[str | None]:
    """A throwaway database on TEST_MYSQL_URL's server (default the local MariaDB), dropped afterwards;
    yields None (with a note printed) when the server cannot be reached."""
    import pymysql
    import sqlalchemy as sa

    url = sa.engine.make_url(os.environ.get("TEST_MYSQL_URL") or MYSQL_DEFAULT)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"

    def run(statement: str) -> None:
        with pymysql.connect(host=url.host or "127.0.0.1", port=url.port or 3306, user=url.username or "root",
                             password=url.password or "", connect_timeout=5, autocommit=True) as conn:
            conn.cursor().execute(statement)

    try:
        run(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    except pymysql.err.MySQLError as err:
        print(f"  (MariaDB skipped: {url.render_as_string(hide_password=True)} is unreachable: {err})")
        yield None
        return
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        run(f"DROP DATABASE IF EXISTS `{name}`")


# --- figures ------------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (p99 of 300 samples is the 297th smallest)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A plain-text table: text left, numbers right."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(_is_number(row[i]) for row in rows) if rows else False for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric, strict=True))

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *(line(r) for r in cells[1:])])


def _is_number(value: object) -> bool:
    text = str(value).rstrip("x%").replace(",", "")
    try:
        float(text)
    except ValueError:
        return text in ("-", "")
    return True
