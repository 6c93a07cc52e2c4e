"""The waitlist rules both apps share: statuses, the one state machine, the seed's body,
priority criteria and scoring, the rank order, age classes and offer deadlines.

Status codes (`request_status` in JSON) keep the original numbers and add the portal's:

    code  status     meaning
       1  REQUESTED  waiting in the daycare's queue (ranked)
       2  ACCEPTED   the daycare accepted and offered a place; the parent answers by offer_expires_at
       3  ENROLLED   the parent confirmed the offer (or the daycare accepted under the old flow)
      88  REJECTED   the daycare rejected the application (with a reason)
      89  DECLINED   the parent declined the offer
      90  EXPIRED    the offer was not answered by its deadline
      97  WITHDRAWN  withdrawn by the system: the child enrolled at another daycare
      99  CANCELLED  cancelled by the parent

Events for one application carry a version that grows with each state change, so a late or
duplicated event never undoes a newer one (see `should_apply`). VERIFY and PROOF change a
criterion, not the status: they are ordered by time per criterion instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta, timezone
from enum import Enum, StrEnum
from functools import cache
from pathlib import Path

from flask_babel import lazy_gettext as _l
from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator
from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    and_,
    func,
    or_,
    select,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, aliased, declared_attr, mapped_column

from shared.errors import Conflict

KST = timezone(timedelta(hours=9), "KST")  # Korea has no daylight saving time
CHILD_ID = r"^[0-9A-Za-z-]+$"
NURSERY_ID = r"^[A-Za-z0-9]+$"
CRITERION_CODE = r"^[A-Z0-9_]{1,30}$"
# MySQL's DATETIME drops fractions of a second: ties by application time need microseconds
PreciseDateTime = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


class Status(Enum):
    REQUESTED = 1
    ACCEPTED = 2
    ENROLLED = 3
    REJECTED = 88
    DECLINED = 89
    EXPIRED = 90
    WITHDRAWN = 97
    CANCELLED = 99

    @property
    def code(self) -> int:
        return self.value


WAITING = Status.REQUESTED
ACTIVE = frozenset({Status.REQUESTED, Status.ACCEPTED})  # what counts towards a child's limit
CLOSED = frozenset({Status.REJECTED, Status.DECLINED, Status.EXPIRED, Status.WITHDRAWN, Status.CANCELLED})

# event type -> the status it leads to, and the statuses it may start from (None: no application yet)
TRANSITIONS: dict[str, tuple[Status, frozenset[Status | None]]] = {
    "REQUEST": (Status.REQUESTED, frozenset({None, *CLOSED})),
    "OFFER": (Status.ACCEPTED, frozenset({Status.REQUESTED})),
    # the old flow's ACCEPT (an event still in flight from before offers): accepted meant enrolled
    "ACCEPT": (Status.ENROLLED, frozenset({Status.REQUESTED})),
    "REJECT": (Status.REJECTED, frozenset({Status.REQUESTED})),
    "CANCEL": (Status.CANCELLED, frozenset({Status.REQUESTED, Status.ACCEPTED, Status.ENROLLED})),
    "CONFIRM": (Status.ENROLLED, frozenset({Status.ACCEPTED})),
    "DECLINE": (Status.DECLINED, frozenset({Status.ACCEPTED})),
    "EXPIRE": (Status.EXPIRED, frozenset({Status.ACCEPTED})),
    "WITHDRAW": (Status.WITHDRAWN, frozenset({Status.REQUESTED, Status.ACCEPTED})),
}
# the parent's side ending an application wins a tie with a daycare decision made at the same moment
CLOSES_ON_TIE = frozenset({"CANCEL", "WITHDRAW"})


# what happened, as staff and admins read it (the parent's own page speaks to the parent: reqsys.views)
EVENT_LABELS = {
    "REQUEST": _l("Application sent"),
    "CANCEL": _l("Cancelled by the parent"),
    "ACCEPT": _l("Accepted by the daycare"),
    "REJECT": _l("Rejected by the daycare"),
    "OFFER": _l("Place offered"),
    "CONFIRM": _l("Confirmed by the parent"),
    "DECLINE": _l("Declined by the parent"),
    "EXPIRE": _l("Offer expired"),
    "WITHDRAW": _l("Withdrawn: enrolled elsewhere"),
    "REMIND": _l("Reminder sent"),
    "VERIFY": _l("Criterion checked"),
    "PROOF": _l("Proof uploaded"),
}


def next_status(current: Status | None, event_type: str) -> Status:
    """The status after `event_type`, or 409 Conflict for a transition the rules forbid."""
    target, allowed = TRANSITIONS[str(event_type)]
    if current not in allowed:
        state = current.name if current else "no application"
        raise Conflict(f"Cannot {str(event_type).lower()} an application that is {state.lower()}")
    return target


def should_apply(current_version: int, current: Status | None, event_version: int, event_type: str) -> bool:
    """Whether a synced event is newer than what we hold (older or equal ones are ignored).

    The two systems number their own changes, so a parent's cancel (or the system's withdrawal)
    and a staff decision made at the same moment can carry the same version: then the parent's
    side wins, on both sides.
    """
    if event_version > current_version:
        return True
    return (event_version == current_version and str(event_type) in CLOSES_ON_TIE
            and current is not TRANSITIONS[str(event_type)][0])


# --- limits -------------------------------------------------------------------------------------------

MAX_ACTIVE = 3  # a child waits (or holds an offer) at up to three daycares...
MAX_ACTIVE_WHEN_ENROLLED = 2  # ...or two when already enrolled somewhere


def application_limit(enrolled: bool) -> int:
    return MAX_ACTIVE_WHEN_ENROLLED if enrolled else MAX_ACTIVE


# --- age classes and start months ---------------------------------------------------------------------

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
OLDEST_CLASS = 5


def school_year(month: date) -> int:
    """The school (보육) year of a month: it starts on 1 March."""
    return month.year if month.month >= 3 else month.year - 1


def age_class(birthday: date, start: date) -> int | None:
    """The class (0세반..5세반) of a child starting in the month `start`, or None past 5세반.

    The class follows the birth year, not the birthday: for a start in school year Y (March of Y
    to February of Y+1) a child born in year B is in the (Y - B - 1)세반, and children born in Y
    or later in 0세반. Reference: 보건복지부 「보육사업안내」, 반편성 연령 기준 (e.g. for March 2023 to
    February 2024: 만 0세반 born 2022-01-01 or later, 만 1세반 born in 2021, ... 만 5세반 born in 2017).
    """
    years = school_year(start) - birthday.year - 1
    if years > OLDEST_CLASS:
        return None
    return max(years, 0)


def class_for(child_birthday: str, desired_start: str) -> int | None:
    """age_class from the stored texts (birthday YYYYMMDD, start YYYY-MM); None when unreadable or past 5세반."""
    try:
        return age_class(datetime.strptime(child_birthday, "%Y%m%d").date(), parse_month(desired_start))
    except (TypeError, ValueError):
        return None


def parse_month(value: str) -> date:
    """'YYYY-MM' as the first day of that month (ValueError otherwise)."""
    match = MONTH.match(value or "")
    if not match:
        raise ValueError("must be a month written YYYY-MM")
    return date(int(match[1]), int(match[2]), 1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def this_month(now: datetime | None = None) -> date:
    """The current month in Korea."""
    local = (now or datetime.now(UTC)).astimezone(KST)
    return date(local.year, local.month, 1)


def default_start(now: datetime | None = None) -> str:
    """The desired start month when an application names none (the seed's body): next month."""
    return f"{add_months(this_month(now), 1):%Y-%m}"


# --- offers -------------------------------------------------------------------------------------------


def aware(value: datetime) -> datetime:
    """A stored (naive UTC) or aware time as aware UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def naive_utc(value: datetime) -> datetime:
    """What the databases store: naive UTC."""
    return aware(value).replace(tzinfo=None)


def offer_deadline(offered_at: datetime, days: int) -> datetime:
    """When an offer made at `offered_at` expires: the end of the `days`-th day after it, Korean time
    (naive UTC). An offer made on 1 December with 7 days runs to 8 December 23:59:59 KST."""
    local = aware(offered_at).astimezone(KST)
    end = datetime.combine(local.date() + timedelta(days=days), time(23, 59, 59), KST)
    return naive_utc(end)


# --- priority criteria --------------------------------------------------------------------------------

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

    return load_criteria(current_app.config["SETTINGS"].priority_criteria_path or None)


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


# --- rows of either app ---------------------------------------------------------------------------------

SYSTEM = "system"  # the actor of what the schedule and the rules do by themselves


def iso(value: datetime | None) -> str | None:
    """A stored (naive UTC) time as ISO 8601 with a Z, for JSON and events."""
    return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z") if value else None


def locked(session, model, request_id: str):
    """The application, row-locked until the transaction ends (MySQL; SQLite serialises writers), and
    read afresh: a page that loaded it earlier in this request must not decide on what it saw then."""
    return session.scalars(select(model).where(model.request_id == request_id).with_for_update()
                           .execution_options(populate_existing=True)).first()


def live_rank(session, model, application) -> int | None:
    """An application's rank at its daycare while it waits (None otherwise)."""
    if application.status != WAITING.code:
        return None
    return session.scalar(select(rank_of(model)).where(model.id == application.id))


# --- the rank order, in SQL -----------------------------------------------------------------------------


def rank_order(model) -> tuple:
    """The waiting order at a daycare: any verified 1순위 item first, then score, then application time
    (the request id breaks exact ties the same way in both apps)."""
    return (model.priority_tier.asc(), model.score.desc(), model.applied_at.asc(), model.request_id.asc())


def ranks_of(session, model, nursery_id: str, ids: Iterable[int]) -> dict[int, int]:
    """The ranks of some waiting applications of one daycare, in one query: ROW_NUMBER() over the queue
    (read off its index, nothing leaves the database but the asked-for rows)."""
    ids = list(ids)
    if not ids:
        return {}
    queue = select(model.id, func.row_number().over(order_by=rank_order(model)).label("rank")).where(
        model.nursery_id == nursery_id, model.status == WAITING.code).subquery()
    return dict(session.execute(select(queue.c.id, queue.c.rank).where(queue.c.id.in_(ids))).all())


def rank_of(model):
    """A correlated subquery: 1 + the waiting applications ahead of this row at its daycare (for a
    handful of rows, e.g. a parent's own; it walks the queue index, not the table)."""
    ahead = aliased(model)
    same_tier, same_score = ahead.priority_tier == model.priority_tier, ahead.score == model.score
    return select(func.count() + 1).where(
        ahead.nursery_id == model.nursery_id, ahead.status == WAITING.code,
        or_(ahead.priority_tier < model.priority_tier,
            and_(same_tier, ahead.score > model.score),
            and_(same_tier, same_score, ahead.applied_at < model.applied_at),
            and_(same_tier, same_score, ahead.applied_at == model.applied_at, ahead.request_id < model.request_id)),
    ).scalar_subquery()


def queue_indexes(model) -> None:
    """The indexes rank queries walk, in rank order exactly (score descending), so the database reads a
    page of the queue, or counts the applications ahead of one, without sorting the queue: one daycare's
    applications of one status, and the same per age class."""
    order = (model.priority_tier, model.score.desc(), model.applied_at, model.request_id)
    Index("ix_applications_queue", model.nursery_id, model.status, *order)
    Index("ix_applications_class_queue", model.nursery_id, model.status, model.age_class, *order)


class RankedApplicationMixin:
    """The columns both apps' application rows share for ranking, classes and offers."""

    desired_start: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    age_class: Mapped[int | None] = mapped_column(Integer, nullable=True)  # 0..5 (세반) at desired_start
    applied_at: Mapped[datetime] = mapped_column(PreciseDateTime)  # the latest REQUEST: ties go by it
    priority_tier: Mapped[int] = mapped_column(Integer, default=2)
    score: Mapped[int] = mapped_column(Integer, default=0)
    offered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    offer_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class CriterionMixin:
    """A priority criterion declared on an application: its proof and the daycare's verification."""

    __tablename__ = "application_criteria"
    __table_args__ = (UniqueConstraint("application_id", "code", name="uq_application_criteria_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(10), default=CriterionStatus.PENDING.value)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)  # why the daycare rejected it
    proof_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    proof_name: Mapped[str | None] = mapped_column(String(120), nullable=True)
    proof_uploaded_at: Mapped[datetime | None] = mapped_column(PreciseDateTime, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(254), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(PreciseDateTime, nullable=True)

    @declared_attr
    def application_id(cls) -> Mapped[int]:  # noqa: N805 - SQLAlchemy's declared_attr
        return mapped_column(ForeignKey("applications.id", ondelete="CASCADE"), index=True)

    def payload(self, criteria: dict[str, Criterion]) -> dict:
        """What a VERIFY or PROOF event says about this criterion (labels for the email)."""
        known = criteria.get(self.code)
        return {"code": self.code, "status": self.status, "reason": self.reason, "proof_key": self.proof_key,
                "proof_name": self.proof_name, "label_ko": known.label.ko if known else self.code,
                "label_en": known.label.en if known else self.code}


class CriterionEvent(BaseModel):
    """The `criterion` part of a VERIFY or PROOF event."""

    model_config = ConfigDict(extra="ignore")

    code: str = Field(pattern=CRITERION_CODE)
    status: CriterionStatus = CriterionStatus.PENDING
    reason: str | None = Field(default=None, max_length=500)
    proof_key: str | None = Field(default=None, max_length=300)
    proof_name: str | None = Field(default=None, max_length=120)


# --- the seed's body --------------------------------------------------------------------------------

KOREAN_PHONE = re.compile(r"^0\d{1,2}-?\d{3,4}-?\d{4}$")


class ApplicationRef(BaseModel):
    """Which application a request is about: the seed's two ids (the seed's full body is accepted too)."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore")

    child_id: str = Field(min_length=1, max_length=20, pattern=CHILD_ID)
    nursery_id: str = Field(min_length=1, max_length=10, pattern=NURSERY_ID)

    @property
    def request_id(self) -> str:
        return self.child_id + self.nursery_id


class ApplicationBody(BaseModel):
    """The seed's JSON body, validated field by field, with the portal's two additions (both optional,
    so the seed's own body still works): the desired start month and the declared priority criteria."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore")

    child_id: str = Field(min_length=1, max_length=20, pattern=CHILD_ID)
    child_name: str = Field(min_length=1, max_length=50)
    child_birthday: str
    user_id: str | None = Field(default=None, max_length=128)
    parent_name: str = Field(min_length=1, max_length=50)
    parent_tel: str
    parent_address: str = Field(min_length=1, max_length=200)
    parent_postcode: str = Field(pattern=r"^\d{5}$")
    parent_email: EmailStr
    nursery_id: str = Field(min_length=1, max_length=10, pattern=NURSERY_ID)
    desired_start: str | None = None
    criteria: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("child_birthday")
    @classmethod
    def _real_past_date(cls, value: str) -> str:
        try:
            born = datetime.strptime(value, "%Y%m%d").date()
        except ValueError:
            raise ValueError("must be a real date written YYYYMMDD") from None
        if born > date.today():
            raise ValueError("must not be in the future")
        return value

    @field_validator("parent_tel")
    @classmethod
    def _korean_phone(cls, value: str) -> str:
        if not KOREAN_PHONE.match(value):
            raise ValueError("must be a Korean phone number like 010-1234-5678")
        return value

    @field_validator("desired_start")
    @classmethod
    def _month(cls, value: str | None) -> str | None:
        if value:
            parse_month(value)
        return value or None

    @field_validator("criteria")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        codes = [str(code).strip().upper() for code in value]
        if any(not re.fullmatch(r"[A-Z0-9_]{1,30}", code) for code in codes):
            raise ValueError("must be a list of criterion codes")
        return list(dict.fromkeys(codes))

    @property
    def request_id(self) -> str:
        return self.child_id + self.nursery_id

    @property
    def birthday(self) -> date:
        return datetime.strptime(self.child_birthday, "%Y%m%d").date()
