"""The daycare's decisions synced from childsys (OFFER/REJECT/VERIFY, and the old flow's ACCEPT), applied
without a new event: they came from the pipeline."""

from __future__ import annotations

import logging
from datetime import datetime

from reqsys.models import Application, ApplicationHistory, db
from reqsys.services.applications import record
from shared.platform.clock import aware, naive_utc
from shared.platform.db import retry_on_race
from shared.platform.errors import Conflict, ValidationFailed
from shared.platform.events import FROM_CHILDSYS, Envelope, EventType
from shared.platform.payloads import validate
from shared.waitlist.calendar import offer_deadline
from shared.waitlist.criteria import (
    CriterionEvent,
    CriterionStatus,
    configured_criteria,
    update_priority,
)
from shared.waitlist.settings import waitlist_settings
from shared.waitlist.sync import SyncedEvents

log = logging.getLogger(__name__)

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


apply_sync = retry_on_race(db, rerun_stale=True)(DaycareDecisions(db, Application, ApplicationHistory).apply)


def _deadline(envelope: Envelope) -> datetime:
    """The deadline the offer carries (fixed by childsys when it was made), or the configured one."""
    offered = aware(envelope.occurred_at)
    try:
        carried = aware(datetime.fromisoformat(str(envelope.application.get("offer_expires_at"))))
    except ValueError:
        carried = None
    if carried is not None and 0 < (carried - offered).days <= 60:
        return naive_utc(carried)
    return offer_deadline(offered, waitlist_settings().offer_days)


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
