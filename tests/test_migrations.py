"""Schema migrations: a fresh database gets every table, and running them again changes nothing."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from shared.db import upgrade_schema

SQL_APPS = ("reqsys", "childsys")
EXPECTED_TABLES = {
    "reqsys": {"nurseries", "children", "applications", "application_history", "outbox_events"},
    "childsys": {"nurseries", "applications", "application_history", "enrollments", "outbox_events"},
}


def head_of(app) -> str:
    """The newest revision among the app's migration scripts."""
    return ScriptDirectory(app.config["MIGRATIONS_DIR"]).get_current_head()


def tables(app) -> set[str]:
    with app.app_context():
        return set(sa.inspect(app.extensions["sqlalchemy"].engine).get_table_names())


def nursery_count(app) -> int:
    with app.app_context():
        with app.extensions["sqlalchemy"].engine.connect() as conn:
            return conn.execute(sa.text("SELECT COUNT(*) FROM nurseries")).scalar_one()


def add_nursery(app) -> None:
    with app.app_context():
        with app.extensions["sqlalchemy"].engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO nurseries (nursery_id, name, address, area) "
                                 "VALUES ('A00017', '햇살 어린이집', '서울특별시 마포구', '마포구')"))


def migrate_twice(app, app_name: str) -> None:
    assert tables(app) == set(), "the database starts empty"
    head = head_of(app)
    assert head
    assert upgrade_schema(app) == head
    assert EXPECTED_TABLES[app_name] | {"alembic_version"} <= tables(app)
    add_nursery(app)
    assert upgrade_schema(app) == head, "a second run stays at the head revision"
    assert nursery_count(app) == 1, "and keeps the data"
    assert upgrade_schema(app) == head


@pytest.mark.parametrize("app_name", SQL_APPS)
def test_migrations_create_tables_on_fresh_sqlite_and_repeat_as_no_op(make_app, tmp_path, app_name):
    database = tmp_path / "nested" / f"{app_name}-fresh.db"  # the folder does not exist yet either
    app = make_app(app_name, {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}"}, migrate=False)
    migrate_twice(app, app_name)
    assert database.is_file()


def test_migrating_inside_the_app_keeps_its_loggers(make_app, caplog):
    """/admin/init migrates in the running app; Alembic's logging set-up must not silence the app's
    own loggers (or unhandled errors would go unlogged afterwards)."""
    app = make_app("reqsys", migrate=False)
    logger = logging.getLogger("shared.errors")
    root_handlers = list(logging.getLogger().handlers)
    upgrade_schema(app)
    assert not logger.disabled
    assert logging.getLogger().handlers == root_handlers, "the app's log handlers stay in place"
    with caplog.at_level(logging.ERROR, logger="shared.errors"):
        logger.error("still heard")
    assert "still heard" in caplog.text


# --- MariaDB / MySQL ---------------------------------------------------------------------------------


@pytest.mark.mysql
@pytest.mark.parametrize("app_name", SQL_APPS)
def test_migrations_on_mysql_create_tables_and_repeat_as_no_op(make_app, mysql_database, app_name):
    database_url = mysql_database(f"test_{app_name}")
    assert urlsplit(database_url).path.startswith(f"/test_{app_name}_")
    app = make_app(app_name, {"SQLALCHEMY_DATABASE_URI": database_url}, migrate=False)
    migrate_twice(app, app_name)
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
        assert engine.dialect.name == "mysql"
        with engine.connect() as conn:
            # Korean names survive the round trip (utf8mb4 end to end)
            assert conn.execute(sa.text("SELECT name FROM nurseries")).scalar_one() == "햇살 어린이집"


# --- /admin/init -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("app_name", SQL_APPS)
def test_admin_init_page_migrates_and_can_run_again(make_app, make_user, sign_in, submit, app_name):
    app = make_app(app_name, migrate=False)
    admin = make_user(groups=["admins"])
    client = app.test_client()
    sign_in(client, admin.email)
    assert client.get("/admin/init").status_code == 200

    for _ in range(2):
        response = submit(client, "/admin/init", {}, follow_redirects=True)
        assert response.status_code == 200
        assert head_of(app) in response.get_data(as_text=True), "the page says which revision is applied"
        assert EXPECTED_TABLES[app_name] <= tables(app)


def test_admin_init_needs_the_csrf_token(make_app, make_user, sign_in):
    app = make_app("reqsys", migrate=False)
    admin = make_user(groups=["admins"])
    client = app.test_client()
    sign_in(client, admin.email)
    assert client.post("/admin/init").status_code == 400
    assert "nurseries" not in tables(app), "nothing ran"
