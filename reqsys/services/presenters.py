"""Applications as the JSON routes show them."""

from __future__ import annotations

from typing import Any

from reqsys.models import Application, ApplicationCriterion
from shared.platform.clock import iso
from shared.waitlist.criteria import (
    Criterion,
    CriterionStatus,
    configured_criteria,
)
from shared.waitlist.ranking import Place
from shared.waitlist.rules import WAITING, Status


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


def application_dict(application: Application, place: Place | None = None) -> dict[str, Any]:
    """The JSON of an application; `place` (while it waits): its rank of how many waiting at the daycare."""
    status = application.status_enum
    place = place if status is WAITING else None
    config = configured_criteria()
    return {
        "request_id": application.request_id,
        "child_id": application.child_id,
        "child_name": application.child_name,
        "child_birthday": application.child_birthday,
        "nursery_id": application.nursery_id,
        "nursery_name": application.nursery_name,
        "status": status.name,
        "request_status": status.code,
        "version": application.version,
        "reason": application.reason,
        # where the notices go: the account's verified email until someone confirms parent_email
        "notify_email": application.notify_email,
        "parent_email_confirmed": parent_email_confirmed(application),
        "desired_start": application.desired_start,
        "age_class": application.age_class,
        "rank": place.rank if place else None,
        "waiting": place.waiting if place else None,
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


def parent_email_confirmed(application: Application) -> bool:
    """Whether the notices go to the parent_email the application gives (it is the account's own, or confirmed)."""
    return (application.notify_email or "").strip().lower() == application.parent_email.strip().lower()
