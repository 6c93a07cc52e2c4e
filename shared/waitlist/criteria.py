"""Priority criteria (우선순위 항목): the configured list, scoring, and what an application declares."""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

CRITERION_CODE = r"^[A-Z0-9_]{1,30}$"

DEFAULT_CRITERIA = Path(__file__).resolve().parent / "priority_criteria.json"


class CriterionStatus(StrEnum):
    PENDING = "PENDING"  # declared; counts only once the daycare verifies it
    VERIFIED = "VERIFIED"
    REJECTED = "REJECTED"


class _Label(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ko: str = Field(min_length=1, max_length=120)
    en: str = Field(min_length=1, max_length=120)


class Criterion(BaseModel):
    """One priority item from the configuration file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=CRITERION_CODE)
    tier: int = Field(ge=1, le=2)  # 1순위 / 2순위
    points: int = Field(ge=0, le=1000)
    label: _Label
    proof_required: bool = True

    def label_for(self, locale: str) -> str:
        return self.label.en if str(locale).startswith("en") else self.label.ko


class _CriteriaFile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    criteria: list[Criterion] = Field(min_length=1)


@cache
def load_criteria(path: str | None = None) -> dict[str, Criterion]:
    """The configured criteria by code (the repository's file unless `path` names another).

    Raises ValueError naming the problem when the file is missing or malformed, so an app with a
    broken configuration refuses to start instead of scoring wrongly.
    """
    source = Path(path) if path else DEFAULT_CRITERIA
    try:
        parsed = _CriteriaFile.model_validate(json.loads(source.read_text(encoding="utf-8")))
    except (OSError, ValueError) as err:
        raise ValueError(f"priority criteria {source}: {err}") from None
    codes = [item.code for item in parsed.criteria]
    if len(set(codes)) != len(codes):
        raise ValueError(f"priority criteria {source}: a code appears twice")
    return {item.code: item for item in parsed.criteria}


def configured_criteria() -> dict[str, Criterion]:
    """The running app's criteria (PRIORITY_CRITERIA_PATH, else the repository's file)."""
    from flask import current_app

    return load_criteria(current_app.config["WAITLIST"].priority_criteria_path or None)


def priority(verified_codes: Iterable[str], criteria: dict[str, Criterion]) -> tuple[int, int]:
    """(priority_tier, score) from the verified criteria: the score is the sum of their points, and
    the tier is 1 when any of them is a 1순위 item, else 2. Codes the configuration no longer has
    count for nothing."""
    items = [criteria[code] for code in set(verified_codes) if code in criteria]
    return (1 if any(item.tier == 1 for item in items) else 2), sum(item.points for item in items)


def update_priority(application, criteria: dict[str, Criterion]) -> None:
    """Store the application's ordering fields from its criteria (a row of either app)."""
    application.priority_tier, application.score = priority(
        (c.code for c in application.criteria if c.status == CriterionStatus.VERIFIED), criteria)


def declare_criteria(application, codes: Iterable[str], model) -> None:
    """Make the application's criteria the declared `codes`: kept ones keep their proof and
    verification (a new request after a cancel), dropped ones go, new ones start PENDING."""
    wanted = list(dict.fromkeys(codes))
    application.criteria[:] = [c for c in application.criteria if c.code in wanted]
    have = {c.code for c in application.criteria}
    application.criteria.extend(model(code=code, status=CriterionStatus.PENDING.value)
                                for code in wanted if code not in have)


class CriterionEvent(BaseModel):
    """The `criterion` part of a VERIFY or PROOF event."""

    model_config = ConfigDict(extra="ignore")

    code: str = Field(pattern=CRITERION_CODE)
    status: CriterionStatus = CriterionStatus.PENDING
    reason: str | None = Field(default=None, max_length=500)
    proof_key: str | None = Field(default=None, max_length=300)
    proof_name: str | None = Field(default=None, max_length=120)
