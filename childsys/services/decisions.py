"""Staff decisions: offer, reject, verify a criterion, open a proof.

A decision bumps the application's version (a verification does not: it changes a criterion, not the
status), adds an audit row and stages its event in the outbox in one transaction; the outbox is
relayed right after the commit (best effort) and by the scheduled relay."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import select

from childsys.capacity import lock_class, take_free_place
from childsys.models import (
    Application,
    ApplicationHistory,
    OutboxEvent,
    db,
    utcnow,
)
from childsys.services.queue import get_application, nursery_name
from childsys.services.schemas import DecisionBody, VerifyBody
from shared.platform.auth import Identity
from shared.platform.clock import iso, naive_utc
from shared.platform.db import retry_on_race
from shared.platform.errors import Conflict, NotFound, ValidationFailed
from shared.platform.events import Envelope, EventType
from shared.platform.payloads import validate
from shared.waitlist.body import ApplicationRef
from shared.waitlist.calendar import offer_deadline
from shared.waitlist.criteria import (
    CriterionStatus,
    configured_criteria,
    update_priority,
)
from shared.waitlist.ranking import locked
from shared.waitlist.rules import (
    WAITING,
    next_status,
    require_daycare,
)
from shared.waitlist.settings import waitlist_settings


def _staff_named(identity: Identity, ref: ApplicationRef) -> Application:
    """The application a staff request names, as read (not locked): 403 for another daycare, 404 when
    there is none.

    By its request_id, or by the seed's child_id + nursery_id. Children are each parent account's own,
    so two accounts' children may share a child id at one daycare: then the two ids are ambiguous, and
    the request must name the application's request_id (409 `ambiguous_application`).
    """
    if ref.nursery_id:
        require_daycare(identity, ref.nursery_id)
    if ref.request_id:
        rows = db.session.scalars(select(Application).where(Application.request_id == ref.request_id)).all()
    else:
        rows = db.session.scalars(select(Application).where(
            Application.child_id == ref.child_id, Application.nursery_id == ref.nursery_id).limit(2)).all()
        if len(rows) > 1:
            raise Conflict("Two applications at this daycare have this child id (different parents): name the "
                           "one meant by its request_id", "ambiguous_application")
    application = rows[0] if rows else None
    if application is None or any(wanted and wanted != have for wanted, have in (
            (ref.child_id, application.child_id), (ref.nursery_id, application.nursery_id))):
        db.session.rollback()
        raise NotFound("No such application")
    require_daycare(identity, application.nursery_id)
    return application


def _staff_locked(identity: Identity, ref: ApplicationRef, offer: bool = False) -> Application:
    """The named application, locked and read afresh (what it then becomes is written only if its version
    is still the one read). For an offer, the class's places are locked first: one lock order for all."""
    named = _staff_named(identity, ref)
    if offer:
        lock_class(named.nursery_id, named.age_class)
    return locked(db.session, Application, named.request_id)


def record_event(application: Application, envelope: Envelope, actor: str | None, note: str | None,
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

    record_event(application, envelope, envelope.actor, note, criterion, override)
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
    application = _staff_locked(identity, body, offer=event_type is EventType.OFFER)
    try:
        target = next_status(application.status_enum, event_type)
    except Conflict:
        db.session.rollback()
        raise
    override = None
    extra: dict[str, Any] = {}
    if event_type is EventType.OFFER:
        override = take_free_place(application, body.override_reason)
        application.offered_at = naive_utc(now)
        application.offer_expires_at = offer_deadline(now, waitlist_settings().offer_days)
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


def publish_pending() -> int:
    """Publish this request's events now if SQS answers (else the scheduled relay does)."""
    from shared.platform.outbox import publish_after_commit

    return publish_after_commit(db.session, OutboxEvent, current_app.config["SETTINGS"])
