"""The waitlist's database paths on MariaDB/MySQL (row locks, SKIP LOCKED outbox relay, utf8mb4)."""

import pytest

from tests.waitlist_system import apply_and_decide

pytestmark = pytest.mark.mysql


@pytest.mark.parametrize(("decision", "status", "code"), [("accept", "ACCEPTED", 2), ("reject", "REJECTED", 88)])
def test_the_whole_flow_on_mysql(make_system, mysql_database, decision, status, code):  # noqa: F811
    system = make_system({"reqsys": mysql_database("test_reqsys"), "childsys": mysql_database("test_childsys")})
    assert system.reqsys.application.config["SQLALCHEMY_DATABASE_URI"].startswith("mysql+pymysql:")
    apply_and_decide(system, decision, status, code)


def at_once(*calls):
    """Run the calls in threads released together; their results in order."""
    import threading

    start, results = threading.Barrier(len(calls)), [None] * len(calls)

    def run(i):
        start.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_a_parent_acting_twice_at_once_gets_answers_not_errors(make_app, mysql_database, account, queue):
    """Two first applications of one child, and confirmations of offers at two daycares, sent at the same
    moment lock the same rows in different orders: MySQL rolls one back (a deadlock). It is run again, so
    both applications are made, and exactly one confirmation wins while the other is told the offer is gone."""
    from tests.waitlist_helpers import add_nurseries, applications, offer, seed_body

    url = mysql_database("test_reqsys_at_once")
    apps = [make_app("reqsys", {"SQLALCHEMY_DATABASE_URI": url}, migrate=not i) for i in range(2)]
    add_nurseries(apps[0])
    parent = account("parents")

    def post(app, path, body):
        return lambda: app.test_client().post(path, json=body, headers=parent.headers).status_code

    for _ in range(3):  # the threads do not always collide: three rounds make a deadlock all but certain
        body, daycares = seed_body(), ("A00017", "A00018")
        applied = at_once(*(post(app, "/enterwait/request", {**body, "nursery_id": n})
                            for app, n in zip(apps, daycares, strict=True)))
        assert applied == [201, 201]
        for nursery in daycares:
            offer(apps[0].test_client(), apps[0], {**body, "nursery_id": nursery})

        confirmed = at_once(*(post(app, "/enterwait/confirm", {**body, "nursery_id": n})
                              for app, n in zip(apps, daycares, strict=True)))

        assert sorted(confirmed) == [200, 409]
        statuses = sorted(a["status"] for a in applications(apps[0].test_client(), parent)
                          if a["child_id"] == body["child_id"])
        assert statuses == ["ENROLLED", "WITHDRAWN"]


def test_the_same_event_delivered_twice_at_once_applies_once(make_app, mysql_database):
    """Two forward deliveries of one event race: one applies it, the other answers "ignored" (not an error
    the pipeline would retry and log)."""
    import sqlalchemy as sa

    from shared.platform.events import Envelope
    from shared.platform.signing import sign
    from tests.waitlist_helpers import seed_body

    url = mysql_database("test_childsys_twice")
    apps = [make_app("childsys", {"SQLALCHEMY_DATABASE_URI": url}, migrate=not i) for i in range(2)]
    for _ in range(3):
        raw = Envelope(type="REQUEST", application=seed_body()).to_json().encode()
        headers = {"Content-Type": "application/json", **sign(apps[0].config["SETTINGS"].sync_secret, raw)}

        answers = at_once(*(lambda app=app, raw=raw, headers=headers: app.test_client().post(
            "/enterwait/request", data=raw, headers=headers) for app in apps))

        assert sorted(a.get_json()["status"] for a in answers) == ["applied", "ignored"]
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM application_history")).scalar_one() == 3
    engine.dispose()


def test_the_limit_holds_when_applications_arrive_at_once(make_app, mysql_database, account, queue):
    """A child waiting at one daycare sends three more applications at the same moment: two get in, the
    third finds the limit of three reached."""
    from tests.waitlist_helpers import add_nurseries, applications, seed_body

    url = mysql_database("test_reqsys_limit_at_once")
    apps = [make_app("reqsys", {"SQLALCHEMY_DATABASE_URI": url}, migrate=not i) for i in range(3)]
    add_nurseries(apps[0])
    parent = account("parents")
    for _ in range(2):
        body = seed_body()
        assert apps[0].test_client().post("/enterwait/request", json=body, headers=parent.headers).status_code == 201

        answers = at_once(*(lambda app=app, n=n, body=body: app.test_client().post(
            "/enterwait/request", json={**body, "nursery_id": n}, headers=parent.headers)
            for app, n in zip(apps, ("A00018", "A00021", "B00102"), strict=True)))

        assert sorted(a.status_code for a in answers) == [201, 201, 409]
        assert [a.get_json()["error"]["code"] for a in answers if a.status_code == 409] == ["limit_reached"]
        mine = [a for a in applications(apps[0].test_client(), parent) if a["child_id"] == body["child_id"]]
        assert len(mine) == 3
