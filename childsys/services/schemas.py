"""What staff requests carry, validated field by field."""

from __future__ import annotations

from pydantic import Field

from shared.waitlist.body import ApplicationRef
from shared.waitlist.criteria import (
    CRITERION_CODE,
    CriterionStatus,
)


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
