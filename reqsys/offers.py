"""Offers, the parent's side: confirm or decline before the deadline, and the schedule that expires
unanswered offers and reminds parents before their deadline.

reqsys owns the answer and the deadline (childsys learns of both through the pipeline). A
confirmation racing the expiry is decided by one conditional change of the application (written
only at the version both read): exactly one of ENROLLED or EXPIRED, one event. MySQL's row lock
comes first (the schedule skips rows a parent holds at that moment and takes them on its next
run); on SQLite, which has none, the version decides.

Confirming enrols the child (CONFIRM, which childsys turns into an enrolment), claims the child's
one enrolment, and withdraws the child's other applications, an enrolment elsewhere too (a
WITHDRAW each, and an email to the parent for each).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm.exc import StaleDataError

from reqsys.models import Application, Child, db
from reqsys.services import (
    ApplicationIds,
    actor,
    change,
    of_child,
    own_application,
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
from shared.waitlist.settings import waitlist_settings

log = logging.getLogger(__name__)
BATCH = 200  # offers handled per scheduled run (the next run takes the rest)


class OfferExpired(Conflict):
    def __init__(self, deadline: datetime):
        super().__init__(f"The offer expired at {iso(deadline)}; the place goes to the next child waiting")
        self.code = "offer_expired"


@retry_on_race(db)
def confirm(identity: Identity, data: ApplicationIds | dict, now: datetime | None = None
            ) -> tuple[Application, list[Application]]:
    """Accept the offer: the child is enrolled, and the child's other applications are withdrawn (the
    active ones, and an enrolment elsewhere: a child moves, it is never enrolled twice).

    Returns the application and the withdrawn ones. 409 unless an offer is open; an offer past its
    deadline that the schedule has not reached yet is expired here, and refused. The child's enrolment is
    claimed by a conditional update of its row (`children.enrolled_request_id`, WHERE it is still what was
    read), and every application changed is written only at the version read: of two confirmations of
    one child at once (two daycares), one wins and the other gets 409 with nothing written.
    """
    ids = validate(ApplicationIds, data)
    named = own_application(identity, ids)
    child = _locked_child(identity, named.child_id)
    application = _open_offer(identity, ids, now)
    change(application, EventType.CONFIRM)
    stage(application, EventType.CONFIRM, actor(identity))
    _claim_enrolment(identity, application, child)
    withdrawn = db.session.scalars(select(Application).where(
        *of_child(application.parent_sub, application.child_id), Application.id != application.id,
        Application.status.in_(WITHDRAWN_ON_ENROLMENT)).order_by(Application.id).with_for_update()
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


WITHDRAWN_ON_ENROLMENT = [s.code for s in (*ACTIVE, Status.ENROLLED)]


def _locked_child(identity: Identity, child_id: str) -> Child | None:
    """The child's row, locked first (MySQL): confirmations of one child queue here, before any application
    row, so they do not deadlock; read afresh."""
    return db.session.scalars(select(Child).where(Child.parent_sub == identity.sub, Child.child_id == child_id)
                              .with_for_update().execution_options(populate_existing=True)).first()


def _claim_enrolment(identity: Identity, application: Application, child: Child | None) -> None:
    """Make this application the child's one enrolment, conditionally on the enrolment read: 409
    `changed_meanwhile` (nothing written) when another confirmation claimed the child meanwhile."""
    if child is None:  # an application from before children were registered with it: the row is made now
        db.session.add(Child(parent_sub=identity.sub, child_id=application.child_id, name=application.child_name,
                             birthday=datetime.strptime(application.child_birthday, "%Y%m%d").date(),
                             enrolled_request_id=application.request_id))
        return  # two at once: the unique key refuses the second insert (retry_on_race runs it again)
    read = Child.enrolled_request_id.is_(None) if child.enrolled_request_id is None \
        else Child.enrolled_request_id == child.enrolled_request_id
    claimed = db.session.execute(update(Child).where(Child.id == child.id, read).values(
        enrolled_request_id=application.request_id).execution_options(synchronize_session=False)).rowcount
    if claimed != 1:
        db.session.rollback()
        raise Conflict("The child's enrolment changed at the same time; reload and try again", "changed_meanwhile")


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
        if _committed(_expire, application):
            expired += 1
    return expired


def _committed(work, application: Application, *args) -> bool:
    """Make and commit the schedule's change of one offer; False (nothing written) when a parent's answer
    changed the row since it was read: the one conditional update decides between them."""
    try:
        work(application, *args)
        db.session.commit()
    except StaleDataError:
        db.session.rollback()
        log.info("offer deadlines: an offer was answered while being expired or reminded; left to the answer")
        return False
    return True


def _remind(application: Application, now: datetime) -> None:
    application.reminded_at = now
    stage(application, EventType.REMIND, SYSTEM, offer_expires_at=iso(application.offer_expires_at))


def remind_due(now: datetime) -> int:
    window = timedelta(days=waitlist_settings().offer_reminder_days)
    reminded = 0
    for request_id in _due(Application.reminded_at.is_(None), Application.offer_expires_at > now,
                           Application.offer_expires_at <= now + window):
        application = _lock_skipping(request_id)
        if application is None or application.status_enum is not Status.ACCEPTED or application.reminded_at:
            db.session.rollback()
            continue
        if _committed(_remind, application, now):
            reminded += 1
    return reminded
