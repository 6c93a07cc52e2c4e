"""What staff send: the forms of the pages, and the query strings of the pages and JSON lists (400 naming a
bad parameter)."""

from __future__ import annotations

from typing import Literal

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from pydantic import BaseModel, ConfigDict, Field
from wtforms import IntegerField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from childsys import capacity
from shared.waitlist.body import NURSERY_ID
from shared.waitlist.calendar import OLDEST_CLASS

TOO_LONG = _l("Too long: at most 500 characters.")


class RejectForm(FlaskForm):
    reason = TextAreaField(_l("Reason for the rejection"), validators=[
        InputRequired(_l("Give a reason for the rejection: the parent reads it.")), Length(max=500, message=TOO_LONG)])


class OfferForm(FlaskForm):
    override_reason = TextAreaField(_l("Reason for offering beyond the class's places"),
                                    validators=[Optional(), Length(max=500, message=TOO_LONG)])


class CriterionRejectForm(FlaskForm):
    reason = StringField(_l("Why it is not accepted"), validators=[
        InputRequired(_l("Give a reason for not accepting the criterion.")), Length(max=500, message=TOO_LONG)])


class PlacesField(IntegerField):
    """A number of places; what is not a whole number gets the page's own message."""

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(_("Enter a whole number of places, from 0 to %(max)d.", max=capacity.MAX_PLACES)) from None


class PlacesForm(FlaskForm):
    """Places per class; an empty field means no limit is set."""


PLACES_RANGE = _l("Enter a number of places from 0 to %(max)d.", max=capacity.MAX_PLACES)
for _class in capacity.CLASSES:
    setattr(PlacesForm, f"class_{_class}", PlacesField(
        _l("%(n)d-year class", n=_class),
        validators=[Optional(), NumberRange(0, capacity.MAX_PLACES, message=PLACES_RANGE)]))


class DaycareQuery(BaseModel):
    """The query string of every daycare page and list (400 naming a bad parameter)."""

    model_config = ConfigDict(extra="ignore")

    nursery_id: str | None = Field(default=None, max_length=10, pattern=NURSERY_ID)
    page: int = Field(default=1, ge=1, le=100_000)


class ListQuery(DaycareQuery):
    status: str | None = None  # a status name (services.parse_status); the page also takes ALL
    sort: Literal["rank", "newest"] = "rank"
    klass: int | None = Field(default=None, alias="class", ge=0, le=OLDEST_CLASS)


class AuditQuery(DaycareQuery):
    type: str | None = Field(default=None, max_length=10)  # an event type (audit.list_audit)
    q: str | None = Field(default=None, max_length=50)  # part of a child's name or a request id
    actor: str | None = Field(default=None, max_length=254)
