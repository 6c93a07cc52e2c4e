"""Transactional outbox: an event is written in the same transaction as the change it
describes, and a relay publishes it to SQS afterwards.

So a database write and its event never diverge: if SQS is unreachable the row waits
(and the request still succeeds); if the relay dies after sending but before marking,
the event is sent again and consumers, idempotent by event_id, ignore the repeat.

Each SQL app declares `class OutboxEvent(OutboxMixin, db.Model)`, calls
`add_event(session, OutboxEvent, envelope)` inside its unit of work and
`publish_after_commit(...)` after it, and exposes `scheduled_relay(create_app, db, OutboxEvent)` as the
Zappa schedule that publishes whatever is left.

A request's own events are written already claimed by it (see `add_event`), so right after its commit it
sends them and marks them published by id in one UPDATE, with no claim of its own; if it cannot (SQS
refuses, the process dies), its claim lapses after CLAIM_SECONDS and the scheduled relay sends them.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache

from sqlalchemy import DateTime, Integer, String, Text, bindparam, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.platform.logs import fields

log = logging.getLogger(__name__)

QUEUE_OUTPUT = "INTEGRATED_EVENTS_QUEUE_URL"  # where every waitlist event goes first
BATCH = 100
CLAIM_SECONDS = 120  # a relay's claim on rows lapses after this (it died mid-send): another relay sends them


class OutboxMixin:
    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=lambda: datetime.now(UTC).replace(tzinfo=None))
    published_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # which relay is sending the row, since when (see `claim`); cleared when a send fails
    claimed_by: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


_OWN = "outbox_own"  # session.info: the token of the session's claims and the rows it staged


def add_event(session: Session, model, envelope) -> None:
    """Stage `envelope` in the caller's transaction (committed with the change it describes), claimed by
    this session for `publish_after_commit` to send right after the commit; other relays leave it alone
    until the claim lapses."""
    own = session.info.setdefault(_OWN, {"token": uuid.uuid4().hex, "rows": []})
    row = model(event_id=envelope.event_id, body=envelope.to_json(), claimed_by=own["token"], claimed_at=_now())
    session.add(row)
    own["rows"].append((row, envelope))  # the envelope kept: the row expires on commit
    log.info("event staged in the outbox", extra=fields(envelope))


def claim(session: Session, model, limit: int = BATCH, stale_seconds: int = CLAIM_SECONDS) -> tuple[str, list]:
    """Claim up to `limit` pending rows for this relay alone; returns (token, the claimed rows in order).

    One conditional UPDATE marks the rows with a fresh token, only where nobody holds them (or a holder's
    claim is older than `stale_seconds`: it died); the rows are then read back by token. Two relays at
    the same moment therefore never both get a row, on SQLite (which ignores FOR UPDATE / SKIP LOCKED)
    as on MySQL. The claim is committed at once so that other relays see it.
    """
    from sqlalchemy import or_, update

    now = _now()
    free = or_(model.claimed_by.is_(None), model.claimed_at < now - timedelta(seconds=stale_seconds))
    ids = session.scalars(select(model.id).where(model.published_at.is_(None), free)
                          .order_by(model.id).limit(limit)).all()
    if not ids:
        session.rollback()
        return "", []
    token = uuid.uuid4().hex
    session.execute(update(model).where(model.id.in_(ids), model.published_at.is_(None), free)
                    .values(claimed_by=token, claimed_at=now).execution_options(synchronize_session=False))
    session.commit()
    rows = session.scalars(select(model).where(model.claimed_by == token).order_by(model.id)).all()
    return token, list(rows)


def relay(session: Session, model, queue_url: str, limit: int = BATCH) -> int:
    """Publish pending events in order; returns how many were published.

    Rows are claimed first (`claim`), so two relays never send the same row; events SQS refuses are
    let go again for the next run.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from shared.platform.events import Envelope, PublishError, publish_batch

    token, rows = claim(session, model, limit)
    if not rows:
        return 0
    envelopes = [Envelope.from_json(row.body) for row in rows]
    try:
        sent = set(publish_batch(queue_url, envelopes))
    except PublishError as err:
        sent = {row.event_id for row in rows} - set(err.failed_event_ids)
    except (BotoCoreError, ClientError):
        log.warning("outbox relay: SQS unreachable, %d event(s) wait for the next run", len(rows))
        sent = set()
    from sqlalchemy import update

    ours = [model.claimed_by == token]  # if our claim lapsed and another relay took a row, it decides
    ids = [row.id for row in rows]
    sent_ids = [row.id for row in rows if row.event_id in sent]
    session.execute(update(model).where(model.id.in_(ids), *ours).values(attempts=model.attempts + 1)
                    .execution_options(synchronize_session=False))
    if sent_ids:
        session.execute(update(model).where(model.id.in_(sent_ids), *ours).values(published_at=_now())
                        .execution_options(synchronize_session=False))
    unsent = [i for i in ids if i not in set(sent_ids)]
    if unsent:
        session.execute(update(model).where(model.id.in_(unsent), *ours).values(claimed_by=None, claimed_at=None)
                        .execution_options(synchronize_session=False))
    session.commit()
    for row in rows:
        if row.event_id in sent:
            log.info("event relayed to the queue", extra={"correlation_id": row.event_id})
    return len(sent)


def pending(session: Session, model) -> int:
    """How many events still wait for the relay."""
    from sqlalchemy import func

    return session.scalar(select(func.count()).select_from(model).where(model.published_at.is_(None))) or 0


def relay_pending(session: Session, model, queue_url: str, max_batches: int = 10) -> int:
    """Relay batch after batch until nothing is pending (or `max_batches` ran); returns how many were sent."""
    total = 0
    for _ in range(max_batches):
        sent = relay(session, model, queue_url)
        total += sent
        if sent < BATCH:
            break
    return total


def publish_after_commit(session: Session, model, settings) -> int:
    """The fast path right after a commit: send the events this session staged (claimed by it), then mark
    them published by id, or let go of those SQS refused so the next relay run sends them. Anything left
    (the process died, the database did not answer) keeps its claim until it lapses: nothing is lost."""
    from sqlalchemy import inspect

    own = session.info.pop(_OWN, None)
    # rows of a rolled-back transaction were never written: only the persistent ones exist
    rows = [(inspect(row).identity[0], envelope) for row, envelope in (own or {}).get("rows", ())
            if inspect(row).persistent]
    if not rows:
        return 0
    try:
        queue_url = settings.resource(QUEUE_OUTPUT)
    except KeyError:
        log.warning("%s is not configured: events wait in the outbox", QUEUE_OUTPUT)
        queue_url = None
    try:
        return _send_own(session, model, own["token"], rows, queue_url)
    except Exception:
        log.warning("publishing right after the commit failed; the scheduled relay will retry", exc_info=True)
        session.rollback()
        return 0


def _send_own(session: Session, model, token: str, rows: list[tuple[int, object]], queue_url: str | None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from shared.platform.events import PublishError, publish_batch

    sent: set[str] = set()
    if queue_url:
        try:
            sent = set(publish_batch(queue_url, [envelope for _, envelope in rows]))
        except PublishError as err:
            sent = {envelope.event_id for _, envelope in rows} - set(err.failed_event_ids)
        except (BotoCoreError, ClientError):
            log.warning("outbox: SQS unreachable, %d event(s) wait for the relay", len(rows))
    published, let_go = _marks(model.__table__)
    sent_ids = [row_id for row_id, envelope in rows if envelope.event_id in sent]
    unsent = [row_id for row_id, envelope in rows if envelope.event_id not in sent]
    connection = session.connection()
    if sent_ids:
        connection.execute(published, {"ids": sent_ids, "token": token, "now": _now()})
    if unsent:
        connection.execute(let_go, {"ids": unsent, "token": token, "tried": 1 if queue_url else 0})
    session.commit()
    for _, envelope in rows:
        if envelope.event_id in sent:
            log.info("event relayed to the queue", extra={"correlation_id": envelope.event_id})
    return len(sent)


@cache
def _marks(table):
    """The UPDATEs after a request's send (published; let go), built once per outbox table, so SQLAlchemy
    computes their cache keys once. Core statements: nothing here concerns the session's objects; only rows
    still claimed by the request's token change (a relay that took a lapsed claim decides)."""
    ids, ours = table.c.id.in_(bindparam("ids", expanding=True)), table.c.claimed_by == bindparam("token")
    published = table.update().where(ids, ours).values(published_at=bindparam("now"), attempts=table.c.attempts + 1)
    let_go = table.update().where(ids, ours).values(claimed_by=None, claimed_at=None,
                                                    attempts=table.c.attempts + bindparam("tried"))
    return published, let_go


def scheduled_relay(create_app, db, model):
    """The Zappa schedule (`expression: rate(1 minute)`) that publishes an app's pending events.

    The app hands in its factory, its SQLAlchemy object and its outbox model; the app is built once per
    process (shared.platform.db.scheduled_job). Raises if the queue is not configured, so a
    misconfigured relay fails loudly.
    """
    from flask import current_app

    from shared.platform.db import scheduled_job

    def job() -> int:
        queue_url = current_app.config["SETTINGS"].resource(QUEUE_OUTPUT)
        sent = relay_pending(db.session, model, queue_url)
        waiting = pending(db.session, model)
        if sent or waiting:
            log.info("%s outbox relay: %d sent, %d still pending", current_app.name, sent, waiting)
        return sent

    return scheduled_job(create_app, job)
