"""What the parent's requests carry, validated field by field."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.waitlist.body import CHILD_ID, ApplicationRef

SEED_FIELDS = frozenset({"child_id", "child_name", "child_birthday", "parent_name", "parent_tel", "parent_address",
                         "parent_postcode", "parent_email", "nursery_id"})


MONTHS_AHEAD = 24  # how far ahead a desired start month may be


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


class ApplicationIds(ApplicationRef):
    """Which of the parent's applications (cancel, confirm, decline); a user_id, if given, must be the parent."""

    user_id: str | None = Field(default=None, max_length=128)
