"""The parent's forms: every rule of the service checked in the form, each with its own message, so one
submit shows every problem; and the service's refusals placed beside the field they concern."""

from __future__ import annotations

import logging
import re
from datetime import date

from flask import flash
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    EmailField,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    TelField,
)
from wtforms.validators import Email, InputRequired, Length, Optional, Regexp, ValidationError

from reqsys import services
from shared.platform.errors import ValidationFailed
from shared.waitlist.body import KOREAN_PHONE
from shared.waitlist.calendar import add_months, age_class, parse_month, this_month

log = logging.getLogger(__name__)


# the service's field names -> what a parent is told next to the field (when the service refuses what
# the form let through; the form's own rules below give one message per rule)
FIELD_MESSAGES = {
    "child_id": _l("Enter the child's ID: letters, numbers and hyphens, up to 20."),
    "name": _l("Enter the child's name (up to 50 characters)."),
    "child_name": _l("Enter the child's name (up to 50 characters)."),
    "birthday": _l("Enter a real date that is not in the future."),
    "child_birthday": _l("Enter a real date that is not in the future."),
    "parent_name": _l("Enter your name (up to 50 characters)."),
    "parent_tel": _l("Enter a phone number like 010-1234-5678."),
    "parent_address": _l("Enter your address (up to 200 characters)."),
    "parent_postcode": _l("Enter the 5-digit postcode."),
    "parent_email": _l("Enter a valid email address."),
    "nursery_id": _l("This daycare does not exist."),
    "desired_start": _l("Choose a month from this month up to two years ahead in which the child is at most in 5세반."),
    "criteria": _l("Choose only the criteria listed."),
}
ALREADY_REGISTERED = _l("You have already registered a child with this ID.")
NO_APPLICATION = _l("There is no such application among yours.")
CHILD_ID_RULE = re.compile(r"^[0-9A-Za-z-]+$")
POSTCODE_RULE = re.compile(r"^\d{5}$")


# --- forms: every rule of the service, each with its own message, so one submit shows every problem -----


class DayField(DateField):
    """A date box whose unreadable value gets the page's own message (an empty one: InputRequired's)."""

    def process_formdata(self, valuelist):
        if valuelist and not str(valuelist[0]).strip():
            self.data = None
            return
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(_("Enter the date as a real date, e.g. 2023-03-01.")) from None


class ChildForm(FlaskForm):
    child_id = StringField(_l("Child ID"), validators=[
        InputRequired(_l("Enter the child's ID.")),
        Length(max=20, message=_l("The child's ID is too long: at most 20 characters.")),
        Regexp(CHILD_ID_RULE, message=_l("The child's ID may hold only letters, numbers and hyphens."))],
        render_kw={"inputmode": "numeric", "autocomplete": "off"})
    name = StringField(_l("Child's name"), validators=[
        InputRequired(_l("Enter the child's name.")),
        Length(max=50, message=_l("The name is too long: at most 50 characters."))])
    birthday = DayField(_l("Birthday"), validators=[InputRequired(_l("Enter the child's birthday."))])

    def validate_birthday(self, field) -> None:
        if field.data and field.data > date.today():
            raise ValidationError(_("The birthday cannot be in the future."))


class ApplyForm(FlaskForm):
    child = SelectField(_l("Child"), coerce=int, validators=[InputRequired(_l("Choose a child."))])
    # a month box (type=month) read as text, so a wrong month gets its own message, not the library's
    desired_start = StringField(_l("Desired start month"), validators=[Optional()],  # empty: next month
                                render_kw={"type": "month", "placeholder": "YYYY-MM"})
    criteria = SelectMultipleField(_l("Priority criteria"), validators=[Optional()])
    parent_name = StringField(_l("Parent's name"), validators=[
        InputRequired(_l("Enter your name.")),
        Length(max=50, message=_l("Your name is too long: at most 50 characters."))],
        render_kw={"autocomplete": "name"})
    parent_tel = TelField(_l("Phone"), validators=[
        InputRequired(_l("Enter your phone number.")),
        Regexp(KOREAN_PHONE, message=_l("Enter a phone number like 010-1234-5678."))],
        render_kw={"autocomplete": "tel", "inputmode": "tel"})
    parent_email = EmailField(_l("Email"), validators=[
        InputRequired(_l("Enter your email address.")),
        Length(max=254, message=_l("The email address is too long.")),
        Email(_l("Enter an email address like name@example.com."), check_deliverability=False)],
        render_kw={"autocomplete": "email"})
    parent_address = StringField(_l("Address"), validators=[
        InputRequired(_l("Enter your address.")),
        Length(max=200, message=_l("The address is too long: at most 200 characters."))],
        render_kw={"autocomplete": "street-address", "maxlength": False})  # said, not cut off silently
    parent_postcode = StringField(_l("Postcode"), validators=[
        InputRequired(_l("Enter the postcode.")),
        Regexp(POSTCODE_RULE, message=_l("The postcode has 5 digits, e.g. 03991."))],
        render_kw={"autocomplete": "postal-code", "inputmode": "numeric"})

    def __init__(self, *args, kids=(), **kwargs):
        super().__init__(*args, **kwargs)
        self._birthdays = {kid.id: kid.birthday for kid in kids}

    def validate_desired_start(self, field) -> None:
        """The service's rules for the month: readable, from this month to MONTHS_AHEAD, the child at most in 5세반."""
        if not field.data:
            return
        try:
            start = parse_month(field.data.strip())
        except ValueError:
            raise ValidationError(_("Enter the month as year and month, e.g. 2027-03.")) from None
        first = this_month()
        if not first <= start <= add_months(first, services.MONTHS_AHEAD):
            raise ValidationError(_("Choose a month from %(first)s to %(last)s.", first=f"{first:%Y-%m}",
                                    last=f"{add_months(first, services.MONTHS_AHEAD):%Y-%m}"))
        birthday = self._birthdays.get(self.child.data)
        if birthday is not None and age_class(birthday, start) is None:
            raise ValidationError(_("By this month the child is past 5세반: choose an earlier month."))


class ProofForm(FlaskForm):
    key = HiddenField(validators=[InputRequired(_l("Choose a file to upload."))])


def show_field_errors(form: FlaskForm, err: ValidationFailed, aliases: dict[str, str] | None = None) -> None:
    for name, message in err.fields.items():
        target = getattr(form, (aliases or {}).get(name, name), None)
        text = ALREADY_REGISTERED if message == "is already registered" else FIELD_MESSAGES.get(name)
        if target is not None and hasattr(target, "errors"):
            target.errors = [*target.errors, text or message]
        else:
            flash(text or message, "error")


