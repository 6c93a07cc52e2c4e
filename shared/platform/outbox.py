"""Transactional outbox: an event is written in the same transaction as the change it
describes, and a relay publishes it to SQS afterwards.

So a database write and its event never diverge: if SQS is unreachable the row waits
(and the request still succeeds); if the relay dies after sending but before marking,
the event is sent again and consumers, idempotent by event_id, ignore the repeat.

Each SQL app declares `class OutboxEvent(OutboxMixin, db.Model)`, calls
`add_event(session, OutboxEvent, envelope)` inside its unit of work and
`publish_after_commit(...)` after it, and exposes `scheduled_relay(create_app, db, OutboxEvent)` as the
Zappa schedule that publishes whatever is left.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

log = logging.getLogger(__name__)

QUEUE_OUTPUT = "INTEGRATED_EVENTS_QUEUE_URL"  # where every waitlist event goes first
BATCH = 100


class OutboxMixin:
    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=lambda: datetime.now(UTC).replace(tzinfo=None))
    published_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


def add_event(session: Session, model, envelope) -> None:
    """Stage `envelope` in the caller's transaction (committed with the change it describes)."""
    session.add(model(event_id=envelope.event_id, body=envelope.to_json()))


def relay(session: Session, model, queue_url: str, limit: int = BATCH) -> int:
    """Publish pending events in order; returns how many were published.

    Rows are locked (SKIP LOCKED on MySQL) so two relays never send the same batch
    at once; events SQS refuses stay pending for the next run.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from shared.platform.events import Envelope, PublishError, publish_batch

    rows = session.scalars(
        select(model).where(model.published_at.is_(None)).order_by(model.id).limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        session.rollback()
        return 0
    envelopes = [Envelope.from_json(row.body) for row in rows]
    try:
        sent = set(publish_batch(queue_url, envelopes))
    except PublishError as err:
        sent = {row.event_id for row in rows} - set(err.failed_event_ids)
    except (BotoCoreError, ClientError):
        log.warning("outbox relay: SQS unreachable, %d event(s) wait for the next run", len(rows))
        sent = set()
    now = datetime.now(UTC).replace(tzinfo=None)
    for row in rows:
        row.attempts += 1
        if row.event_id in sent:
            row.published_at = now
    session.commit()
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
    """The fast path right after a commit: publish now if SQS answers; else the event waits for the relay."""
    try:
        queue_url = settings.resource(QUEUE_OUTPUT)
    except KeyError:
        log.warning("%s is not configured: events wait in the outbox", QUEUE_OUTPUT)
        return 0
    try:
        return relay_pending(session, model, queue_url, max_batches=1)
    except Exception:
        log.warning("publishing right after the commit failed; the scheduled relay will retry", exc_info=True)
        session.rollback()
        return 0


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
