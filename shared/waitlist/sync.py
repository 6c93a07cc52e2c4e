"""Applying the other side's events, once and in order: the skeleton both waitlist apps share.

reqsys applies the daycare's decisions (OFFER, REJECT, VERIFY...), childsys the parent's side
(REQUEST, CANCEL, CONFIRM, PROOF...). Both do the same steps: refuse a type this side does not take,
ignore an event already recorded (event_id), lock the application and read it afresh, hand a
criterion event (VERIFY, PROOF) to its own hook, ignore an event older than what is held
(`should_apply`), create the application only for the types that may arrive first, move the status
by the state machine (a newer cancel or withdrawal always stands), let the app do its part, then
record the event and commit. Each app subclasses `SyncedEvents` and fills in the hooks.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from shared.platform.errors import Conflict, ValidationFailed
from shared.platform.events import Envelope
from shared.waitlist.ranking import locked
from shared.waitlist.rules import CLOSES_ON_TIE, TRANSITIONS, Status, next_status, should_apply

log = logging.getLogger(__name__)
APPLIED, IGNORED = "applied", "ignored"


class SyncedEvents:
    """The events one app takes from the other, applied to its `application_model` rows."""

    accepts: frozenset[str] = frozenset()  # the event types this side applies
    criterion_event: str = ""  # the type that changes one criterion, not the status (handled by apply_criterion)
    creates_on: frozenset[str] = frozenset()  # the types that may arrive before the application exists
    side: str = ""  # this app's name, for logs and messages

    def __init__(self, db, application_model, history_model):
        self.db, self.application_model, self.history_model = db, application_model, history_model

    # --- hooks ---------------------------------------------------------------------------------------

    def check(self, envelope: Envelope) -> Any:
        """Validate what the event carries before anything is read; returns what the other hooks need."""

    def apply_criterion(self, application, envelope: Envelope, checked: Any) -> str:
        raise NotImplementedError

    def create(self, envelope: Envelope, checked: Any):
        raise NotImplementedError

    def change(self, application, envelope: Envelope, target: Status, checked: Any) -> str | None:
        """This app's part of the transition (dates, enrolment...); returns the history note."""
        return None

    def record(self, application, envelope: Envelope, note: str | None, checked: Any) -> None:
        raise NotImplementedError

    # --- the skeleton ----------------------------------------------------------------------------------

    def apply(self, envelope: Envelope) -> str:
        """"applied", or "ignored" for a repeat or an older event; 409 when the application is unknown
        or the state machine forbids a newer event (the pipeline retries, then dead-letters it)."""
        event_type, session = str(envelope.type), self.db.session
        if event_type not in self.accepts:
            raise ValidationFailed({"type": "must be one of " + ", ".join(sorted(self.accepts))})
        checked = self.check(envelope)
        seen = select(self.history_model.id).where(self.history_model.event_id == envelope.event_id)
        if session.scalars(seen).first() is not None:
            return IGNORED
        application = locked(session, self.application_model, envelope.request_id)
        if event_type == self.criterion_event:
            return self.apply_criterion(application, envelope, checked)
        current = application.status_enum if application is not None else None
        if application is not None and not should_apply(application.version, current, envelope.version, event_type):
            session.rollback()
            log.info("sync %s %s v%d ignored: application %s is at v%d", event_type, envelope.event_id,
                     envelope.version, envelope.request_id, application.version)
            return IGNORED
        if application is None:
            if event_type not in self.creates_on:
                session.rollback()
                log.error("sync %s %s: unknown application %s", event_type, envelope.event_id, envelope.request_id)
                raise Conflict(f"No such application in {self.side}", "unknown_application")
            application = self.create(envelope, checked)
            session.add(application)
        if event_type in CLOSES_ON_TIE:
            target = TRANSITIONS[event_type][0]  # a newer cancel or withdrawal always stands, whatever this side had
        else:
            try:
                target = next_status(current, event_type)
            except Conflict:
                session.rollback()
                log.error("sync %s %s v%d: application %s is %s", event_type, envelope.event_id, envelope.version,
                          envelope.request_id, current.name if current else "-")
                raise
        note = self.change(application, envelope, target, checked)
        application.status = target.code
        application.version = envelope.version
        self.record(application, envelope, note, checked)
        session.commit()
        return APPLIED
