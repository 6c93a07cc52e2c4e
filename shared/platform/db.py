"""Database helpers shared by reqsys and childsys (each app has its own SQLAlchemy object).

SQLite locally, MySQL through pymysql in AWS. Lambda keeps one process per
concurrent request, so the pool stays tiny (one connection per instance), is recycled well before
MySQL's wait_timeout, and a connection is pinged only when it sat idle long enough that RDS may have
closed it (a warm instance serving requests back to back pays no ping).

A connection goes back to the pool rolled back only when a transaction may still be open on it: one
whose last word was a COMMIT or a ROLLBACK is clean, and the pool's default rollback-on-return would
be one more round trip per request for nothing (`clean_returns`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

log = logging.getLogger(__name__)
Result = TypeVar("Result")
DEADLOCK = 1213  # MySQL's ER_LOCK_DEADLOCK: the transaction was rolled back, and may simply be run again


PROXY_IDLE_SECONDS = 1800  # the RDS Proxy's IdleClientTimeout (shared/tools/deploy/database.py)


def _proxied(url: str) -> bool:
    return ".proxy-" in url


def engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # the app and the local event runner write at the same time: wait, don't fail
        return {"connect_args": {"timeout": 15}, "pool_reset_on_return": None}  # clean_returns resets
    # In Lambda an instance serves one request at a time: one connection, no overflow (a busy morning's
    # instances each hold one, and the RDS Proxy multiplexes them onto the database's few).
    in_lambda = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))
    # Behind the proxy (hosts *.proxy-*.rds.amazonaws.com) a connection is recycled before the proxy drops it
    # idle, so no ping is needed; straight to RDS, clean_returns pings one that sat idle long enough for the
    # database to have closed it (the instance was frozen), not every request.
    proxied = _proxied(url)
    return {
        "pool_recycle": PROXY_IDLE_SECONDS - 300 if proxied else 280,
        "pool_size": 1,
        "max_overflow": 0 if in_lambda else 2,
        "pool_timeout": 10,
        "pool_reset_on_return": None,  # clean_returns rolls back what may be open
        "connect_args": {"connect_timeout": 5, "charset": "utf8mb4"},
    }


PING_AFTER_IDLE = 30.0  # seconds: a connection idle longer is pinged before use (RDS, NAT and proxies drop idle ones)
_DIRTY, _RETURNED = "maybe_in_transaction", "returned_at"


def ping_after_idle(url: str) -> float | None:
    """Seconds of idleness after which a connection is pinged at checkout; None: never (SQLite; behind the
    RDS Proxy, which keeps the database's connections and whose own idle timeout the recycle respects)."""
    return None if url.startswith("sqlite") or _proxied(url) else PING_AFTER_IDLE


def clean_returns(engine, ping_after_idle: float | None = PING_AFTER_IDLE) -> None:
    """Roll a connection back on its way to the pool unless its transaction was ended (the pool then
    runs with reset_on_return=None). A connection is presumed inside a transaction from its checkout
    and from every BEGIN until a COMMIT or ROLLBACK went through; an error on it makes it suspect
    again. With `ping_after_idle`, a connection that sat idle longer is pinged at checkout and
    replaced if the server is gone (the pessimistic pre-ping, only where it pays)."""
    from sqlalchemy import event, exc

    def mark(info, dirty: bool) -> None:
        info[_DIRTY] = dirty

    @event.listens_for(engine.pool, "checkout")
    def checkout(dbapi_connection, record, proxy) -> None:
        returned = record.info.get(_RETURNED)
        if ping_after_idle is not None and returned is not None and time.monotonic() - returned > ping_after_idle:
            ping = getattr(dbapi_connection, "ping", None)
            if ping is not None:
                try:
                    ping(reconnect=False)
                except Exception as err:
                    raise exc.DisconnectionError(f"idle connection is gone: {err}") from err
        mark(record.info, True)

    @event.listens_for(engine.pool, "reset")
    def reset(dbapi_connection, record, state) -> None:
        if record is not None:
            record.info[_RETURNED] = time.monotonic()
        clean = record is not None and not record.info.get(_DIRTY, True)
        if state.terminate_only or state.transaction_was_reset or clean:
            return
        engine.dialect.do_rollback(dbapi_connection)

    @event.listens_for(engine, "begin")
    def begin(conn) -> None:
        mark(conn.info, True)

    @event.listens_for(engine, "commit")
    def commit(conn) -> None:
        mark(conn.info, False)  # an error in the COMMIT itself marks it again (handle_error)

    @event.listens_for(engine, "rollback")
    def rollback(conn) -> None:
        mark(conn.info, False)

    @event.listens_for(engine, "handle_error")
    def error(context) -> None:
        if context.connection is not None and not context.connection.invalidated:
            mark(context.connection.info, True)


def init_db(app: Flask, db: SQLAlchemy, migrations: Path) -> None:
    url = app.config.setdefault("SQLALCHEMY_DATABASE_URI", app.config["SETTINGS"].database_url)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options(url))
    app.config["MIGRATIONS_DIR"] = str(migrations)
    db.init_app(app)
    if app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("pool_reset_on_return", "rollback") is None:
        with app.app_context():
            clean_returns(db.engine, ping_after_idle(url))
    # Flask-Migrate imports Alembic, a sixth of a cold start; Lambda runs no `flask db` command, so
    # there (LAMBDA_TASK_ROOT and AWS_LAMBDA_FUNCTION_NAME are set in every function) upgrade_schema registers
    # it on first use. The package check runs zips on the emulator with LAMBDA_TASK_ROOT only: local mode
    # is refused where AWS_LAMBDA_FUNCTION_NAME is set (shared.platform.settings).
    if not (os.environ.get("LAMBDA_TASK_ROOT") or os.environ.get("AWS_LAMBDA_FUNCTION_NAME")):
        _register_migrate(app)


def _register_migrate(app: Flask) -> None:
    if "migrate" not in app.extensions:
        from flask_migrate import Migrate

        Migrate(app, app.extensions["sqlalchemy"], directory=app.config["MIGRATIONS_DIR"], render_as_batch=True)


def upgrade_schema(app: Flask) -> str:
    """Bring the schema to the newest migration; safe to run any number of times.

    Returns the revision now applied.
    """
    from alembic.migration import MigrationContext
    from flask_migrate import upgrade

    _register_migrate(app)
    with app.app_context():
        upgrade(directory=app.config["MIGRATIONS_DIR"])
        db = app.extensions["sqlalchemy"]
        with db.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision() or ""


def scheduled_job(create_app: Callable[[], Flask], job: Callable[[], Result]) -> Callable[..., Result]:
    """A Zappa schedule handler (`expression` event) that runs `job()` inside the app's context.

    The app is built once per process (warm Lambda invocations reuse it); returns what `job` returns.
    """
    state: dict[str, Flask] = {}

    def handler(event=None, context=None) -> Result:
        if "app" not in state:
            state["app"] = create_app()
        with state["app"].app_context():
            return job()

    return handler


def retry_on_race(db: SQLAlchemy, attempts: int = 3, rerun_stale: bool = False
                  ) -> Callable[[Callable[..., Result]], Callable[..., Result]]:
    """Run a unit of work again when a request running at the same moment made it fail.

    A conditional update that found the row changed since it was read (the version it read is gone:
    SQLAlchemy's StaleDataError, on SQLite as on MySQL) means another request decided first: nothing
    of this unit of work is written, and the caller gets 409 `changed_meanwhile`; with `rerun_stale`
    (a consumer of events) it is run again instead, and decides on what the other committed (a repeat
    is then ignored).

    Either MySQL rolled it back to break a deadlock (two requests locking the same rows in
    different orders: a parent confirming offers at two daycares at once), or a row it inserts
    was just committed by the other (a unique key: the child registered by the parent's other
    application). Run again, it decides on what the other committed (the offer just withdrawn
    is a 409, the child is there) instead of failing with a 500. After `attempts`, 409.
    """
    from sqlalchemy.exc import IntegrityError, OperationalError
    from sqlalchemy.orm.exc import StaleDataError

    from shared.platform.errors import Conflict

    def decorator(work: Callable[..., Result]) -> Callable[..., Result]:
        @wraps(work)
        def wrapper(*args, **kwargs) -> Result:
            for attempt in range(1, attempts + 1):
                try:
                    return work(*args, **kwargs)
                except StaleDataError:
                    db.session.rollback()
                    log.info("%s lost a race: the row changed since it was read (attempt %d of %d)",
                             work.__qualname__, attempt, attempts)
                    if not rerun_stale:
                        raise Conflict("The application changed at the same time; reload it and try again",
                                       "changed_meanwhile") from None
                except (IntegrityError, OperationalError) as err:
                    db.session.rollback()
                    if isinstance(err, OperationalError) and (getattr(err.orig, "args", None) or (0,))[0] != DEADLOCK:
                        raise
                    log.log(logging.INFO if attempt < attempts else logging.WARNING,
                            "%s collided with another request (attempt %d of %d): %s", work.__qualname__,
                            attempt, attempts, type(err.orig).__name__)
            raise Conflict("The application changed at the same time; please try again", "changed_meanwhile")

        return wrapper

    return decorator
