"""Applications: apply (limits, start month, priority criteria), cancel and the live rank (the lists: lists.py).

Every state change bumps the application's version, adds a history row and stages its event in the
outbox in the same transaction; after the commit the outbox is relayed at once (best effort; the
scheduled relay in reqsys.relay catches up otherwise)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from flask import current_app
from sqlalchemy import and_, bindparam, literal, or_, select
from sqlalchemy.orm import make_transient_to_detached

from reqsys.models import (
    Application,
    ApplicationCriterion,
    ApplicationHistory,
    Child,
    ContactEmail,
    Nursery,
    OutboxEvent,
    db,
    utcnow,
)
from reqsys.services.children import COUNTED, child_usage, of_child, release_enrolment
from reqsys.services.contacts import ContactSeen, contact_code, notify_address, send_contact_code
from reqsys.services.schemas import MONTHS_AHEAD, SEED_FIELDS, ApplicationIds
from shared.platform.auth import Identity
from shared.platform.clock import aware, naive_utc
from shared.platform.db import retry_on_race
from shared.platform.errors import ApiError, Conflict, Forbidden, NotFound, ValidationFailed
from shared.platform.events import Envelope, EventType
from shared.platform.payloads import validate
from shared.waitlist.body import ApplicationBody, request_id_for
from shared.waitlist.calendar import add_months, age_class, default_start, parse_month, this_month
from shared.waitlist.criteria import (
    configured_criteria,
    declare_criteria,
    priority,
    update_priority,
)
from shared.waitlist.ranking import Place, arrival_counts, locked, locked_where, queue_places
from shared.waitlist.rules import MAX_ACTIVE, WAITING, Status, next_status


class LimitReached(ApiError):
    """409: the child already waits at as many daycares as allowed."""

    def __init__(self, limit: int, enrolled: bool):
        where = " (the limit while the child is enrolled at a daycare)" if enrolled else ""
        super().__init__(409, "limit_reached", f"This child already has {limit} active applications{where}, "
                         "the most allowed. Cancel one before applying to another daycare.")
        self.limit, self.enrolled = limit, enrolled


def _check_user_id(identity: Identity, user_id: str | None) -> None:
    """The parent is whoever the token or session says; a body naming anyone else is refused."""
    if user_id and user_id != identity.sub and (not identity.email or user_id.lower() != identity.email.lower()):
        raise Forbidden("user_id names another user")


def actor(identity: Identity) -> str:
    return identity.email or identity.sub


def own_locked(identity: Identity, ids: ApplicationIds) -> Application:
    """One of the parent's own applications, locked; 404 for anyone else's (its existence stays private).
    Named by its request_id, or by the child id and daycare, which are the account's own (unique per account)."""
    _check_user_id(identity, ids.user_id)
    if ids.request_id:
        application = locked(db.session, Application, ids.request_id)
    else:
        application = _own_row(identity, ids.child_id, ids.nursery_id)
    if application is None or application.parent_sub != identity.sub:
        db.session.rollback()
        raise NotFound("No such application")
    return application


def own_application(identity: Identity, ids: ApplicationIds) -> Application:
    """One of the parent's own applications as read (not locked); 404 for anyone else's."""
    _check_user_id(identity, ids.user_id)
    where = (Application.request_id == ids.request_id,) if ids.request_id else (
        Application.parent_sub == identity.sub, Application.child_id == ids.child_id,
        Application.nursery_id == ids.nursery_id)
    application = db.session.scalars(select(Application).where(*where)).first()
    if application is None or application.parent_sub != identity.sub:
        raise NotFound("No such application")
    return application


def _own_row(identity: Identity, child_id: str, nursery_id: str) -> Application | None:
    """The account's application for its child at a daycare, locked (another account's child of the same
    id is another child: never found here, so it neither blocks nor reveals anything)."""
    return locked_where(db.session, Application, Application.parent_sub == identity.sub,
                        Application.child_id == child_id, Application.nursery_id == nursery_id)


def record(application: Application, envelope: Envelope, note: str | None = None,
           criterion: str | None = None) -> None:
    application.updated_at = utcnow()
    db.session.add(ApplicationHistory(
        application=application, event_id=envelope.event_id, type=str(envelope.type), status=application.status,
        version=application.version, occurred_at=naive_utc(envelope.occurred_at), note=note, criterion=criterion))


def stage(application: Application, event_type: EventType, by: str, now: datetime | None = None,
          note: str | None = None, about: str | None = None, **extra) -> Envelope:
    """History row and outbox event of a change made here, in the current transaction; `extra` joins
    the event's application body, `about` names the criterion it concerns."""
    from shared.platform.outbox import add_event

    envelope = Envelope(type=event_type, version=application.version, application=application.body() | extra,
                        actor=by, **({"occurred_at": aware(now)} if now else {}))
    record(application, envelope, note, about)
    add_event(db.session, OutboxEvent, envelope)
    return envelope


def change(application: Application, event_type: EventType) -> None:
    """Move the application on by the shared state machine (409, rolled back, if it may not) and bump its version."""
    try:
        application.status = next_status(application.status_enum, event_type).code
    except Conflict:
        db.session.rollback()
        raise
    application.version += 1


def _start_month(body: ApplicationBody, now: datetime) -> tuple[str, int]:
    """The desired start month (next month by default) and the child's class then; 400 naming desired_start."""
    text = body.desired_start or default_start(now)
    start, first = parse_month(text), this_month(now)
    if not first <= start <= add_months(first, MONTHS_AHEAD):
        raise ValidationFailed({"desired_start": f"must be between this month and {MONTHS_AHEAD} months ahead"})
    klass = age_class(body.birthday, start)
    if klass is None:
        raise ValidationFailed({"desired_start": "the child is past daycare age (5세반) by this start month"})
    return text, klass


def _check_limit(statuses: list[int]) -> None:
    """409 when the child already has as many active applications as allowed (3, or 2 while enrolled),
    given the status codes of the child's applications (read locked: see _seen_before_apply)."""
    used, limit = child_usage([code for code in statuses if code in COUNTED])
    if used >= limit:
        db.session.rollback()
        raise LimitReached(limit, enrolled=limit < MAX_ACTIVE)


@dataclass(frozen=True)
class _Seen:
    """What an apply decides on, as _seen_before_apply read it."""

    nursery: Nursery | None
    child_known: bool
    contact: ContactSeen | None
    place: Place
    own_id: int | None  # the account's application for the child at this daycare (locked)
    statuses: list[int]  # of the child's applications the limit counts (and the own one's)


def _seen_before_apply(identity: Identity, body: ApplicationBody, arrival: tuple) -> _Seen:
    """Everything an apply decides on, in one read.

    Locked: the child's applications (the one at this daycare and those the limit counts; next-key locks
    on MySQL's index, a gap lock when there are none), so two applications for one child at the same
    moment cannot both squeeze under the limit, and one daycare's application is decided once.
    Beside them, in scalar subqueries that MariaDB and MySQL read without locking: the daycare, whether
    the account registered the child, the account's record of the parent_email it gives, and the place an
    application with the `arrival` ordering fields (tier, score, applied_at, request_id) takes in the
    daycare's queue once written. The read starts from a one-row table, so it answers when the child has
    no application yet."""
    rows = db.session.execute(_seen_statement(), {
        "parent_sub": identity.sub, "child_id": body.child_id, "nursery_id": body.nursery_id,
        "email": body.parent_email.strip().lower(), **dict(zip(("tier", "score", "applied_at", "request_id"),
                                                               arrival, strict=True))}).all()
    *_, name, address, area, child, contact_id, confirmed_at, sent_at, ahead_count, waiting_count = rows[0]
    applications = [(row_id, nursery_id, status) for row_id, nursery_id, status, *_ in rows if row_id is not None]
    return _Seen(
        nursery=_known_nursery(body.nursery_id, name, address, area) if name is not None else None,
        child_known=child is not None,
        contact=ContactSeen(contact_id, confirmed_at, sent_at) if contact_id is not None else None,
        place=Place(ahead_count + 1, waiting_count + 1),
        own_id=next((row_id for row_id, nursery_id, _ in applications if nursery_id == body.nursery_id), None),
        statuses=[status for *_, status in applications])


@cache
def _seen_statement():
    """_seen_before_apply's statement, built once: SQLAlchemy then computes its cache key once, not per apply
    (a large share of an apply's CPU otherwise); the values come as parameters."""

    def first(column, *where):
        return select(column).where(*where).limit(1).scalar_subquery()

    sub, child_id, nursery_id = bindparam("parent_sub"), bindparam("child_id"), bindparam("nursery_id")
    at_daycare = (Nursery.nursery_id == nursery_id,)
    registered = (Child.parent_sub == sub, Child.child_id == child_id)
    contact = (ContactEmail.parent_sub == sub, ContactEmail.email == bindparam("email"))
    ahead, waiting = arrival_counts(Application, nursery_id, bindparam("tier"), bindparam("score"),
                                    bindparam("applied_at"), bindparam("request_id"))
    one_row = select(literal(1).label("one")).subquery("one_row")
    return (select(Application.id, Application.nursery_id, Application.status,
                   first(Nursery.name, *at_daycare), first(Nursery.address, *at_daycare),
                   first(Nursery.area, *at_daycare), first(Child.id, *registered), first(ContactEmail.id, *contact),
                   first(ContactEmail.confirmed_at, *contact), first(ContactEmail.sent_at, *contact), ahead, waiting)
            .select_from(one_row).outerjoin(Application, and_(
                *of_child(sub, child_id), or_(Application.nursery_id == nursery_id, Application.status.in_(COUNTED))))
            .with_for_update())


def _known_nursery(nursery_id: str, name: str, address: str, area: str) -> Nursery:
    """The daycare as read, in the session as if loaded (the application's `nursery` without a read)."""
    nursery = Nursery(nursery_id=nursery_id, name=name, address=address, area=area)
    make_transient_to_detached(nursery)
    return db.session.merge(nursery, load=False)


def apply(identity: Identity, data: ApplicationBody | dict, now: datetime | None = None) -> Application:
    """A new application, or a new request after it closed (409 while it is active or over the limit).

    The application time (`applied_at`, the REQUEST's time) is what ties go by in the rank.
    """
    return apply_placed(identity, data, now)[0]


@retry_on_race(db)
def apply_placed(identity: Identity, data: ApplicationBody | dict, now: datetime | None = None
                 ) -> tuple[Application, Place | None]:
    """apply, and the application's place in its daycare's queue, read in the same transaction.

    Reads what the decision needs in one query (_seen_before_apply), writes in one flush, commits once;
    the rows stay loaded after the commit (they are what was just written), so the answer reads nothing
    again."""
    body = validate(ApplicationBody, data)
    _check_user_id(identity, body.user_id)
    now = now or datetime.now(UTC)
    config = configured_criteria()
    fresh = priority((), config)  # the ordering of a request with no criterion verified (a new one's)
    unknown = [code for code in body.criteria if code not in config]
    if unknown:
        raise ValidationFailed({"criteria": "unknown criteria: " + ", ".join(unknown)})
    desired_start, klass = _start_month(body, now)
    request_id = request_id_for(identity.sub, body.child_id, body.nursery_id)
    seen = _seen_before_apply(identity, body, (*fresh, naive_utc(now), request_id))
    if seen.nursery is None:
        db.session.rollback()
        raise ValidationFailed({"nursery_id": "no daycare has this id"})
    # a new request after the last one closed (rare): the row itself, locked already
    application = db.session.get(Application, seen.own_id, populate_existing=True) if seen.own_id else None
    try:
        target = next_status(application.status_enum if application else None, EventType.REQUEST)
    except Conflict:
        db.session.rollback()
        raise
    _check_limit(seen.statuses)

    fields = body.model_dump(include=SEED_FIELDS)
    fields.update(user_id=body.user_id or identity.sub, desired_start=desired_start, age_class=klass,
                  applied_at=naive_utc(now), status=target.code, reason=None, offered_at=None,
                  offer_expires_at=None, reminded_at=None)
    fields["notify_email"], pending = notify_address(identity, body.parent_email, seen.contact)
    code = contact_code(identity, body.parent_email, seen.contact) if pending else None
    if application is None:
        stamp = utcnow()
        application = Application(request_id=request_id, parent_sub=identity.sub, version=1, created_at=stamp,
                                  updated_at=stamp, history=[], criteria=[], **fields)
        db.session.add(application)
    else:
        for name, value in fields.items():
            setattr(application, name, value)
        application.version += 1
    application.nursery = seen.nursery
    declare_criteria(application, body.criteria, ApplicationCriterion)
    update_priority(application, config)
    if not seen.child_known:  # the seed's JSON carries the child: keep it
        db.session.add(Child(parent_sub=identity.sub, child_id=body.child_id, name=body.child_name,
                             birthday=body.birthday))
    stage(application, EventType.REQUEST, actor(identity), now)
    if application.status == WAITING.code and (application.priority_tier, application.score) == fresh:
        place = seen.place
    else:  # a new request keeping verified criteria: flush the writes, then rank in the same transaction
        place = queue_place(application)
    with _kept_after_commit():
        db.session.commit()
        if code:
            send_contact_code(body.parent_email, code)
        publish_pending()
    return application, place


@contextmanager
def _kept_after_commit():
    """The session's objects keep their values over the commits inside (what was just written is what
    the answer shows): no read of each row again after the commit."""
    session = db.session()
    before, session.expire_on_commit = session.expire_on_commit, False
    try:
        yield
    finally:
        session.expire_on_commit = before


@retry_on_race(db)
def cancel(identity: Identity, data: ApplicationIds | dict) -> Application:
    """Cancel one of the parent's own applications: waiting, offered, or enrolled (the place is freed)."""
    application = own_locked(identity, validate(ApplicationIds, data))
    if application.status_enum is Status.ENROLLED:
        release_enrolment(application)
    change(application, EventType.CANCEL)
    stage(application, EventType.CANCEL, actor(identity))
    db.session.commit()
    publish_pending()
    return application


def queue_place(application: Application) -> Place | None:
    """Where the application stands in its daycare's queue while it waits (None otherwise)."""
    return queue_places(db.session, Application, [application]).get(application.id)


def get_application(identity: Identity, request_id: str) -> Application:
    application = db.session.scalars(select(Application).where(Application.request_id == request_id)).first()
    if application is None or (application.parent_sub != identity.sub and not identity.is_admin):
        raise NotFound("No such application")
    return application


def last_application(identity: Identity) -> Application | None:
    """The parent's latest application (the apply form prefills the parent's details from it)."""
    stmt = select(Application).where(Application.parent_sub == identity.sub).order_by(
        Application.updated_at.desc(), Application.id.desc())
    return db.session.scalars(stmt).first()


def publish_pending() -> int:
    """Publish this request's events now if SQS answers (else the scheduled relay does)."""
    from shared.platform.outbox import publish_after_commit

    return publish_after_commit(db.session, OutboxEvent, current_app.config["SETTINGS"])
