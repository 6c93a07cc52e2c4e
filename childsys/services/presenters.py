"""Applications as the JSON routes show them."""

from __future__ import annotations

from typing import Any

from childsys.models import (
    Application,
    ApplicationCriterion,
)
from shared.platform.clock import iso
from shared.waitlist.criteria import (
    Criterion,
    configured_criteria,
)
from shared.waitlist.rules import (
    WAITING,
    Status,
)


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
