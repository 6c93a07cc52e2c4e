"""The waitlist rules of reqsys: children, applications, cancellations and synced decisions.

One function per action, used alike by the HTML forms, the JSON routes and the sync
endpoint. Every state change bumps the application's version, adds a history row and
stages its event in the outbox in the same transaction; after the commit the outbox is
relayed at once (best effort; the scheduled relay in reqsys.relay catches up otherwise).
Changes that arrive from childsys (ACCEPT/REJECT) are applied without a new event: they
came from the pipeline.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from flask import current_app
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from reqsys.models import Application, ApplicationHistory, Child, Nursery, OutboxEvent, db, utcnow
from shared.auth import Identity
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.events import Envelope, EventType
from shared.waitlist import ApplicationBody, Status, next_status, should_apply

log = logging.getLogger(__name__)

CHILD_ID = r"^[0-9A-Za-z-]+$"  # as ApplicationBody.child_id

Model = TypeVar("Model", bound=BaseModel)


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


class CancelBody(BaseModel):
    """What a cancel needs: the application's two ids (the full seed body is accepted too)."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore")

    child_id: str = Field(min_length=1, max_length=20, pattern=CHILD_ID)
    nursery_id: str = Field(min_length=1, max_length=10, pattern=r"^[A-Za-z0-9]+$")
    user_id: str | None = Field(default=None, max_length=128)

    @property
    def request_id(self) -> str:
        return self.child_id + self.nursery_id


def validate(model: type[Model], data: Any) -> Model:
    """`data` as `model`, or ValidationFailed naming each bad field (as shared.payloads.load_json)."""
    if isinstance(data, model):
        return data
    if not isinstance(data, dict):
        raise ValidationFailed({"body": "must be an object"})
    try:
        return model.model_validate(data)
    except ValidationError as err:
        fields: dict[str, str] = {}
        for problem in err.errors():
            name = ".".join(str(part) for part in problem["loc"]) or "body"
            fields.setdefault(name, problem["msg"].removeprefix("Value error, "))
        raise ValidationFailed(fields) from None


def _check_user_id(identity: Identity, user_id: str | None) -> None:
    """The parent is whoever the token or session says; a body naming anyone else is refused."""
    if user_id and user_id != identity.sub and (not identity.email or user_id.lower() != identity.email.lower()):
        raise Forbidden("user_id names another user")


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


# --- applications ----------------------------------------------------------------------------------


def _locked(request_id: str) -> Application | None:
    """The application, row-locked until the transaction ends (MySQL; SQLite serialises writers)."""
    return db.session.scalars(
        select(Application).where(Application.request_id == request_id).with_for_update()).first()


def _record(application: Application, envelope: Envelope, note: str | None = None) -> None:
    occurred = envelope.occurred_at.astimezone(UTC).replace(tzinfo=None)
    application.updated_at = utcnow()
    db.session.add(ApplicationHistory(
        application=application, event_id=envelope.event_id, type=str(envelope.type),
        status=application.status, version=application.version, occurred_at=occurred, note=note))


def _stage(application: Application, event_type: EventType) -> Envelope:
    """History row and outbox event of a parent's change, in the current transaction."""
    from shared.outbox import add_event

    envelope = Envelope(type=event_type, version=application.version, application=application.body())
    _record(application, envelope)
    add_event(db.session, OutboxEvent, envelope)
    return envelope


def apply(identity: Identity, data: ApplicationBody | dict) -> Application:
    """A new application, or a new request after a cancel or a rejection (409 otherwise)."""
    body = validate(ApplicationBody, data)
    _check_user_id(identity, body.user_id)
    if db.session.get(Nursery, body.nursery_id) is None:
        raise ValidationFailed({"nursery_id": "no daycare has this id"})

    application = _locked(body.request_id)
    if application is not None and application.parent_sub != identity.sub:
        db.session.rollback()
        raise Conflict("This child already has an application at this daycare")
    current = application.status_enum if application else None
    try:
        target = next_status(current, EventType.REQUEST)
    except Conflict:
        db.session.rollback()
        raise

    fields = body.model_dump(include=set(ApplicationBody.model_fields) - {"user_id"})
    fields["user_id"] = body.user_id or identity.sub
    if application is None:
        application = Application(request_id=body.request_id, parent_sub=identity.sub, version=1,
                                  status=target.code, created_at=utcnow(), **fields)
        db.session.add(application)
    else:
        for name, value in fields.items():
            setattr(application, name, value)
        application.status = target.code
        application.version += 1
        application.reason = None
    if _child(identity.sub, body.child_id) is None:  # the seed's JSON carries the child: keep it
        born = datetime.strptime(body.child_birthday, "%Y%m%d").date()
        db.session.add(Child(parent_sub=identity.sub, child_id=body.child_id, name=body.child_name, birthday=born))
    _stage(application, EventType.REQUEST)
    _commit_or_conflict("This child already has an application at this daycare")
    publish_pending()
    return application


def cancel(identity: Identity, data: CancelBody | dict) -> Application:
    """Cancel one of the parent's own applications (404 for anyone else's: its existence stays private)."""
    body = validate(CancelBody, data)
    _check_user_id(identity, body.user_id)
    application = _locked(body.request_id)
    if application is None or application.parent_sub != identity.sub:
        db.session.rollback()
        raise NotFound("No such application")
    try:
        application.status = next_status(application.status_enum, EventType.CANCEL).code
    except Conflict:
        db.session.rollback()
        raise
    application.version += 1
    _stage(application, EventType.CANCEL)
    _commit_or_conflict("The application changed at the same time; please try again")
    publish_pending()
    return application


def _commit_or_conflict(message: str) -> None:
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(message) from None


def list_applications(identity: Identity, everyone: bool = False) -> list[Application]:
    """The parent's applications, newest first (`everyone`: all of them, for admins)."""
    stmt = select(Application).options(selectinload(Application.history)).order_by(
        Application.created_at.desc(), Application.id.desc())
    if not everyone:
        stmt = stmt.where(Application.parent_sub == identity.sub)
    return list(db.session.scalars(stmt))


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


def application_dict(application: Application) -> dict[str, Any]:
    status = application.status_enum
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
        "created_at": _iso(application.created_at),
        "updated_at": _iso(application.updated_at),
        "history": [
            {"type": row.type, "status": Status(row.status).name, "version": row.version,
             "at": _iso(row.occurred_at), "note": row.note}
            for row in application.history
        ],
    }


def _iso(value: datetime) -> str:
    return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


# --- decisions synced from childsys ----------------------------------------------------------------

SYNCED_TYPES = (EventType.ACCEPT, EventType.REJECT)


def apply_sync(envelope: Envelope) -> str:
    """Apply a staff decision from childsys; "applied", or "ignored" for a repeat or an older event.

    An unknown application means reqsys lost data: 409 (logged), so the pipeline retries and
    finally dead-letters it where an admin sees it. So does a newer decision the state machine
    forbids.
    """
    if envelope.type not in SYNCED_TYPES:
        raise ValidationFailed({"type": "must be ACCEPT or REJECT"})
    seen = select(ApplicationHistory.id).where(ApplicationHistory.event_id == envelope.event_id)
    if db.session.scalars(seen).first() is not None:
        return "ignored"
    application = _locked(envelope.request_id)
    if application is None:
        db.session.rollback()
        log.error("sync %s %s: unknown application %s", envelope.type, envelope.event_id, envelope.request_id)
        raise Conflict("No such application in reqsys")
    current = application.status_enum
    if not should_apply(application.version, current, envelope.version, envelope.type):
        db.session.rollback()
        log.info("sync %s %s v%d ignored: application %s is at v%d", envelope.type, envelope.event_id,
                 envelope.version, application.request_id, application.version)
        return "ignored"
    try:
        target = next_status(current, envelope.type)
    except Conflict:
        db.session.rollback()
        log.error("sync %s %s v%d: application %s is %s at v%d", envelope.type, envelope.event_id,
                  envelope.version, application.request_id, current.name, application.version)
        raise
    reason = None
    if envelope.type is EventType.REJECT:
        reason = str(envelope.application.get("reason") or "").strip()[:500] or None
    application.status = target.code
    application.version = envelope.version
    application.reason = reason
    _record(application, envelope, note=reason)
    try:
        db.session.commit()
    except IntegrityError:  # the same event delivered twice at once: the other one won
        db.session.rollback()
        return "ignored"
    return "applied"


# --- the outbox --------------------------------------------------------------------------------------


def publish_pending() -> int:
    """Publish this request's events now if SQS answers (else the scheduled relay does)."""
    from shared.outbox import publish_after_commit

    return publish_after_commit(db.session, OutboxEvent, current_app.config["SETTINGS"])
