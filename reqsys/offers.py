"""Offers, the parent's side: confirm or decline before the deadline, and the schedule that expires
unanswered offers and reminds parents before their deadline.

reqsys owns the answer and the deadline (childsys learns of both through the pipeline). A
confirmation racing the expiry is decided by the application's row lock: whichever takes it
first wins, and the other finds the offer no longer open (the schedule skips rows a parent
holds at that moment and takes them on its next run).

Confirming enrols the child (CONFIRM, which childsys turns into an enrolment) and withdraws the
child's other active applications (a WITHDRAW each, and an email to the parent for each).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import select

from reqsys.models import Application, db
from reqsys.services import (
    ApplicationIds,
    actor,
    change,
    of_child,
    own_locked,
    publish_pending,
    stage,
)
from shared.platform.auth import Identity
from shared.platform.clock import iso, naive_utc
from shared.platform.db import retry_on_race
from shared.platform.errors import Conflict
from shared.platform.events import EventType
from shared.platform.payloads import validate
from shared.waitlist.rules import ACTIVE, SYSTEM, Status

log = logging.getLogger(__name__)
BATCH = 200  # offers handled per scheduled run (the next run takes the rest)


class OfferExpired(Conflict):
    def __init__(self, deadline: datetime):
        super().__init__(f"The offer expired at {iso(deadline)}; the place goes to the next child waiting")
        self.code = "offer_expired"


@retry_on_race(db)
def confirm(identity: Identity, data: ApplicationIds | dict, now: datetime | None = None
            ) -> tuple[Application, list[Application]]:
    """Accept the offer: the child is enrolled, and the child's other active applications are withdrawn.

    Returns the application and the withdrawn ones. 409 unless an offer is open; an offer past its
    deadline that the schedule has not reached yet is expired here, and refused.
    """
    application = _open_offer(identity, data, now)
    change(application, EventType.CONFIRM)
    stage(application, EventType.CONFIRM, actor(identity))
    withdrawn = db.session.scalars(select(Application).where(
        *of_child(application.parent_sub, application.child_id), Application.id != application.id,
        Application.status.in_([s.code for s in ACTIVE])).order_by(Application.id).with_for_update()
        .execution_options(populate_existing=True)).all()
    nursery_name = application.nursery.name if application.nursery else application.nursery_id
    for other in withdrawn:
        change(other, EventType.WITHDRAW)
        other.reason = nursery_name  # where the child is enrolled (the pages and emails say so)
        stage(other, EventType.WITHDRAW, SYSTEM, note=nursery_name, reason=nursery_name,
              enrolled_nursery_name=nursery_name)
    db.session.commit()
    publish_pending()
    return application, list(withdrawn)


@retry_on_race(db)
def decline(identity: Identity, data: ApplicationIds | dict, now: datetime | None = None) -> Application:
    """Turn the offer down: the place goes back to the daycare for the next child in rank."""
    application = _open_offer(identity, data, now)
    change(application, EventType.DECLINE)
    stage(application, EventType.DECLINE, actor(identity))
    db.session.commit()
    publish_pending()
    return application


def _open_offer(identity: Identity, data, now: datetime | None) -> Application:
    """The parent's application with an offer still open, locked (409 otherwise)."""
    application = own_locked(identity, validate(ApplicationIds, data))
    now = naive_utc(now or datetime.now(UTC))
    if application.status_enum is Status.ACCEPTED and application.offer_expires_at <= now:
        deadline = application.offer_expires_at
        _expire(application)
        db.session.commit()
        publish_pending()
        raise OfferExpired(deadline)
    if application.status_enum is not Status.ACCEPTED:
        db.session.rollback()
        raise Conflict("There is no open offer on this application", "no_open_offer")
    return application


def _expire(application: Application) -> None:
    change(application, EventType.EXPIRE)
    stage(application, EventType.EXPIRE, SYSTEM)


# --- the schedule (reqsys.schedule.handler) ----------------------------------------------------------------


def run_deadlines(now: datetime | None = None) -> dict[str, int]:
    """Expire the offers whose deadline has passed, remind the parents whose deadline is near (once),
    then publish the events. Returns how many of each."""
    now = naive_utc(now or datetime.now(UTC))
    done = {"expired": expire_due(now), "reminded": remind_due(now)}
    publish_pending()
    if any(done.values()):
        log.info("offer deadlines: %(expired)d expired, %(reminded)d reminded", done)
    return done


def _due(*conditions) -> list[str]:
    return list(db.session.scalars(select(Application.request_id).where(
        Application.status == Status.ACCEPTED.code, *conditions).order_by(Application.offer_expires_at).limit(BATCH)))


def _lock_skipping(request_id: str) -> Application | None:
    """The row, locked, or None while someone else holds it (a parent answering right now)."""
    return db.session.scalars(select(Application).where(Application.request_id == request_id)
                              .with_for_update(skip_locked=True).execution_options(populate_existing=True)).first()


def expire_due(now: datetime) -> int:
    expired = 0
    for request_id in _due(Application.offer_expires_at <= now):
        application = _lock_skipping(request_id)
        if application is None or application.status_enum is not Status.ACCEPTED \
                or application.offer_expires_at > now:  # answered in the meantime
            db.session.rollback()
            continue
        _expire(application)
        db.session.commit()
        expired += 1
    return expired


def remind_due(now: datetime) -> int:
    window = timedelta(days=current_app.config["SETTINGS"].offer_reminder_days)
    reminded = 0
    for request_id in _due(Application.reminded_at.is_(None), Application.offer_expires_at > now,
                           Application.offer_expires_at <= now + window):
        application = _lock_skipping(request_id)
        if application is None or application.status_enum is not Status.ACCEPTED or application.reminded_at:
            db.session.rollback()
            continue
        application.reminded_at = now
        stage(application, EventType.REMIND, SYSTEM, offer_expires_at=iso(application.offer_expires_at))
        db.session.commit()
        reminded += 1
    return reminded
