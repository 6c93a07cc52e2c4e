"""The waitlist's database paths on MariaDB/MySQL (row locks, SKIP LOCKED outbox relay, utf8mb4)."""

import pytest

from tests.test_waitlist_e2e import apply_and_decide, make_system  # noqa: F401 - fixture

pytestmark = pytest.mark.mysql


@pytest.mark.parametrize(("decision", "status", "code"), [("accept", "ACCEPTED", 2), ("reject", "REJECTED", 88)])
def test_the_whole_flow_on_mysql(make_system, mysql_database, decision, status, code):  # noqa: F811
    system = make_system({"reqsys": mysql_database("test_reqsys"), "childsys": mysql_database("test_childsys")})
    assert system.reqsys.application.config["SQLALCHEMY_DATABASE_URI"].startswith("mysql+pymysql:")
    apply_and_decide(system, decision, status, code)
