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


def test_an_apply_holds_its_own_childs_rows_and_no_other_parents(make_app, mysql_database, account, queue, monkeypatch):
    """While one parent's apply is under way (its read done, its transaction open), another parent's apply at
    the same daycare goes through at once: the daycare, the queue's counts and the contact address are read
    beside the lock, not under it. A second application of the same child waits until the first is decided.
    (The children's ids sit apart in the index, with a third child's application between them: locking reads
    also lock the gap up to the next key, so neighbouring new ids would wait for each other.)"""
    import threading

    from reqsys.services import applications as service
    from tests.waitlist_helpers import add_nurseries, seed_body

    url = mysql_database("test_reqsys_apply_locks")
    apps = [make_app("reqsys", {"SQLALCHEMY_DATABASE_URI": url}, migrate=not i) for i in range(3)]
    add_nurseries(apps[0])
    parent, other_parent = account("parents"), account("parents")
    between = seed_body(child_id="202350000000000")
    assert apps[0].test_client().post("/enterwait/request", json=between,
                                      headers=account("parents").headers).status_code == 201
    holding, release = threading.Event(), threading.Event()
    stage = service.stage

    def stage_then_hold(*args, **kwargs):
        envelope = stage(*args, **kwargs)
        if threading.current_thread().name == "holder":
            holding.set()
            release.wait(30)
        return envelope

    monkeypatch.setattr(service, "stage", stage_then_hold)
    body, answers = seed_body(child_id="202300000000001"), {}

    def start(name, app, who, json):
        def post():
            answers[name] = app.test_client().post("/enterwait/request", json=json, headers=who.headers)

        thread = threading.Thread(target=post, name=name)
        thread.start()
        return thread

    holder = start("holder", apps[0], parent, body)
    assert holding.wait(30)
    same_child = start("same child", apps[1], parent, {**body, "nursery_id": "A00018"})
    other = start("other parent", apps[2], other_parent, seed_body(child_id="202399999999999"))  # same daycare

    other.join(10)
    assert not other.is_alive(), "another parent's apply at the daycare waited for this one"
    assert answers["other parent"].status_code == 201
    assert same_child.is_alive(), "the same child's second application did not wait for the first"

    release.set()
    holder.join(30)
    same_child.join(30)
    assert answers["holder"].status_code == 201
    assert answers["same child"].status_code == 201
