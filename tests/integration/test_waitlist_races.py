"""Every decision is decided once, on SQLite and on MariaDB alike: requests racing in real threads (each
with its own app and so its own connections) against the same database, no mocks.

- two staff accepts of one application at once: one offer, one 409, one event, one audit row;
- eight accepts into six free places: six offers, free places never below zero;
- a parent's confirmation racing the expiry schedule: exactly one of ENROLLED or EXPIRED, one event;
- confirmations of one child's offers at two daycares at once: one enrolment.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from shared.platform.auth import Identity
from shared.platform.errors import ApiError
from shared.platform.events import Envelope, EventType

STAFF = Identity("staff-sub", "staff@example.com", "", ("staff",), "A00017", 0)
NEXT_MARCH = f"{datetime.now(UTC).year + 1}-03"


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def database(request, tmp_path):
    """A fresh database URL: an SQLite file, or (TEST_MYSQL_URL set) a MariaDB database."""
    name = f"races_{uuid.uuid4().hex[:8]}"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / name}.db"
    return request.getfixturevalue("mysql_database")(f"test_{name}")


@pytest.fixture
def apps(make_app, database):
    """apps(name, n) -> n apps of one kind on the test's database (the first one migrates it)."""

    def make(app_name: str, n: int):
        made = [make_app(app_name, {"SQLALCHEMY_DATABASE_URI": database}, migrate=not i) for i in range(n)]
        if app_name == "reqsys":
            from tests.waitlist_helpers import add_nurseries

            add_nurseries(made[0])
        return made

    return make


def at_once(*calls):
    """Run the calls in threads released together; each one's result, or the ApiError it raised as
    (status, code)."""
    start, results = threading.Barrier(len(calls)), [None] * len(calls)

    def run(i):
        start.wait()
        try:
            results[i] = calls[i]()
        except ApiError as err:
            results[i] = (err.status, err.code)
        except Exception as err:  # noqa: BLE001 - the test shows what escaped
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def in_context(app, work):
    def run():
        with app.app_context():
            return work()

    return run


# --- childsys: staff decisions ---------------------------------------------------------------------------


def waiting_child(app, **changes) -> dict:
    """A REQUEST from reqsys applied in childsys; the body."""
    from childsys import services
    from tests.waitlist_helpers import seed_body

    body = seed_body(desired_start=NEXT_MARCH, **changes)
    with app.app_context():
        assert services.apply_sync(Envelope(type="REQUEST", application=body)) == "applied"
    return body


def offer(app, body):
    from childsys import services

    def run():
        services.decide(STAFF, body, EventType.OFFER)
        return 200

    return in_context(app, run)


def childsys_counts(app, request_id: str) -> tuple[int, int, int]:
    """(version, audit rows of offers, OFFER events in the outbox) of one application."""
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
        with engine.connect() as conn:
            app_id, version = conn.execute(sa.text("SELECT id, version FROM applications WHERE request_id = :r"),
                                           {"r": request_id}).one()
            audit = conn.execute(sa.text("SELECT COUNT(*) FROM application_history WHERE application_id = :i "
                                         "AND type = 'OFFER'"), {"i": app_id}).scalar_one()
            events = conn.execute(sa.text("SELECT body FROM outbox_events")).scalars().all()
    offers = [e for e in map(Envelope.from_json, events) if e.type == "OFFER" and e.request_id == request_id]
    return version, audit, len(offers)


def test_two_accepts_at_once_make_one_offer_one_event_one_audit_row(apps, queue):
    first, second = apps("childsys", 2)
    for _ in range(5):  # threads do not always collide: several rounds
        body = waiting_child(first)
        answers = at_once(offer(first, body), offer(second, body))
        assert answers.count(200) == 1, answers
        loser = answers[1 - answers.index(200)]
        assert loser[0] == 409 and loser[1] in ("changed_meanwhile", "transition_not_allowed"), answers
        # one offer: version 2, one audit row, one event (so one email)
        assert childsys_counts(first, body["child_id"] + "A00017") == (2, 1, 1)


def test_eight_accepts_into_six_free_places_make_six_offers(apps, queue):
    from childsys import capacity

    made = apps("childsys", 8)
    bodies = [waiting_child(made[0]) for _ in range(8)]
    with made[0].app_context():
        from childsys.models import Application, db

        klass = db.session.scalars(sa.select(Application.age_class)).first()
        capacity.set_places(STAFF, "A00017", {klass: 6})

    answers = at_once(*(offer(app, body) for app, body in zip(made, bodies, strict=True)))

    assert answers.count(200) == 6, answers
    assert sorted(a for a in answers if a != 200) == [(409, "class_full")] * 2, answers
    with made[0].app_context():
        [places] = capacity.class_places("A00017", only=klass)
        assert (places.places, places.offered, places.free) == (6, 6, 0)


# --- reqsys: the parent's answers ------------------------------------------------------------------------


def parent(n: int = 0) -> Identity:
    return Identity(f"parent-sub-{uuid.uuid4().hex[:6]}-{n}", f"parent{n}@example.com", "", ("parents",), None, 0)


def applied_and_offered(app, who: Identity, body: dict, offered_at: datetime) -> None:
    from reqsys import services
    from shared.waitlist.calendar import offer_deadline

    with app.test_request_context():
        services.apply(who, body)
        request_id = services.own_application(who, services.ApplicationIds(**body)).request_id
        envelope = Envelope(type="OFFER", version=2, occurred_at=offered_at, actor="staff@example.com",
                            application={**body, "request_id": request_id,
                                         "offer_expires_at": offer_deadline(offered_at, 7).isoformat()})
        assert services.apply_sync(envelope) == "applied"


def reqsys_rows(app, who: Identity, child_id: str) -> list[tuple[str, str, list[str]]]:
    """(nursery, status, [event types in the outbox after the offer]) of the parent's child's applications."""
    from reqsys.models import Application, OutboxEvent, db
    from shared.waitlist.rules import Status

    with app.app_context():
        rows = db.session.scalars(sa.select(Application).where(
            Application.parent_sub == who.sub, Application.child_id == child_id).order_by(Application.nursery_id))
        events = [Envelope.from_json(body) for body in db.session.scalars(sa.select(OutboxEvent.body))]
        return [(a.nursery_id, Status(a.status).name,
                 [str(e.type) for e in events if e.request_id == a.request_id and e.type != "REQUEST"])
                for a in rows]


def test_a_confirmation_racing_the_expiry_is_decided_once(apps, queue):
    from reqsys import offers

    ours, schedule = apps("reqsys", 2)
    outcomes = set()
    for round_ in range(12):
        from tests.waitlist_helpers import seed_body

        who, body = parent(round_), seed_body()
        offered_at = datetime.now(UTC) - timedelta(days=3)
        applied_and_offered(ours, who, body, offered_at)
        from shared.waitlist.calendar import offer_deadline

        deadline = offer_deadline(offered_at, 7).replace(tzinfo=UTC)

        def confirm(who=who, body=body, deadline=deadline):
            with ours.test_request_context():
                offers.confirm(who, body, now=deadline - timedelta(minutes=1))
                return "confirmed"

        def expire(deadline=deadline):
            with schedule.app_context():
                return offers.expire_due((deadline + timedelta(seconds=1)).replace(tzinfo=None))

        answer, expired = at_once(confirm, expire)

        [(_, status, events)] = reqsys_rows(ours, who, body["child_id"])
        assert status in ("ENROLLED", "EXPIRED")
        if status == "ENROLLED":
            assert (answer, expired, events) == ("confirmed", 0, ["CONFIRM"])
        else:
            assert answer[0] == 409 and expired == 1 and events == ["EXPIRE"], (answer, expired, events)
        outcomes.add(status)


def test_two_confirmations_of_one_child_at_two_daycares_make_one_enrolment(apps, queue):
    from reqsys import offers
    from reqsys.models import Child, db
    from tests.waitlist_helpers import seed_body

    first, second = apps("reqsys", 2)
    for round_ in range(5):
        who, body = parent(round_), seed_body()
        for nursery in ("A00017", "A00018"):
            applied_and_offered(first, who, {**body, "nursery_id": nursery}, datetime.now(UTC))

        def confirm(app, nursery, who=who, body=body):
            def run():
                with app.test_request_context():
                    offers.confirm(who, {**body, "nursery_id": nursery})
                    return "confirmed"
            return run

        answers = at_once(confirm(first, "A00017"), confirm(second, "A00018"))

        assert sorted(answers, key=str).count("confirmed") == 1, answers
        loser = next(a for a in answers if a != "confirmed")
        assert loser[0] == 409, answers
        rows = reqsys_rows(first, who, body["child_id"])
        assert sorted(status for _, status, _ in rows) == ["ENROLLED", "WITHDRAWN"]
        assert sorted(events for _, _, events in rows) == [["CONFIRM"], ["WITHDRAW"]]
        enrolled = next(n for n, status, _ in rows if status == "ENROLLED")
        with first.app_context():
            claim = db.session.scalars(sa.select(Child.enrolled_request_id).where(
                Child.parent_sub == who.sub, Child.child_id == body["child_id"])).one()
            assert claim is not None and enrolled in claim


def test_confirming_elsewhere_moves_an_enrolled_child(apps, queue):
    """A child enrolled at one daycare (which may wait at two others) and confirming an offer at another moves:
    the old enrolment is withdrawn in the same transaction, never two enrolments."""
    from reqsys import offers
    from tests.waitlist_helpers import seed_body

    [app] = apps("reqsys", 1)
    who, body = parent(), seed_body()
    applied_and_offered(app, who, body, datetime.now(UTC))
    with app.test_request_context():
        offers.confirm(who, body)
    applied_and_offered(app, who, {**body, "nursery_id": "A00018"}, datetime.now(UTC))
    with app.test_request_context():
        _, withdrawn = offers.confirm(who, {**body, "nursery_id": "A00018"})
        assert [w.nursery_id for w in withdrawn] == ["A00017"]
    assert [(n, s) for n, s, _ in reqsys_rows(app, who, body["child_id"])] == [
        ("A00017", "WITHDRAWN"), ("A00018", "ENROLLED")]
