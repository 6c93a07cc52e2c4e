"""The waitlist rules of childsys: the ranked list, staff decisions (offer, reject, verify a criterion)
and the parent's side's events synced from reqsys.

Used alike by the pages, the JSON routes and the sync endpoints. A staff decision bumps the
application's version (a verification does not: it changes a criterion, not the status), adds
an audit row and stages its event in the outbox in one transaction; the outbox is relayed right
after the commit (best effort) and by the scheduled relay. Events from reqsys are applied
without new events. Class places live in childsys.capacity, the audit log's reading in
childsys.audit.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from pydantic import Field
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from childsys.capacity import check_free_place
from childsys.models import (
    BODY_FIELDS,
    Application,
    ApplicationCriterion,
    ApplicationHistory,
    Enrollment,
    Nursery,
    OutboxEvent,
    db,
    utcnow,
)
from shared.platform.auth import Identity
from shared.platform.clock import iso, naive_utc
from shared.platform.db import retry_on_race
from shared.platform.errors import Conflict, NotFound, ValidationFailed
from shared.platform.events import FROM_REQSYS, Envelope, EventType
from shared.platform.payloads import validate
from shared.waitlist.body import ApplicationBody, ApplicationRef
from shared.waitlist.calendar import class_for, default_start, offer_deadline
from shared.waitlist.criteria import (
    CRITERION_CODE,
    Criterion,
    CriterionEvent,
    CriterionStatus,
    configured_criteria,
    declare_criteria,
    update_priority,
)
from shared.waitlist.ranking import live_rank, locked, rank_order, ranks_of
from shared.waitlist.rules import (
    CLOSES_ON_TIE,
    SYSTEM,
    WAITING,
    Status,
    next_status,
    require_daycare,
    staff_daycare,
)
from shared.waitlist.sync import SyncedEvents

log = logging.getLogger(__name__)

PAGE_SIZE = 25


class DecisionBody(ApplicationRef):
    """Which application to decide on; why, for a rejection; and for an offer into a full class, the
    reason for overriding the capacity."""

    reason: str | None = Field(default=None, max_length=500)
    override_reason: str | None = Field(default=None, max_length=500)


class VerifyBody(ApplicationRef):
    """A staff member's verdict on one declared criterion (a reason is required to reject it)."""

    criterion: str = Field(pattern=CRITERION_CODE)
    status: CriterionStatus
    reason: str | None = Field(default=None, max_length=500)


def nursery_name(nursery_id: str) -> str:
    nursery = db.session.get(Nursery, nursery_id)
    return nursery.name if nursery else nursery_id


# --- reading ----------------------------------------------------------------------------------------


def parse_status(status: str | None) -> Status | None:
    if not status:
        return None
    if status not in Status.__members__:
        raise ValidationFailed({"status": "must be one of " + ", ".join(Status.__members__)})
    return Status[status]


def list_applications(identity: Identity, nursery_id: str | None, status: str | None = None,
                      newest_first: bool = False, page: int = 1, klass: int | None = None,
                      total: int | None = None) -> tuple[list[tuple[Application, int | None]], int]:
    """A page of one daycare's applications with each waiting one's rank, and the total.

    Waiting applications come in rank order: the database reads the page off the queue index,
    so a row's rank is its place in that order. Other statuses come most recently changed first.
    `klass` keeps one age class (ranks stay the daycare's). `total`: the caller has counted already.
    """
    nursery_id = staff_daycare(identity, nursery_id)
    wanted = parse_status(status)
    where = [Application.nursery_id == nursery_id]
    if wanted:
        where.append(Application.status == wanted.code)
    if klass is not None:
        where.append(Application.age_class == klass)
    if total is None:
        total = db.session.scalar(select(func.count()).select_from(Application).where(*where)) or 0
    offset = max(page - 1, 0) * PAGE_SIZE
    queue = wanted is WAITING and not newest_first
    if newest_first:
        order = (Application.created_at.desc(), Application.id.desc())
    else:
        order = rank_order(Application) if queue else (Application.updated_at.desc(), Application.id.desc())
    rows = list(db.session.scalars(select(Application).where(*where).order_by(*order)
                                   .options(selectinload(Application.criteria), selectinload(Application.history))
                                   .limit(PAGE_SIZE).offset(offset)))
    if queue and klass is None:  # the page is a slice of the whole queue: its place is its rank
        return [(application, offset + i + 1) for i, application in enumerate(rows)], total
    ranks = ranks_of(db.session, Application, nursery_id, (a.id for a in rows if a.status == WAITING.code))
    return [(application, ranks.get(application.id)) for application in rows], total


def status_counts(identity: Identity, nursery_id: str | None) -> dict[str, int]:
    nursery_id = staff_daycare(identity, nursery_id)
    rows = db.session.execute(select(Application.status, func.count()).where(
        Application.nursery_id == nursery_id).group_by(Application.status))
    counts = {status.name: 0 for status in Status}
    counts.update({Status(code).name: n for code, n in rows})
    return counts


def get_application(identity: Identity, request_id: str) -> Application:
    application = db.session.scalars(select(Application).where(Application.request_id == request_id)).first()
    if application is None:
        raise NotFound("No such application")
    require_daycare(identity, application.nursery_id)
    return application


def rank_in_queue(application: Application) -> int | None:
    return live_rank(db.session, Application, application)


def list_enrollments(identity: Identity, nursery_id: str | None = None) -> list[Enrollment]:
    nursery_id = staff_daycare(identity, nursery_id)
    return list(db.session.scalars(select(Enrollment).where(Enrollment.nursery_id == nursery_id)
                                   .order_by(Enrollment.age_class, Enrollment.enrolled_at)))


def criterion_dict(criterion: ApplicationCriterion, config: dict[str, Criterion]) -> dict[str, Any]:
    known = config.get(criterion.code)
    return {"code": criterion.code, "label": known.label.model_dump() if known else {"ko": criterion.code,
                                                                                    "en": criterion.code},
            "tier": known.tier if known else None, "points": known.points if known else 0,
            "proof_required": known.proof_required if known else False, "status": criterion.status,
            "reason": criterion.reason, "has_proof": bool(criterion.proof_key), "proof_name": criterion.proof_name,
            "proof_uploaded_at": iso(criterion.proof_uploaded_at), "decided_by": criterion.decided_by,
            "decided_at": iso(criterion.decided_at)}


def application_dict(application: Application, rank: int | None = None) -> dict[str, Any]:
    status = application.status_enum
    config = configured_criteria()
    return {
        "request_id": application.request_id, **application.body(),
        "status": status.name, "request_status": status.code, "version": application.version,
        "reason": application.reason, "decided_by": application.decided_by,
        "age_class": application.age_class, "rank": rank if status is WAITING else None,
        "score": application.score, "priority_tier": application.priority_tier,
        "applied_at": iso(application.applied_at), "offered_at": iso(application.offered_at),
        "offer_expires_at": iso(application.offer_expires_at),
        "criteria": [criterion_dict(c, config) for c in application.criteria],
        "created_at": iso(application.created_at), "updated_at": iso(application.updated_at),
        "history": [{"type": h.type, "status": Status(h.status).name, "version": h.version, "at": iso(h.occurred_at),
                     "actor": h.actor, "note": h.note, "criterion": h.criterion, "override": h.override}
                    for h in application.history],
    }


# --- staff decisions ---------------------------------------------------------------------------------


def _staff_locked(identity: Identity, ref: ApplicationRef) -> Application:
    """The application a staff request names, locked: 403 for another daycare, 404 when there is none.

    The seed's request_id (child_id + nursery_id) is ambiguous: child "1A" at "B01" and child "1" at
    "AB01" share one. So the row found must be of the named child and daycare, else staff of a daycare
    whose id ends another's could act on that daycare's applications.
    """
    require_daycare(identity, ref.nursery_id)
    application = locked(db.session, Application, ref.request_id)
    if application is None or (application.child_id, application.nursery_id) != (ref.child_id, ref.nursery_id):
        db.session.rollback()
        raise NotFound("No such application")
    return application


def _record(application: Application, envelope: Envelope, actor: str | None, note: str | None,
            criterion: str | None = None, override: bool = False) -> None:
    application.updated_at = utcnow()
    db.session.add(ApplicationHistory(
        application=application, nursery_id=application.nursery_id, event_id=envelope.event_id,
        type=str(envelope.type), status=application.status, version=application.version,
        occurred_at=naive_utc(envelope.occurred_at), actor=actor, note=note, criterion=criterion, override=override))


def _stage(application: Application, envelope: Envelope, note: str | None, criterion: str | None = None,
           override: bool = False) -> None:
    """Audit row and outbox event of a staff decision, then commit and publish."""
    from shared.platform.outbox import add_event

    _record(application, envelope, envelope.actor, note, criterion, override)
    add_event(db.session, OutboxEvent, envelope)
    db.session.commit()
    publish_pending()


def _payload(application: Application, **extra) -> dict[str, Any]:
    return application.body() | {"nursery_name": nursery_name(application.nursery_id)} | extra


@retry_on_race(db)
def decide(identity: Identity, data: DecisionBody | dict, event_type: EventType,
           now: datetime | None = None) -> Application:
    """Offer a place (staff "accept") or reject (a reason is required); 409 for any other transition.

    An offer needs a free place in the child's class unless an override reason is given (409
    `class_full` otherwise); it runs until offer_deadline(now, OFFER_DAYS), which the event carries.
    """
    body = validate(DecisionBody, data)
    if event_type is EventType.ACCEPT:
        event_type = EventType.OFFER  # staff acceptance is an offer now
    reason = body.reason or None
    if event_type is EventType.REJECT and not reason:
        raise ValidationFailed({"reason": "Give a reason for the rejection"})
    now = now or datetime.now(UTC)
    application = _staff_locked(identity, body)
    try:
        target = next_status(application.status_enum, event_type)
    except Conflict:
        db.session.rollback()
        raise
    override = None
    extra: dict[str, Any] = {}
    if event_type is EventType.OFFER:
        override = check_free_place(application, body.override_reason)
        application.offered_at = naive_utc(now)
        application.offer_expires_at = offer_deadline(now, current_app.config["SETTINGS"].offer_days)
        extra["offer_expires_at"] = iso(application.offer_expires_at)
    application.status = target.code
    application.version += 1
    application.reason = reason if event_type is EventType.REJECT else None
    application.decided_by = identity.email or identity.sub
    if reason:
        extra["reason"] = reason
    envelope = Envelope(type=event_type, version=application.version, application=_payload(application, **extra),
                        actor=application.decided_by, occurred_at=now)
    _stage(application, envelope, override or application.reason, override=override is not None)
    return application


@retry_on_race(db)
def verify(identity: Identity, data: VerifyBody | dict, now: datetime | None = None) -> Application:
    """Verify or reject one declared criterion while the application waits; the score follows and
    reqsys learns of it (VERIFY). A criterion that needs a proof cannot be verified without one."""
    body = validate(VerifyBody, data)
    if body.status is CriterionStatus.PENDING:
        raise ValidationFailed({"status": "must be VERIFIED or REJECTED"})
    if body.status is CriterionStatus.REJECTED and not body.reason:
        raise ValidationFailed({"reason": "Give a reason for rejecting the criterion"})
    now = now or datetime.now(UTC)
    application = _staff_locked(identity, body)
    criterion = application.criterion(body.criterion)
    if criterion is None:
        db.session.rollback()
        raise NotFound("This criterion was not declared on the application")
    if application.status_enum is not WAITING:
        db.session.rollback()
        raise Conflict("Criteria can be verified only while the application is waiting", "not_waiting")
    config = configured_criteria()
    known = config.get(criterion.code)
    if body.status is CriterionStatus.VERIFIED and known and known.proof_required and not criterion.proof_key:
        db.session.rollback()
        raise Conflict("No proof document has been uploaded for this criterion yet", "proof_missing")
    criterion.status = body.status.value
    criterion.reason = body.reason if body.status is CriterionStatus.REJECTED else None
    criterion.decided_by, criterion.decided_at = identity.email or identity.sub, naive_utc(now)
    update_priority(application, config)
    envelope = Envelope(type=EventType.VERIFY, version=max(application.version, 1), actor=criterion.decided_by,
                        application=_payload(application, criterion=criterion.payload(config)), occurred_at=now)
    _stage(application, envelope, criterion.reason, criterion=criterion.code)
    return application


def proof_link(identity: Identity, request_id: str, code: str) -> str:
    """A download link (2 minutes) for a criterion's proof: staff of that daycare and admins only."""
    from shared.platform.uploads import presigned_get

    application = get_application(identity, request_id)  # 404, then 403 for another daycare
    criterion = application.criterion(code)
    if criterion is None or not criterion.proof_key:
        raise NotFound("No proof document for this criterion")
    bucket = current_app.config["SETTINGS"].resource("UPLOADS_BUCKET")
    return presigned_get(bucket, criterion.proof_key, criterion.proof_name or "proof")


# --- the parent's side, synced from reqsys ------------------------------------------------------------


def _enroll(application: Application) -> None:
    if db.session.scalars(select(Enrollment).where(Enrollment.request_id == application.request_id)).first():
        return
    db.session.add(Enrollment(
        request_id=application.request_id, nursery_id=application.nursery_id, child_id=application.child_id,
        child_name=application.child_name, child_birthday=application.child_birthday,
        parent_name=application.parent_name, parent_tel=application.parent_tel,
        parent_email=application.parent_email, age_class=application.age_class,
        desired_start=application.desired_start))


def _unenroll(request_id: str) -> None:
    db.session.execute(db.delete(Enrollment).where(Enrollment.request_id == request_id))


class ParentSide(SyncedEvents):
    """The parent's side from reqsys. A CANCEL or WITHDRAW may arrive before its REQUEST (the queues after
    the bus do not keep order): it creates the application as closed with its version, so the late
    REQUEST (an older version) is ignored and the final state is right."""

    accepts = FROM_REQSYS
    criterion_event = "PROOF"
    creates_on = frozenset({"REQUEST", *CLOSES_ON_TIE})
    side = "childsys"

    def check(self, envelope):
        return validate(ApplicationBody, envelope.application, "application.")

    def apply_criterion(self, application, envelope, body):
        return _apply_proof(application, envelope)

    def create(self, envelope, body):
        occurred = naive_utc(envelope.occurred_at)
        return Application(request_id=envelope.request_id, version=0, status=WAITING.code, created_at=occurred,
                           applied_at=occurred, desired_start=body.desired_start or default_start(occurred),
                           priority_tier=2, score=0)

    def change(self, application, envelope, target, body):
        for name, value in body.model_dump(include=set(BODY_FIELDS)).items():
            setattr(application, name, value or "")
        event_type = str(envelope.type)
        if event_type == "REQUEST":
            _renew(application, body, naive_utc(envelope.occurred_at))
        elif event_type == "CONFIRM":
            _enroll(application)
        elif event_type == "CANCEL":
            _unenroll(envelope.request_id)
        if event_type == "WITHDRAW":  # where the child enrolled instead
            return str(envelope.application.get("reason") or "")[:500] or None
        return None

    def record(self, application, envelope, note, body):
        _record(application, envelope, actor=envelope.actor or _default_actor(str(envelope.type), body), note=note)


apply_sync = retry_on_race(db)(ParentSide(db, Application, ApplicationHistory).apply)


def _renew(application: Application, body: ApplicationBody, occurred: datetime) -> None:
    """A (new) request: its start month, class, criteria, score and application time."""
    application.desired_start = body.desired_start or default_start(occurred)
    application.age_class = class_for(body.child_birthday, application.desired_start)
    application.applied_at = occurred
    application.reason = application.decided_by = None
    application.offered_at = application.offer_expires_at = None
    declare_criteria(application, body.criteria, ApplicationCriterion)
    update_priority(application, configured_criteria())


def _default_actor(event_type: str, body: ApplicationBody) -> str:
    """Who acted, for events sent before the envelope carried it."""
    return body.parent_email if event_type in ("REQUEST", "CANCEL", "CONFIRM", "DECLINE") else SYSTEM


def _apply_proof(application: Application | None, envelope: Envelope) -> str:
    """A proof the parent uploaded: recorded on its criterion, which awaits verification (again)."""
    try:
        item = validate(CriterionEvent, envelope.application.get("criterion") or {}, "application.criterion.")
    except ValidationFailed:
        db.session.rollback()
        raise
    criterion = application.criterion(item.code) if application else None
    if criterion is None:
        db.session.rollback()
        if application is None or application.version < envelope.version:
            raise Conflict("The request declaring this criterion has not arrived yet", "request_not_arrived")  # retried
        return "ignored"  # a later request dropped the criterion
    occurred = naive_utc(envelope.occurred_at)
    if criterion.proof_uploaded_at is not None and occurred <= criterion.proof_uploaded_at:
        db.session.rollback()
        return "ignored"
    criterion.proof_key, criterion.proof_name, criterion.proof_uploaded_at = item.proof_key, item.proof_name, occurred
    if criterion.status != CriterionStatus.PENDING:
        criterion.status, criterion.reason = CriterionStatus.PENDING.value, None
    update_priority(application, configured_criteria())
    _record(application, envelope, envelope.actor or application.parent_email, item.proof_name, criterion=item.code)
    db.session.commit()
    return "applied"


# --- the outbox --------------------------------------------------------------------------------------


def publish_pending() -> int:
    """Publish this request's events now if SQS answers (else the scheduled relay does)."""
    from shared.platform.outbox import publish_after_commit

    return publish_after_commit(db.session, OutboxEvent, current_app.config["SETTINGS"])
