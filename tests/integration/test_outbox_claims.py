"""Two outbox relays at the same moment send each row once (SQLite ignores FOR UPDATE / SKIP LOCKED, so the
relay claims rows with a conditional UPDATE), on SQLite and on MariaDB; a dead relay's claim lapses."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest

from shared.platform import events, outbox
from tests.pipeline_helpers import envelope

ROWS = 150


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def two_apps(request, make_app):
    """Two reqsys apps (two processes' worth of sessions and connections) over one database."""
    config = {}
    if request.param == "mysql":
        url = request.getfixturevalue("mysql_database")("test_outbox")
        config = {"SQLALCHEMY_DATABASE_URI": url}
    first = make_app("reqsys", config)
    config = config or {"SQLALCHEMY_DATABASE_URI": first.config["SQLALCHEMY_DATABASE_URI"]}
    return first, make_app("reqsys", config, migrate=False)


def stage(app, count: int) -> list[str]:
    from reqsys.models import OutboxEvent, db

    staged = [envelope("REQUEST") for _ in range(count)]
    with app.app_context():
        for env in staged:
            db.session.add(OutboxEvent(event_id=env.event_id, body=env.to_json()))  # waiting for a relay
        db.session.commit()
    return [env.event_id for env in staged]


@pytest.fixture
def sent(monkeypatch):
    """Every event id handed to SQS, counted; each send takes a moment so the relays overlap."""
    counted: Counter = Counter()
    real = events.publish_batch

    def slow_publish(queue_url, envelopes):
        envelopes = list(envelopes)
        time.sleep(0.2)
        counted.update(env.event_id for env in envelopes)
        return real(queue_url, envelopes)

    monkeypatch.setattr(events, "publish_batch", slow_publish)
    return counted


def test_two_relays_at_once_send_each_row_once(two_apps, queue, sent):
    from reqsys.models import OutboxEvent, db

    ids = stage(two_apps[0], ROWS)
    barrier, totals = threading.Barrier(2), [0, 0]

    def relay(i: int) -> None:
        with two_apps[i].app_context():
            barrier.wait()
            totals[i] = outbox.relay_pending(db.session, OutboxEvent, queue)
            db.session.remove()

    threads = [threading.Thread(target=relay, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(sent) == sorted(ids) and set(sent.values()) == {1}, "every row sent, none twice"
    assert sum(totals) == ROWS
    with two_apps[0].app_context():
        assert outbox.pending(db.session, OutboxEvent) == 0


def test_a_dead_relays_claim_lapses_and_a_refused_send_is_let_go(two_apps, queue, sent):
    from reqsys.models import OutboxEvent, db

    app = two_apps[0]
    [event_id] = stage(app, 1)
    with app.app_context():
        token, rows = outbox.claim(db.session, OutboxEvent)  # a relay that claims, then dies
        assert [row.event_id for row in rows] == [event_id] and token
        assert outbox.relay(db.session, OutboxEvent, queue) == 0, "held by the other relay"
        row = db.session.get(OutboxEvent, rows[0].id)
        row.claimed_at = row.claimed_at - timedelta(seconds=outbox.CLAIM_SECONDS + 1)
        db.session.commit()
        assert outbox.relay(db.session, OutboxEvent, queue) == 1, "the lapsed claim is taken over"
        assert sent[event_id] == 1

        [refused] = stage(app, 1)
        missing = queue.rsplit("/", 1)[0] + "/no-such-queue.fifo"
        assert outbox.relay(db.session, OutboxEvent, missing) == 0
        row = db.session.execute(db.select(OutboxEvent).filter_by(event_id=refused)).scalar_one()
        assert row.claimed_by is None and row.published_at is None, "let go for the next run"
        assert outbox.relay(db.session, OutboxEvent, queue) == 1


def test_a_requests_own_events_are_its_to_send_until_its_claim_lapses(two_apps, queue, sent):
    """A request stages its event claimed by itself; a relay running meanwhile leaves it alone, and if the
    request never sends it (the process died after its commit), the relay sends it once the claim lapses."""
    from reqsys.models import OutboxEvent, db

    app = two_apps[0]
    with app.app_context():
        event = envelope("REQUEST")
        outbox.add_event(db.session, OutboxEvent, event)
        db.session.commit()
        db.session.info.clear()  # the request dies before publishing
        assert outbox.relay(db.session, OutboxEvent, queue) == 0, "the request's own, for now"
        row = db.session.execute(db.select(OutboxEvent).filter_by(event_id=event.event_id)).scalar_one()
        row.claimed_at = row.claimed_at - timedelta(seconds=outbox.CLAIM_SECONDS + 1)
        db.session.commit()
        assert outbox.relay(db.session, OutboxEvent, queue) == 1, "the lapsed claim is taken over"
        assert sent[event.event_id] == 1
