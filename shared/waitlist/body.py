"""The seed's JSON body of an application, validated field by field."""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationInfo, field_validator

from shared.waitlist.calendar import parse_month

CHILD_ID = r"^[0-9A-Za-z-]+$"
NURSERY_ID = r"^[A-Za-z0-9]+$"
REQUEST_ID = r"^[0-9A-Za-z.-]+$"

KOREAN_PHONE = re.compile(r"^0\d{1,2}-?\d{3,4}-?\d{4}$")


def request_id_for(parent_sub: str, child_id: str, nursery_id: str) -> str:
    """The id of an account's application for its child at a daycare: the seed's child_id + nursery_id, then
    a tag of the account (children are each account's own: another account typing the same child id at the
    same daycare gets an application of its own, with an id of the same form, so it learns nothing)."""
    tag = hashlib.sha256(f"waitlist-account:{parent_sub}".encode()).hexdigest()[:10]
    return f"{child_id}{nursery_id}.{tag}"


class ApplicationRef(BaseModel):
    """Which application a request is about: the seed's two ids (the seed's full body is accepted too),
    or the application's own `request_id` (needed where two accounts' children share the seed's ids)."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore")

    request_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=REQUEST_ID)
    child_id: str | None = Field(default=None, min_length=1, max_length=20, pattern=CHILD_ID, validate_default=True)
    nursery_id: str | None = Field(default=None, min_length=1, max_length=10, pattern=NURSERY_ID,
                                   validate_default=True)

    @field_validator("child_id", "nursery_id")
    @classmethod
    def _required_without_request_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and not info.data.get("request_id"):
            raise ValueError("Field required (or give request_id)")
        return value


class ApplicationBody(BaseModel):
    """The seed's JSON body, validated field by field, with the portal's two additions (both optional,
    so the seed's own body still works): the desired start month and the declared priority criteria."""

    # built on first use: EmailStr's email-validator is not imported at cold start (the sign-in page)
    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore", defer_build=True)

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
    def birthday(self) -> date:
        return datetime.strptime(self.child_birthday, "%Y%m%d").date()
