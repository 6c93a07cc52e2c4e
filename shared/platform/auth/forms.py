"""Sign-in and account forms (Flask-WTF: CSRF on every one)."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import Email, EqualTo, InputRequired, Length, Optional, Regexp, ValidationError

KOREAN_MOBILE = re.compile(r"^01[016789]-?\d{3,4}-?\d{4}$")


def to_e164(phone: str) -> str:
    """010-1234-5678 -> +821012345678 (Cognito stores phone numbers in E.164)."""
    digits = re.sub(r"\D", "", phone)
    return "+82" + digits[1:]


def from_e164(phone: str) -> str:
    if not phone.startswith("+82"):
        return phone
    digits = "0" + phone[3:]
    return f"{digits[:3]}-{digits[3:-4]}-{digits[-4:]}"


class KoreanPhone:
    def __call__(self, form, field):
        if field.data and not KOREAN_MOBILE.match(field.data.strip()):
            raise ValidationError(_l("Enter a mobile number like 010-1234-5678."))


_email = [InputRequired(_l("Enter your email address.")), Email(_l("Enter a valid email address.")),
          Length(max=254)]
_password = [InputRequired(_l("Enter a password.")), Length(min=8, max=256,
             message=_l("The password must be at least 8 characters."))]
_code = [InputRequired(_l("Enter the code from the email.")),
         Regexp(r"^\S{1,64}$", message=_l("Enter the code from the email."))]


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=_email)
    password = PasswordField(_l("Password"), validators=[InputRequired(_l("Enter your password."))])


class SignupForm(FlaskForm):
    email = EmailField(_l("Email"), validators=_email)
    name = StringField(_l("Name"), validators=[InputRequired(_l("Enter your name.")), Length(max=100)])
    phone = StringField(_l("Mobile phone (optional)"), validators=[Optional(), KoreanPhone()])
    password = PasswordField(_l("Password"), validators=_password)
    password_again = PasswordField(
        _l("Password again"), validators=[EqualTo("password", _l("The passwords do not match."))])


class ConfirmForm(FlaskForm):
    email = EmailField(_l("Email"), validators=_email)
    code = StringField(_l("Confirmation code"), validators=_code)


class ForgotForm(FlaskForm):
    email = EmailField(_l("Email"), validators=_email)


class ResetForm(FlaskForm):
    email = EmailField(_l("Email"), validators=_email)
    code = StringField(_l("Code from the email"), validators=_code)
    password = PasswordField(_l("New password"), validators=_password)


class ProfileForm(FlaskForm):
    name = StringField(_l("Name"), validators=[InputRequired(_l("Enter your name.")), Length(max=100)])
    phone = StringField(_l("Mobile phone (optional)"), validators=[Optional(), KoreanPhone()])


class EmptyForm(FlaskForm):
    """A form with only the CSRF token: for buttons such as sign out."""
