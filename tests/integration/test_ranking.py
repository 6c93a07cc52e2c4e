"""Queue places come from one window query and agree with the rank's definition (1 + the waiting
applications ahead in rank order) on random data, ties included; the admin's list pages through
every application exactly once."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from shared.platform.auth import Identity
from shared.waitlist.ranking import arrival_counts, queue_places
from shared.waitlist.rules import Status

DAYCARES = ("A00017", "B00002", "C00003")


def reference_rank(rows, row) -> int:
    """The definition: 1 + how many waiting applications at the same daycare come first in rank order."""
    def key(r):
        return (r.priority_tier, -r.score, r.applied_at, r.request_id)

    return 1 + sum(1 for other in rows if other.nursery_id == row.nursery_id
                   and other.status == Status.REQUESTED.code and key(other) < key(row))


def fill(app, count: int, seed: int) -> None:
    from reqsys.models import Application, Nursery, db

    rng = random.Random(seed)
    base = datetime(2026, 11, 1, 9, 0)
    with app.app_context():
        for nursery_id in DAYCARES:
            db.session.merge(Nursery(nursery_id=nursery_id, name=nursery_id, address="서울", area="마포구"))
        for i in range(count):
            nursery_id = rng.choice(DAYCARES)
            db.session.add(Application(
                request_id=f"C{i:05d}{nursery_id}", parent_sub=f"parent-{i % 7}", child_id=f"C{i:05d}",
                child_name="아이", child_birthday="20230101", user_id="u", parent_name="부모",
                parent_tel="010-1234-5678", parent_address="서울", parent_postcode="04001",
                parent_email="p@example.com", nursery_id=nursery_id, desired_start="2027-03", age_class=3,
                status=rng.choice([Status.REQUESTED.code] * 4 + [Status.CANCELLED.code, Status.ACCEPTED.code]),
                version=1,
                # few distinct values, so ties on tier, score and time are common
                priority_tier=rng.choice([1, 2]), score=rng.choice([0, 100, 200]),
                applied_at=base + timedelta(minutes=rng.choice([0, 1, 2])),
                created_at=base + timedelta(seconds=rng.choice(range(30)))))
        db.session.commit()


@pytest.fixture
def reqsys_app(make_app):
    return make_app("reqsys")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_places_agree_with_the_definition_on_random_data(reqsys_app, seed):
    from reqsys.models import Application, db

    fill(reqsys_app, 120, seed)
    with reqsys_app.app_context():
        rows = list(db.session.scalars(db.select(Application)))
        places = queue_places(db.session, Application, rows)
        waiting = [r for r in rows if r.status == Status.REQUESTED.code]
        assert set(places) == {r.id for r in waiting}, "a place for every waiting application, none for others"
        for row in waiting:
            queue_length = sum(1 for r in waiting if r.nursery_id == row.nursery_id)
            assert places[row.id].rank == reference_rank(rows, row), row.request_id
            assert places[row.id].waiting == queue_length


@pytest.mark.parametrize("seed", [4, 5])
def test_a_place_read_before_the_write_is_the_place_after_it(reqsys_app, seed):
    """apply reads a new application's place with its first query (arrival_counts), before writing the row:
    it is the place queue_places gives the row once written, ties on tier, score and time included."""
    from reqsys.models import Application, db

    fill(reqsys_app, 120, seed)
    rng = random.Random(seed)
    with reqsys_app.app_context():
        template = db.session.scalars(db.select(Application)).first()
        for i in range(20):
            nursery_id = rng.choice(DAYCARES)
            fields = (rng.choice([1, 2]), rng.choice([0, 100, 200]),
                      datetime(2026, 11, 1, 9, rng.choice([0, 1, 2, 3])), f"C{rng.randint(0, 200):05d}{i}")
            ahead, waiting = arrival_counts(Application, nursery_id, *fields)
            before = db.session.execute(db.select(ahead, waiting)).one()
            row = Application(**{c.key: getattr(template, c.key) for c in Application.__table__.columns
                                 if c.key != "id"})
            row.nursery_id, row.status = nursery_id, Status.REQUESTED.code
            row.priority_tier, row.score, row.applied_at, row.request_id = fields
            row.child_id = row.request_id
            db.session.add(row)
            db.session.flush()
            place = queue_places(db.session, Application, [row])[row.id]
            assert (place.rank, place.waiting) == (before[0] + 1, before[1] + 1), fields


@pytest.mark.parametrize("database", ["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def test_a_parents_list_shows_the_places_of_the_definition(make_app, request, database):
    """The parent's list joins the places to its rows in its one query: the same places as the definition."""
    from reqsys import services
    from reqsys.models import Application, db

    config = {"SQLALCHEMY_DATABASE_URI": request.getfixturevalue("mysql_database")("test_ranking")} \
        if database == "mysql" else {}
    app = make_app("reqsys", config)
    fill(app, 120, 8)
    with app.app_context():
        rows = list(db.session.scalars(db.select(Application)))
        for k in range(7):
            parent = Identity(sub=f"parent-{k}", email="", name="", groups=("parents",), daycare_id=None,
                              expires_at=0)
            listed = services.list_applications(parent)
            assert sorted(a.id for a, _ in listed) == sorted(r.id for r in rows if r.parent_sub == parent.sub)
            for application, place in listed:
                if application.status != Status.REQUESTED.code:
                    assert place is None
                    continue
                queue_length = sum(1 for r in rows if r.nursery_id == application.nursery_id
                                   and r.status == Status.REQUESTED.code)
                assert (place.rank, place.waiting) == (reference_rank(rows, application), queue_length)


def test_the_admin_list_pages_through_every_application_once(reqsys_app):
    from reqsys import services
    from reqsys.models import Application, db

    fill(reqsys_app, 130, 7)  # many share a created_at second: the cursor must break ties by id
    admin = Identity(sub="admin", email="admin@example.com", name="", groups=("admins",), daycare_id=None,
                     expires_at=0)
    seen, cursor, pages = [], None, 0
    with reqsys_app.app_context():
        while True:
            rows, cursor = services.list_all_applications(admin, cursor, limit=50)
            seen += [application.id for application, _rank in rows]
            pages += 1
            if cursor is None:
                break
        everyone = list(db.session.scalars(db.select(Application.id)))
    assert pages == 3
    assert sorted(seen) == sorted(everyone) and len(seen) == len(set(seen))


def test_a_parent_may_not_list_everyone(reqsys_app):
    from reqsys import services
    from shared.platform.errors import Forbidden

    parent = Identity(sub="p", email="p@example.com", name="", groups=("parents",), daycare_id=None, expires_at=0)
    with reqsys_app.app_context(), pytest.raises(Forbidden):
        services.list_all_applications(parent)


def test_a_made_up_cursor_is_a_400(reqsys_app, make_user, bearer):
    client = reqsys_app.test_client()
    headers = bearer(make_user(groups=("admins",)).email)
    assert client.get("/enterwait?cursor=2026-01-01T00:00:00_1", headers=headers).status_code == 200
    response = client.get("/enterwait?cursor=nonsense", headers=headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["fields"] == {"cursor": "is not a cursor this list gave"}
