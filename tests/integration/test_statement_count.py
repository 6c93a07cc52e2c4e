"""An apply costs few SQL statements (issue 15's target: at most 8 on MariaDB), counted on the app's engine:
every statement, every COMMIT and ROLLBACK, and the pool's reset rollbacks. A count is stable where a time
is not, so this test can hold the line."""

import pytest

from shared.tools.demo import NURSERIES
from tests.statement_count import counting
from tests.waitlist_helpers import add_nurseries, seed_body

# Statements of one apply of a new child (README, "Benchmarks"). The apply's own transaction: one read (the
# child's applications, locked, with the daycare, the child's registration, the contact address and the new
# application's place in the queue beside them), four inserts (application, child, history, outbox, the
# outbox row already claimed by the request), COMMIT: 6. Then the request sends its event and marks it
# published by id (shared/platform/outbox.py, publish_after_commit: UPDATE, COMMIT): 8 in all. It was 22,
# then 15, then 9.
OWN = 6
MOST = 8


def apply_once(app, parent) -> tuple[int, object]:
    client = app.test_client()
    # warm: the token's keys, the first connection
    client.post("/enterwait/request", json=seed_body(nursery_id="A00018"), headers=parent.headers)
    with counting(app) as statements:
        response = client.post("/enterwait/request", json=seed_body(), headers=parent.headers)
    assert response.status_code == 201, response.get_json()
    return response, statements


def test_an_apply_on_sqlite_sends_few_statements(make_app, account, queue):
    app = make_app("reqsys")
    add_nurseries(app)
    _, statements = apply_once(app, account("parents"))
    assert statements.texts.index("COMMIT") + 1 <= OWN, "\n".join(statements.texts)
    assert statements.total <= MOST, "\n".join(statements.texts)
    assert statements.kinds["RESET ROLLBACK"] == 0, str(statements)
    assert statements.kinds["COMMIT"] >= 1


@pytest.mark.mysql
def test_an_apply_on_mariadb_sends_few_statements(make_app, mysql_database, account, queue):
    app = make_app("reqsys", {"SQLALCHEMY_DATABASE_URI": mysql_database("test_statements")})
    add_nurseries(app)
    _, statements = apply_once(app, account("parents"))
    assert statements.texts.index("COMMIT") + 1 <= OWN, "\n".join(statements.texts)
    assert statements.total <= MOST, "\n".join(statements.texts)
    assert statements.kinds["RESET ROLLBACK"] == 0, str(statements)
    assert statements.kinds["COMMIT"] >= 1


# Statements of the parent's list (GET /enterwait), however many applications it shows: the applications
# with their daycares' names, their criteria, their history, the places of the waiting ones
# (shared.waitlist.ranking.queue_places), and the ROLLBACK that ends the read: 5.
LIST = 5


def list_after_applying(app, parent, applications: int = 3):
    client = app.test_client()
    for nursery in NURSERIES[:applications]:
        body = seed_body(nursery_id=nursery[0], criteria=["DUAL_INCOME"])
        assert client.post("/enterwait/request", json=body, headers=parent.headers).status_code == 201
    with counting(app) as statements:
        response = client.get("/enterwait", headers=parent.headers)
    assert response.status_code == 200
    listed = response.get_json()["applications"]
    assert len(listed) == applications and all(a["criteria"] and a["history"] and a["rank"] for a in listed)
    return statements


def test_the_parents_list_on_sqlite_sends_few_statements(make_app, account, queue):
    app = make_app("reqsys")
    add_nurseries(app)
    statements = list_after_applying(app, account("parents"))
    assert statements.total <= LIST, "\n".join(statements.texts)
    assert statements.kinds["SELECT"] == LIST - 1, "\n".join(statements.texts)


@pytest.mark.mysql
def test_the_parents_list_on_mariadb_sends_few_statements(make_app, mysql_database, account, queue):
    app = make_app("reqsys", {"SQLALCHEMY_DATABASE_URI": mysql_database("test_statements")})
    add_nurseries(app)
    statements = list_after_applying(app, account("parents"))
    assert statements.total <= LIST, "\n".join(statements.texts)
    assert statements.kinds["SELECT"] == LIST - 1, "\n".join(statements.texts)
