"""Schema migrations: a fresh database gets every table, and running them again changes nothing."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from shared.platform.db import upgrade_schema

SQL_APPS = ("reqsys", "childsys")
EXPECTED_TABLES = {
    "reqsys": {"nurseries", "children", "applications", "application_history", "application_criteria",
               "outbox_events"},
    "childsys": {"nurseries", "applications", "application_history", "application_criteria", "enrollments",
                 "class_capacities", "outbox_events"},
}
BEFORE_OFFERS = {"reqsys": "2247bb6485d9", "childsys": "d0d0ab8c7604"}  # the revisions before the portal waitlist


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
    logger = logging.getLogger("shared.platform.errors")
    root_handlers = list(logging.getLogger().handlers)
    upgrade_schema(app)
    assert not logger.disabled
    assert logging.getLogger().handlers == root_handlers, "the app's log handlers stay in place"
    with caplog.at_level(logging.ERROR, logger="shared.platform.errors"):
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


# --- data made before offers existed -------------------------------------------------------------------


OLD_APPLICATION = {
    "request_id": "202301013333333A00017", "child_id": "202301013333333", "child_name": "김아기",
    "child_birthday": "20230101", "user_id": "u", "parent_name": "김부모", "parent_tel": "010-0000-0000",
    "parent_address": "서울", "parent_postcode": "00001", "parent_email": "p@example.com", "nursery_id": "A00017",
    "version": 2, "created_at": "2026-11-20 03:00:00", "updated_at": "2026-11-20 03:00:00"}


def upgrade_existing_data(app, app_name: str) -> None:
    """Rows of the old flow survive the upgrade with their meaning: accepted then meant enrolled."""
    from flask_migrate import upgrade

    with app.app_context():
        upgrade(directory=app.config["MIGRATIONS_DIR"], revision=BEFORE_OFFERS[app_name])
    add_nursery(app)
    extra = {"parent_sub": "sub-1"} if app_name == "reqsys" else {"decided_by": "staff@example.com"}
    rows = [{**OLD_APPLICATION, **extra, "status": 2},
            {**OLD_APPLICATION, **extra, "status": 1, "request_id": "202401010000000A00017",
             "child_id": "202401010000000", "child_birthday": "20240101"}]
    with app.app_context(), app.extensions["sqlalchemy"].engine.begin() as conn:
        for row in rows:
            conn.execute(sa.text(f"INSERT INTO applications ({', '.join(row)}) "  # noqa: S608 - the test's own names
                                 f"VALUES ({', '.join(':' + k for k in row)})"), row)
        conn.execute(sa.text("INSERT INTO application_history (application_id, event_id, type, status, version, "
                             "occurred_at) VALUES (1, 'e-1', 'ACCEPT', 2, 2, '2026-11-20 03:00:00')"))
        if app_name == "childsys":
            conn.execute(sa.text("INSERT INTO enrollments (request_id, nursery_id, child_id, child_name, "
                                 "child_birthday, parent_name, parent_tel, parent_email, enrolled_at) VALUES "
                                 "(:request_id, :nursery_id, :child_id, :child_name, :child_birthday, :parent_name, "
                                 ":parent_tel, :parent_email, :created_at)"), rows[0])

    assert upgrade_schema(app) == head_of(app)

    with app.app_context(), app.extensions["sqlalchemy"].engine.connect() as conn:
        upgraded = conn.execute(sa.text("SELECT request_id, status, desired_start, age_class, applied_at, score, "
                                        "priority_tier FROM applications ORDER BY id")).all()
        assert [(r.status, r.desired_start, r.age_class, r.score, r.priority_tier) for r in upgraded] == [
            (3, "2026-12", 2, 0, 2), (1, "2026-12", 1, 0, 2)], "accepted became enrolled; the rest waits"
        assert str(upgraded[0].applied_at).startswith("2026-11-20 03:00:00")
        if app_name == "childsys":
            assert conn.execute(sa.text("SELECT nursery_id FROM application_history")).scalar_one() == "A00017"
            assert conn.execute(sa.text("SELECT age_class FROM enrollments")).scalar_one() == 2


@pytest.mark.parametrize("app_name", SQL_APPS)
def test_the_upgrade_keeps_the_old_flows_data_on_sqlite(make_app, tmp_path, app_name):
    app = make_app(app_name, {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'old.db'}"}, migrate=False)
    upgrade_existing_data(app, app_name)


@pytest.mark.mysql
@pytest.mark.parametrize("app_name", SQL_APPS)
def test_the_upgrade_keeps_the_old_flows_data_on_mysql(make_app, mysql_database, app_name):
    app = make_app(app_name, {"SQLALCHEMY_DATABASE_URI": mysql_database(f"test_old_{app_name}")}, migrate=False)
    upgrade_existing_data(app, app_name)


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


def test_in_lambda_alembic_waits_until_the_schema_is_upgraded(make_app, monkeypatch, tmp_path):
    """Lambda runs no `flask db` command: Flask-Migrate is registered by the first upgrade_schema."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "daycare-reqsys-test")
    app = make_app("reqsys", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'lambda.db'}"}, migrate=False)
    assert "migrate" not in app.extensions
    assert upgrade_schema(app) == head_of(app)
    assert "migrate" in app.extensions and EXPECTED_TABLES["reqsys"] <= tables(app)


@pytest.mark.parametrize("app_name", SQL_APPS)
def test_the_models_match_the_migrated_schema(make_app, tmp_path, app_name):
    """The shared model columns (shared.waitlist.models) describe what the migrations build, in each app."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    app = make_app(app_name, {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'schema.db'}"}, migrate=False)
    upgrade_schema(app)
    with app.app_context():
        db = app.extensions["sqlalchemy"]
        with db.engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert differences == []
