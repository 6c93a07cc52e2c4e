"""Applications: apply (limits, start month, priority criteria), cancel, the parent's list and the live rank.

Every state change bumps the application's version, adds a history row and stages its event in the
outbox in the same transaction; after the commit the outbox is relayed at once (best effort; the
scheduled relay in reqsys.relay catches up otherwise)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import selectinload

from reqsys.models import Application, ApplicationCriterion, ApplicationHistory, Child, Nursery, OutboxEvent, db, utcnow
from reqsys.services.children import COUNTED, child_usage, find_child, of_child
from reqsys.services.schemas import MONTHS_AHEAD, SEED_FIELDS, ApplicationIds
from shared.platform.auth import Identity
from shared.platform.clock import aware, naive_utc
from shared.platform.db import retry_on_race
from shared.platform.errors import ApiError, Conflict, Forbidden, NotFound, ValidationFailed
from shared.platform.events import Envelope, EventType
from shared.platform.payloads import validate
from shared.waitlist.body import ApplicationBody
from shared.waitlist.calendar import add_months, age_class, default_start, parse_month, this_month
from shared.waitlist.criteria import (
    configured_criteria,
    declare_criteria,
    update_priority,
)
from shared.waitlist.ranking import live_rank, locked, queue_places
from shared.waitlist.rules import MAX_ACTIVE, next_status


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
    """One of the parent's own applications, locked; 404 for anyone else's (its existence stays private)."""
    _check_user_id(identity, ids.user_id)
    application = locked(db.session, Application, ids.request_id)
    if application is None or application.parent_sub != identity.sub:
        db.session.rollback()
        raise NotFound("No such application")
    return application


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


def _check_limit(parent_sub: str, child_id: str) -> None:
    """409 when the child already has as many active applications as allowed (3, or 2 while enrolled).

    The child's applications are locked (next-key locks on MySQL's index), so two applications
    for one child at the same moment cannot both squeeze under the limit.
    """
    used, limit = child_usage(list(db.session.scalars(select(Application.status).where(
        *of_child(parent_sub, child_id), Application.status.in_(COUNTED)).with_for_update())))
    if used >= limit:
        db.session.rollback()
        raise LimitReached(limit, enrolled=limit < MAX_ACTIVE)


@retry_on_race(db)
def apply(identity: Identity, data: ApplicationBody | dict, now: datetime | None = None) -> Application:
    """A new application, or a new request after it closed (409 while it is active or over the limit).

    The application time (`applied_at`, the REQUEST's time) is what ties go by in the rank.
    """
    body = validate(ApplicationBody, data)
    _check_user_id(identity, body.user_id)
    nursery = db.session.get(Nursery, body.nursery_id)
    if nursery is None:
        raise ValidationFailed({"nursery_id": "no daycare has this id"})
    config = configured_criteria()
    unknown = [code for code in body.criteria if code not in config]
    if unknown:
        raise ValidationFailed({"criteria": "unknown criteria: " + ", ".join(unknown)})
    now = now or datetime.now(UTC)
    desired_start, klass = _start_month(body, now)

    application = locked(db.session, Application, body.request_id)
    if application is not None and application.parent_sub != identity.sub:
        db.session.rollback()
        raise Conflict("This child already has an application at this daycare", "already_applied")
    try:
        target = next_status(application.status_enum if application else None, EventType.REQUEST)
    except Conflict:
        db.session.rollback()
        raise
    _check_limit(identity.sub, body.child_id)

    fields = body.model_dump(include=SEED_FIELDS)
    fields.update(user_id=body.user_id or identity.sub, desired_start=desired_start, age_class=klass,
                  applied_at=naive_utc(now), status=target.code, reason=None, offered_at=None,
                  offer_expires_at=None, reminded_at=None)
    if application is None:
        application = Application(request_id=body.request_id, parent_sub=identity.sub, version=1,
                                  created_at=utcnow(), **fields)
        db.session.add(application)
    else:
        for name, value in fields.items():
            setattr(application, name, value)
        application.version += 1
    application.nursery = nursery
    declare_criteria(application, body.criteria, ApplicationCriterion)
    update_priority(application, config)
    if find_child(identity.sub, body.child_id) is None:  # the seed's JSON carries the child: keep it
        db.session.add(Child(parent_sub=identity.sub, child_id=body.child_id, name=body.child_name,
                             birthday=body.birthday))
    stage(application, EventType.REQUEST, actor(identity), now)
    db.session.commit()
    publish_pending()
    return application


@retry_on_race(db)
def cancel(identity: Identity, data: ApplicationIds | dict) -> Application:
    """Cancel one of the parent's own applications: waiting, offered, or enrolled (the place is freed)."""
    application = own_locked(identity, validate(ApplicationIds, data))
    change(application, EventType.CANCEL)
    stage(application, EventType.CANCEL, actor(identity))
    db.session.commit()
    publish_pending()
    return application


ADMIN_PAGE = 50


def list_applications(identity: Identity) -> list[tuple[Application, int | None]]:
    """The parent's applications, newest first, each with its live rank at its daycare while it waits."""
    stmt = _newest_first(select(Application).where(Application.parent_sub == identity.sub))
    return _with_ranks(list(db.session.scalars(stmt)))


def list_all_applications(identity: Identity, cursor: str | None = None, limit: int = ADMIN_PAGE
                          ) -> tuple[list[tuple[Application, int | None]], str | None]:
    """For admins: a page of everyone's applications, newest first, and the cursor of the next page (None
    at the end). The cursor is the last row's (created_at, id): pages never repeat or skip a row."""
    if not identity.is_admin:
        raise Forbidden("Only admins see every application")
    stmt = select(Application)
    if cursor:
        created, last_id = decode_cursor(cursor)
        stmt = stmt.where(or_(Application.created_at < created,
                              and_(Application.created_at == created, Application.id < last_id)))
    rows = list(db.session.scalars(_newest_first(stmt).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return _with_ranks(rows), encode_cursor(rows[-1].created_at, rows[-1].id) if more else None


def _newest_first(stmt):
    return stmt.options(selectinload(Application.history), selectinload(Application.criteria)).order_by(
        Application.created_at.desc(), Application.id.desc())


def _with_ranks(rows: list[Application]) -> list[tuple[Application, int | None]]:
    places = queue_places(db.session, Application, rows)
    return [(row, places[row.id].rank if row.id in places else None) for row in rows]


def encode_cursor(created_at: datetime, row_id: int) -> str:
    return f"{created_at.isoformat()}_{row_id}"


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """400 naming `cursor` unless it is one this service wrote."""
    try:
        created, row_id = cursor.rsplit("_", 1)
        return datetime.fromisoformat(created), int(row_id)
    except ValueError:
        raise ValidationFailed({"cursor": "is not a cursor this list gave"}) from None


def rank_in_queue(application: Application) -> int | None:
    return live_rank(db.session, Application, application)


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
