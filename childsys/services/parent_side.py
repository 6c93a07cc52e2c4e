"""The parent's side's events synced from reqsys, applied without new events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from childsys.models import (
    BODY_FIELDS,
    Application,
    ApplicationCriterion,
    ApplicationHistory,
    Enrollment,
    db,
)
from childsys.services.decisions import record_event
from shared.platform.clock import naive_utc
from shared.platform.db import retry_on_race
from shared.platform.errors import Conflict, ValidationFailed
from shared.platform.events import FROM_REQSYS, Envelope
from shared.platform.payloads import validate
from shared.waitlist.body import ApplicationBody
from shared.waitlist.calendar import class_for, default_start
from shared.waitlist.criteria import (
    CriterionEvent,
    CriterionStatus,
    configured_criteria,
    declare_criteria,
    update_priority,
)
from shared.waitlist.rules import (
    CLOSES_ON_TIE,
    SYSTEM,
    WAITING,
)
from shared.waitlist.sync import SyncedEvents


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
        record_event(application, envelope, actor=envelope.actor or _default_actor(str(envelope.type), body), note=note)


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
    record_event(application, envelope, envelope.actor or application.parent_email, item.proof_name,
                 criterion=item.code)
    db.session.commit()
    return "applied"
