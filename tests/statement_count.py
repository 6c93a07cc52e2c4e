"""Counting the SQL an app sends (no tests here): every statement its engine runs, the commits and
rollbacks of its connections, and the rollbacks the pool sends when a connection comes back
still inside a transaction (a "pool-reset ROLLBACK")."""

from __future__ import annotations

import re
from collections import Counter
from contextlib import contextmanager

import sqlalchemy as sa

_VERB = re.compile(r"\s*(\w+)")


class Statements:
    """Counts by kind (SELECT, INSERT, UPDATE, DELETE, COMMIT, ROLLBACK, RESET ROLLBACK, ...) while attached."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.kinds: Counter[str] = Counter()
        self.texts: list[str] = []
        self._announced = False
        self._driver_rollback = engine.dialect.do_rollback

    @property
    def total(self) -> int:
        return sum(self.kinds.values())

    def clear(self) -> None:
        self.kinds.clear()
        self.texts.clear()

    def _statement(self, conn, cursor, statement, parameters, context, executemany) -> None:
        verb = _VERB.match(statement)
        self._add(verb.group(1).upper() if verb else "?", statement)

    def _commit(self, conn) -> None:
        self._add("COMMIT", "COMMIT")

    def _rollback(self, conn) -> None:
        self._add("ROLLBACK", "ROLLBACK")
        self._announced = True

    def _do_rollback(self, dbapi_connection) -> None:
        """Every ROLLBACK the driver sends; one no Connection announced is the pool's (reset on return,
        by the pool's own reset_on_return or by a reset listener)."""
        if not self._announced:
            self._add("RESET ROLLBACK", "ROLLBACK (pool reset)")
        self._announced = False
        self._driver_rollback(dbapi_connection)

    def _add(self, kind: str, text: str) -> None:
        self.kinds[kind] += 1
        self.texts.append(text)

    def attach(self) -> None:
        sa.event.listen(self.engine, "before_cursor_execute", self._statement)
        sa.event.listen(self.engine, "commit", self._commit)
        sa.event.listen(self.engine, "rollback", self._rollback)
        self.engine.dialect.do_rollback = self._do_rollback

    def detach(self) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._statement)
        sa.event.remove(self.engine, "commit", self._commit)
        sa.event.remove(self.engine, "rollback", self._rollback)
        del self.engine.dialect.do_rollback

    def __str__(self) -> str:
        return f"{self.total} statements ({', '.join(f'{n} {kind}' for kind, n in sorted(self.kinds.items()))})"


@contextmanager
def counting(app):
    """with counting(app) as statements: ... -> the statements the app's engine ran meanwhile."""
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
    statements = Statements(engine)
    statements.attach()
    try:
        yield statements
    finally:
        statements.detach()
