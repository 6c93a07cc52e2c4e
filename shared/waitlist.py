"""The waitlist rules both apps share: statuses, the state machine, the seed's body.

Status codes keep the original numbers (1 requested, 2 accepted, 88 rejected,
99 cancelled). Events for one application carry a version that grows with each state
change, so a late or duplicated event never undoes a newer one (see `should_apply`).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import Enum

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from shared.errors import Conflict


class Status(Enum):
    REQUESTED = 1
    ACCEPTED = 2
    REJECTED = 88
    CANCELLED = 99

    @property
    def code(self) -> int:
        return self.value


# event type -> the status it leads to, and the statuses it may start from
# (None: no application yet)
TRANSITIONS: dict[str, tuple[Status, set[Status | None]]] = {
    "REQUEST": (Status.REQUESTED, {None, Status.CANCELLED, Status.REJECTED}),
    "ACCEPT": (Status.ACCEPTED, {Status.REQUESTED}),
    "REJECT": (Status.REJECTED, {Status.REQUESTED}),
    "CANCEL": (Status.CANCELLED, {Status.REQUESTED, Status.ACCEPTED}),
}


def next_status(current: Status | None, event_type: str) -> Status:
    """The status after `event_type`, or 409 Conflict for a transition the rules forbid."""
    target, allowed = TRANSITIONS[event_type]
    if current not in allowed:
        state = current.name if current else "no application"
        raise Conflict(f"Cannot {event_type.lower()} an application that is {state.lower()}")
    return target


def should_apply(current_version: int, current: Status | None, event_version: int, event_type: str) -> bool:
    """Whether a synced event is newer than what we hold (older or equal ones are ignored).

    The two systems number their own changes, so a parent's cancel and a staff decision
    made at the same moment can carry the same version: then the cancel wins, on both sides.
    """
    if event_version > current_version:
        return True
    return event_version == current_version and event_type == "CANCEL" and current is not Status.CANCELLED


KOREAN_PHONE = re.compile(r"^0\d{1,2}-?\d{3,4}-?\d{4}$")


class ApplicationBody(BaseModel):
    """The seed's JSON body, validated field by field."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore")

    child_id: str = Field(min_length=1, max_length=20, pattern=r"^[0-9A-Za-z-]+$")
    child_name: str = Field(min_length=1, max_length=50)
    child_birthday: str
    user_id: str | None = Field(default=None, max_length=128)
    parent_name: str = Field(min_length=1, max_length=50)
    parent_tel: str
    parent_address: str = Field(min_length=1, max_length=200)
    parent_postcode: str = Field(pattern=r"^\d{5}$")
    parent_email: EmailStr
    nursery_id: str = Field(min_length=1, max_length=10, pattern=r"^[A-Za-z0-9]+$")

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

    @property
    def request_id(self) -> str:
        return self.child_id + self.nursery_id
