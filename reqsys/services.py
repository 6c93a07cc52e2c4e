"""The waitlist rules of reqsys: children, applications (limits, start month, priority criteria),
cancellations, the live rank, and the daycare's decisions synced from childsys.

One function per action, used alike by the HTML forms, the JSON routes and the sync
endpoint. Every state change bumps the application's version, adds a history row and
stages its event in the outbox in the same transaction; after the commit the outbox is
relayed at once (best effort; the scheduled relay in reqsys.relay catches up otherwise).
Changes that arrive from childsys (OFFER/REJECT/VERIFY, and the old flow's ACCEPT) are
applied without a new event: they came from the pipeline. Offers are answered and expired
in reqsys.offers; proof documents are uploaded through reqsys.proofs.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

from flask import current_app
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import case, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from reqsys.models import Application, ApplicationCriterion, ApplicationHistory, Child, Nursery, OutboxEvent, db, utcnow
from shared.platform.auth import Identity
from shared.platform.clock import aware, iso, naive_utc
from shared.platform.db import retry_on_race
from shared.platform.errors import ApiError, Conflict, Forbidden, NotFound, ValidationFailed
from shared.platform.events import FROM_CHILDSYS, Envelope, EventType
from shared.platform.payloads import validate
from shared.waitlist.body import CHILD_ID, ApplicationBody, ApplicationRef
from shared.waitlist.calendar import add_months, age_class, default_start, offer_deadline, parse_month, this_month
from shared.waitlist.criteria import (
    Criterion,
    CriterionEvent,
    CriterionStatus,
    configured_criteria,
    declare_criteria,
    update_priority,
)
from shared.waitlist.ranking import live_rank, locked, rank_of
from shared.waitlist.rules import ACTIVE, MAX_ACTIVE, WAITING, Status, application_limit, next_status
from shared.waitlist.sync import SyncedEvents

log = logging.getLogger(__name__)

SEED_FIELDS = frozenset({"child_id", "child_name", "child_birthday", "parent_name", "parent_tel", "parent_address",
                         "parent_postcode", "parent_email", "nursery_id"})
MONTHS_AHEAD = 24  # how far ahead a desired start month may be

class LimitReached(ApiError):
    """409: the child already waits at as many daycares as allowed."""

    def __init__(self, limit: int, enrolled: bool):
        where = " (the limit while the child is enrolled at a daycare)" if enrolled else ""
        super().__init__(409, "limit_reached", f"This child already has {limit} active applications{where}, "
                         "the most allowed. Cancel one before applying to another daycare.")
        self.limit, self.enrolled = limit, enrolled


# --- payloads ---------------------------------------------------------------------------------------


class ChildBody(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore")

    child_id: str = Field(min_length=1, max_length=20, pattern=CHILD_ID)
    name: str = Field(min_length=1, max_length=50)
    birthday: date

    @field_validator("birthday")
    @classmethod
    def _not_in_future(cls, value: date) -> date:
        if value > date.today():
            raise ValueError("must not be in the future")
        return value


class ApplicationIds(ApplicationRef):
    """Which of the parent's applications (cancel, confirm, decline); a user_id, if given, must be the parent."""

    user_id: str | None = Field(default=None, max_length=128)


def _check_user_id(identity: Identity, user_id: str | None) -> None:
    """The parent is whoever the token or session says; a body naming anyone else is refused."""
    if user_id and user_id != identity.sub and (not identity.email or user_id.lower() != identity.email.lower()):
        raise Forbidden("user_id names another user")


def actor(identity: Identity) -> str:
    return identity.email or identity.sub


# --- children ---------------------------------------------------------------------------------------


def list_children(identity: Identity) -> list[Child]:
    stmt = select(Child).where(Child.parent_sub == identity.sub).order_by(Child.birthday, Child.id)
    return list(db.session.scalars(stmt))


def register_child(identity: Identity, data: ChildBody | dict) -> Child:
    body = validate(ChildBody, data)
    if _child(identity.sub, body.child_id) is not None:
        raise ValidationFailed({"child_id": "is already registered"})
    child = Child(parent_sub=identity.sub, child_id=body.child_id, name=body.name, birthday=body.birthday)
    db.session.add(child)
    try:
        db.session.commit()
    except IntegrityError:  # the same child registered twice at once
        db.session.rollback()
        raise ValidationFailed({"child_id": "is already registered"}) from None
    return child


def get_child(identity: Identity, child_pk: int) -> Child:
    child = db.session.get(Child, child_pk)
    if child is None or child.parent_sub != identity.sub:
        raise NotFound("No such child")
    return child


def _child(parent_sub: str, child_id: str) -> Child | None:
    return db.session.scalars(
        select(Child).where(Child.parent_sub == parent_sub, Child.child_id == child_id)).first()


COUNTED = [s.code for s in (*ACTIVE, Status.ENROLLED)]  # what a child's limit looks at


def _usage(codes: list[int]) -> tuple[int, int]:
    """(active applications, the limit) of a child whose counted applications have these status codes."""
    statuses = [Status(code) for code in codes]
    return sum(s in ACTIVE for s in statuses), application_limit(Status.ENROLLED in statuses)


def of_child(parent_sub: str, *child_ids: str) -> tuple:
    """Conditions selecting a child's applications: those its parent made. A child is known by the id
    its parent gave (children are registered per parent, and nothing verifies an id across accounts),
    so another account using the same id never counts against this child's limit, nor is withdrawn
    when this child enrols."""
    return Application.parent_sub == parent_sub, Application.child_id.in_(child_ids)


def active_counts(identity: Identity, child_ids: list[str]) -> dict[str, tuple[int, int]]:
    """child_id -> (active applications, the child's limit), for the apply form."""
    found: dict[str, list[int]] = {child_id: [] for child_id in child_ids}
    for child_id, code in db.session.execute(select(Application.child_id, Application.status).where(
            *of_child(identity.sub, *child_ids), Application.status.in_(COUNTED))):
        found[child_id].append(code)
    return {child_id: _usage(codes) for child_id, codes in found.items()}


# --- applications ----------------------------------------------------------------------------------


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
    used, limit = _usage(list(db.session.scalars(select(Application.status).where(
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
    if _child(identity.sub, body.child_id) is None:  # the seed's JSON carries the child: keep it
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


def list_applications(identity: Identity, everyone: bool = False) -> list[tuple[Application, int | None]]:
    """The parent's applications, newest first (`everyone`: all of them, for admins), each with its
    live rank at its daycare while it waits."""
    rank = case((Application.status == WAITING.code, rank_of(Application)), else_=None)
    stmt = select(Application, rank).options(
        selectinload(Application.history), selectinload(Application.criteria)).order_by(
        Application.created_at.desc(), Application.id.desc())
    if not everyone:
        stmt = stmt.where(Application.parent_sub == identity.sub)
    return [(application, position) for application, position in db.session.execute(stmt)]


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


def criterion_dict(criterion: ApplicationCriterion, config: dict[str, Criterion]) -> dict[str, Any]:
    known = config.get(criterion.code)
    return {
        "code": criterion.code,
        "label": known.label.model_dump() if known else {"ko": criterion.code, "en": criterion.code},
        "tier": known.tier if known else None,
        "points": known.points if known else 0,
        "proof_required": known.proof_required if known else False,
        "status": criterion.status,
        "counts": criterion.status == CriterionStatus.VERIFIED,
        "reason": criterion.reason,
        "proof": {"filename": criterion.proof_name, "uploaded_at": iso(criterion.proof_uploaded_at)}
        if criterion.proof_key else None,
    }


def application_dict(application: Application, rank: int | None = None) -> dict[str, Any]:
    status = application.status_enum
    config = configured_criteria()
    return {
        "request_id": application.request_id,
        "child_id": application.child_id,
        "child_name": application.child_name,
        "child_birthday": application.child_birthday,
        "nursery_id": application.nursery_id,
        "nursery_name": application.nursery.name if application.nursery else None,
        "status": status.name,
        "request_status": status.code,
        "version": application.version,
        "reason": application.reason,
        "desired_start": application.desired_start,
        "age_class": application.age_class,
        "rank": rank if status is WAITING else None,
        "score": application.score,
        "priority_tier": application.priority_tier,
        "offered_at": iso(application.offered_at),
        "offer_expires_at": iso(application.offer_expires_at),
        "criteria": [criterion_dict(c, config) for c in application.criteria],
        "created_at": iso(application.created_at),
        "updated_at": iso(application.updated_at),
        "history": [
            {"type": row.type, "status": Status(row.status).name, "version": row.version,
             "at": iso(row.occurred_at), "note": row.note, "criterion": row.criterion}
            for row in application.history
        ],
    }


# --- decisions synced from childsys ----------------------------------------------------------------


class DaycareDecisions(SyncedEvents):
    """A daycare's events from childsys. OFFER opens an offer until the deadline it carries; the old flow's
    ACCEPT enrols (what it meant then); REJECT keeps the reason; VERIFY changes one criterion and so the
    score. An unknown application means reqsys lost data: 409 (logged), so the pipeline retries and
    finally dead-letters it where an admin sees it."""

    accepts = FROM_CHILDSYS
    criterion_event = "VERIFY"
    side = "reqsys"

    def apply_criterion(self, application, envelope, checked):
        if application is None:
            db.session.rollback()
            log.error("sync VERIFY %s: unknown application %s", envelope.event_id, envelope.request_id)
            raise Conflict("No such application in reqsys", "unknown_application")
        return _apply_verification(application, envelope)

    def change(self, application, envelope, target, checked):
        reason = None
        if envelope.type is EventType.REJECT:
            reason = str(envelope.application.get("reason") or "").strip()[:500] or None
        if envelope.type is EventType.OFFER:
            application.offered_at = naive_utc(envelope.occurred_at)
            application.offer_expires_at = _deadline(envelope)
            application.reminded_at = None
        application.reason = reason
        return reason

    def record(self, application, envelope, note, checked):
        record(application, envelope, note=note)


apply_sync = retry_on_race(db)(DaycareDecisions(db, Application, ApplicationHistory).apply)


def _deadline(envelope: Envelope) -> datetime:
    """The deadline the offer carries (fixed by childsys when it was made), or the configured one."""
    offered = aware(envelope.occurred_at)
    try:
        carried = aware(datetime.fromisoformat(str(envelope.application.get("offer_expires_at"))))
    except ValueError:
        carried = None
    if carried is not None and 0 < (carried - offered).days <= 60:
        return naive_utc(carried)
    return offer_deadline(offered, current_app.config["SETTINGS"].offer_days)


def _apply_verification(application: Application, envelope: Envelope) -> str:
    """A criterion verified or rejected by the daycare: applied when it concerns the proof the parent
    sent last and is newer than the last decision; the score (and so the rank) follows."""
    try:
        item = validate(CriterionEvent, envelope.application.get("criterion") or {}, "application.criterion.")
    except ValidationFailed:
        db.session.rollback()
        raise
    criterion = application.criterion(item.code)
    occurred = naive_utc(envelope.occurred_at)
    if (criterion is None or item.status is CriterionStatus.PENDING or item.proof_key != criterion.proof_key
            or (criterion.decided_at is not None and occurred <= criterion.decided_at)):
        db.session.rollback()
        log.info("sync VERIFY %s for %s/%s ignored (stale or for an older proof)", envelope.event_id,
                 application.request_id, item.code)
        return "ignored"
    criterion.status = item.status.value
    criterion.reason = item.reason if item.status is CriterionStatus.REJECTED else None
    criterion.decided_by, criterion.decided_at = envelope.actor, occurred
    update_priority(application, configured_criteria())
    record(application, envelope, note=criterion.reason, criterion=item.code)
    db.session.commit()
    return "applied"


# --- the outbox --------------------------------------------------------------------------------------


def publish_pending() -> int:
    """Publish this request's events now if SQS answers (else the scheduled relay does)."""
    from shared.platform.outbox import publish_after_commit

    return publish_after_commit(db.session, OutboxEvent, current_app.config["SETTINGS"])
