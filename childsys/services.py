"""The waitlist rules of childsys: staff decisions and applications synced from reqsys.

Used alike by the pages, the JSON routes and the sync endpoints. A staff decision bumps
the application's version, adds a history row and stages its event in the outbox in one
transaction; the outbox is relayed right after the commit (best effort) and by the
scheduled relay. Requests and cancellations from reqsys are applied without new events.
"""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Any

from flask import current_app
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from childsys.models import BODY_FIELDS, Application, ApplicationHistory, Enrollment, OutboxEvent, db, utcnow
from shared.auth import Identity
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.events import Envelope, EventType
from shared.waitlist import ApplicationBody, Status, next_status, should_apply

log = logging.getLogger(__name__)

PAGE_SIZE = 25


class DecisionBody(BaseModel):
    """Which application to decide on (the seed's full body is accepted too), and why for a rejection."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore")

    child_id: str = Field(min_length=1, max_length=20, pattern=r"^[0-9A-Za-z-]+$")
    nursery_id: str = Field(min_length=1, max_length=10, pattern=r"^[A-Za-z0-9]+$")
    reason: str | None = Field(default=None, max_length=500)

    @property
    def request_id(self) -> str:
        return self.child_id + self.nursery_id


def _validate(data: Any) -> DecisionBody:
    if isinstance(data, DecisionBody):
        return data
    try:
        return DecisionBody.model_validate(data)
    except ValidationError as err:
        raise ValidationFailed({".".join(str(p) for p in e["loc"]) or "body": e["msg"] for e in err.errors()}) from None


def staff_daycare(identity: Identity, nursery_id: str | None) -> str:
    """The daycare a request is about: the staff member's own by default; others only for admins."""
    nursery_id = nursery_id or identity.daycare_id
    if not nursery_id:
        raise Forbidden("Your account is not linked to a daycare")
    identity.require_daycare(nursery_id)
    return nursery_id


# --- reading ----------------------------------------------------------------------------------------


def list_applications(identity: Identity, nursery_id: str | None, status: str | None = None,
                      newest_first: bool = False, page: int = 1) -> tuple[list[Application], int]:
    """A page of one daycare's applications (oldest first: the waiting order), and the total."""
    nursery_id = staff_daycare(identity, nursery_id)
    where = [Application.nursery_id == nursery_id]
    if status:
        if status not in Status.__members__:
            raise ValidationFailed({"status": "must be one of " + ", ".join(Status.__members__)})
        where.append(Application.status == Status[status].code)
    order = (Application.created_at.desc(), Application.id.desc()) if newest_first else (
        Application.created_at, Application.id)
    total = db.session.scalar(select(func.count()).select_from(Application).where(*where)) or 0
    rows = db.session.scalars(select(Application).where(*where).order_by(*order)
                              .limit(PAGE_SIZE).offset(max(page - 1, 0) * PAGE_SIZE))
    return list(rows), total


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
    identity.require_daycare(application.nursery_id)
    return application


def list_enrollments(identity: Identity, nursery_id: str | None = None) -> list[Enrollment]:
    nursery_id = staff_daycare(identity, nursery_id)
    return list(db.session.scalars(select(Enrollment).where(Enrollment.nursery_id == nursery_id)
                                   .order_by(Enrollment.enrolled_at)))


def application_dict(application: Application) -> dict[str, Any]:
    status = application.status_enum
    return {
        "request_id": application.request_id, **application.body(),
        "status": status.name, "request_status": status.code, "version": application.version,
        "reason": application.reason, "decided_by": application.decided_by,
        "created_at": _iso(application.created_at), "updated_at": _iso(application.updated_at),
        "history": [{"type": h.type, "status": Status(h.status).name, "version": h.version,
                     "at": _iso(h.occurred_at), "actor": h.actor, "note": h.note} for h in application.history],
    }


def _iso(value) -> str:
    return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


# --- staff decisions ---------------------------------------------------------------------------------


def _locked(request_id: str) -> Application | None:
    return db.session.scalars(select(Application).where(Application.request_id == request_id).with_for_update()).first()


def _record(application: Application, envelope: Envelope, actor: str | None, note: str | None) -> None:
    application.updated_at = utcnow()
    db.session.add(ApplicationHistory(
        application=application, event_id=envelope.event_id, type=str(envelope.type), status=application.status,
        version=application.version, occurred_at=envelope.occurred_at.astimezone(UTC).replace(tzinfo=None),
        actor=actor, note=note))


def _enroll(application: Application) -> None:
    if db.session.scalars(select(Enrollment).where(Enrollment.request_id == application.request_id)).first():
        return
    db.session.add(Enrollment(
        request_id=application.request_id, nursery_id=application.nursery_id, child_id=application.child_id,
        child_name=application.child_name, child_birthday=application.child_birthday,
        parent_name=application.parent_name, parent_tel=application.parent_tel,
        parent_email=application.parent_email))


def _unenroll(request_id: str) -> None:
    db.session.execute(db.delete(Enrollment).where(Enrollment.request_id == request_id))


def decide(identity: Identity, data: DecisionBody | dict, event_type: EventType) -> Application:
    """Accept (enrols the child) or reject (a reason is required); 409 for any other transition."""
    from shared.outbox import add_event

    body = _validate(data)
    reason = body.reason or None
    if event_type is EventType.REJECT and not reason:
        raise ValidationFailed({"reason": "Give a reason for the rejection"})
    identity.require_daycare(body.nursery_id)
    application = _locked(body.request_id)
    if application is None:
        db.session.rollback()
        raise NotFound("No such application")
    try:
        application.status = next_status(application.status_enum, event_type).code
    except Conflict:
        db.session.rollback()
        raise
    application.version += 1
    application.reason = reason if event_type is EventType.REJECT else None
    application.decided_by = identity.email or identity.sub
    if event_type is EventType.ACCEPT:
        _enroll(application)
    payload = application.body() | ({"reason": reason} if reason else {})
    envelope = Envelope(type=event_type, version=application.version, application=payload)
    _record(application, envelope, application.decided_by, application.reason)
    add_event(db.session, OutboxEvent, envelope)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("The application changed at the same time; please try again") from None
    publish_pending()
    return application


# --- requests and cancellations synced from reqsys ------------------------------------------------------


def apply_sync(envelope: Envelope) -> str:
    """Apply a parent's REQUEST or CANCEL; "applied", or "ignored" for a repeat or an older event.

    A CANCEL may arrive before its REQUEST: it creates the application as cancelled with its
    version, so the late REQUEST (an older version) is ignored and the final state is right.
    """
    if envelope.type not in (EventType.REQUEST, EventType.CANCEL):
        raise ValidationFailed({"type": "must be REQUEST or CANCEL"})
    try:
        body = ApplicationBody.model_validate(envelope.application)
    except ValidationError as err:
        raise ValidationFailed({"application." + ".".join(str(p) for p in e["loc"]): e["msg"]
                                for e in err.errors()}) from None
    if db.session.scalars(select(ApplicationHistory.id).where(
            ApplicationHistory.event_id == envelope.event_id)).first() is not None:
        return "ignored"
    application = _locked(envelope.request_id)
    current = application.status_enum if application else None
    if application is not None and not should_apply(application.version, current, envelope.version, envelope.type):
        db.session.rollback()
        return "ignored"
    if application is None:
        application = Application(request_id=envelope.request_id, version=0, status=Status.REQUESTED.code,
                                  created_at=envelope.occurred_at.astimezone(UTC).replace(tzinfo=None))
    for name, value in body.model_dump(include=set(BODY_FIELDS)).items():
        setattr(application, name, value or "")
    db.session.add(application)
    if envelope.type is EventType.CANCEL:
        target = Status.CANCELLED  # a newer cancel always stands, whatever this side had
        _unenroll(envelope.request_id)
    else:
        try:
            target = next_status(current, EventType.REQUEST)
        except Conflict:
            db.session.rollback()
            log.error("sync REQUEST %s v%d: application %s is %s", envelope.event_id, envelope.version,
                      envelope.request_id, current.name if current else "-")
            raise
        application.reason = None
        application.decided_by = None
    application.status = target.code
    application.version = envelope.version
    _record(application, envelope, actor=None, note=None)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return "ignored"
    return "applied"


# --- the outbox --------------------------------------------------------------------------------------


def publish_pending() -> int:
    """Publish this request's events now if SQS answers (else the scheduled relay does)."""
    from shared.outbox import publish_after_commit

    return publish_after_commit(db.session, OutboxEvent, current_app.config["SETTINGS"])
