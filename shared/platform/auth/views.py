"""Sign up, confirm, sign in/out, password reset, profile pages, and POST /auth/token."""

from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from shared.platform.auth import (
    cognito,
    end_session,
    login_required,
    session_identity,
    start_session,
    throttle,
    verify_id_token,
)
from shared.platform.auth.cognito import AuthError
from shared.platform.auth.forms import (
    ConfirmForm,
    EmptyForm,
    ForgotForm,
    LoginForm,
    ProfileForm,
    ResetForm,
    SignupForm,
    from_e164,
    to_e164,
)
from shared.platform.errors import ApiError
from shared.platform.payloads import load_json

bp = Blueprint("auth", __name__, url_prefix="/auth")


def _settings():
    return current_app.config["SETTINGS"]


def safe_next(target: str, default: str) -> str:
    """`target` if it is a path on this site, else `default`.

    Browsers (WHATWG URL parsing) drop tabs and newlines anywhere in a Location and strip leading
    control characters and spaces, and read a backslash as a slash: `/\t/evil.example` becomes
    `//evil.example`, another host. So any control character, space or backslash refuses the target
    (a newline would also break the header), and what remains must be a path: one leading slash,
    no scheme, no host.
    """
    from urllib.parse import urlsplit

    if not target or any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in target) or "\\" in target:
        return default
    if not target.startswith("/") or target.startswith("//"):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def _safe_next(default: str) -> str:
    return safe_next(request.args.get("next", ""), default)


def _form_error(form, err: AuthError) -> None:
    field = getattr(form, err.field, None) if err.field else None
    if field is not None:
        field.errors = [*field.errors, str(err.message)]
    else:  # shown in the error summary above the form; the refused form answers 400, not 200
        form.form_errors.append(str(err.message))


class TokenRequest(BaseModel):
    model_config = ConfigDict(defer_build=True)  # EmailStr's email-validator: at the first POST, not at cold start

    email: EmailStr
    password: str = Field(min_length=1, max_length=256)


def _sign_in(email: str, password: str) -> dict:
    """Cognito's tokens for a right password; AuthError otherwise. Too many wrong passwords for the
    account from this address lock it for a while (429, the right password too: throttle)."""
    if throttle.locked(email):
        raise AuthError(cognito.LOCKED_MESSAGE, 429, "rate_limited")
    try:
        tokens = cognito.sign_in(_settings().cognito_client_id, email, password)
    except AuthError as err:
        if err.code == "invalid_credentials" and throttle.failed(email):
            raise AuthError(cognito.LOCKED_MESSAGE, 429, "rate_limited") from None
        raise
    throttle.succeeded(email)
    return tokens


@bp.post("/token")
def token():
    body = load_json(TokenRequest)
    try:
        tokens = _sign_in(body.email, body.password)
    except AuthError as err:
        raise ApiError(err.status, err.code, str(err.message)) from None
    return jsonify(tokens)


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            tokens = _sign_in(form.email.data, form.password.data)
            identity = verify_id_token(tokens["id_token"])
        except AuthError as err:
            if err.code == "not_confirmed":
                flash(str(err.message), "error")
                return redirect(url_for("auth.confirm", email=form.email.data))
            _form_error(form, err)
            status = 429 if err.status == 429 else 400
        else:
            start_session(identity, tokens.get("refresh_token"))
            flash(_("Signed in as %(email)s.", email=identity.email), "success")
            return redirect(_safe_next(url_for("home")))
    return render_template("auth/login.html", form=form), status if status != 200 else (400 if form.errors else 200)


@bp.post("/logout")
def logout():
    form = EmptyForm()
    if form.validate_on_submit():
        end_session()
        flash(_("You are signed out."), "success")
    return redirect(url_for("auth.login"))


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    form = SignupForm()
    if form.validate_on_submit():
        settings = _settings()
        phone = to_e164(form.phone.data) if form.phone.data else None
        try:
            cognito.sign_up(settings.cognito_client_id, form.email.data, form.password.data, form.name.data, phone)
            group = current_app.config.get("SIGNUP_GROUP")
            if group:
                cognito.add_to_group(settings.cognito_userpool_id, form.email.data, group)
        except AuthError as err:
            _form_error(form, err)
        else:
            flash(_("We sent a confirmation code to %(email)s.", email=form.email.data), "success")
            return redirect(url_for("auth.confirm", email=form.email.data))
    status = 400 if form.errors else 200
    return render_template("auth/signup.html", form=form), status


@bp.route("/confirm", methods=["GET", "POST"])
def confirm():
    form = ConfirmForm()
    if request.method == "GET" and request.args.get("email"):
        form.email.data = request.args["email"]
    if form.validate_on_submit():
        try:
            cognito.confirm_sign_up(_settings().cognito_client_id, form.email.data, form.code.data)
        except AuthError as err:
            _form_error(form, err)
        else:
            flash(_("Your email is confirmed. Please sign in."), "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/confirm.html", form=form), 400 if form.errors else 200


@bp.route("/forgot", methods=["GET", "POST"])
def forgot():
    form = ForgotForm()
    if form.validate_on_submit():
        try:
            cognito.forgot_password(_settings().cognito_client_id, form.email.data)
        except AuthError as err:
            _form_error(form, err)
        else:
            flash(_("If an account exists for %(email)s, we sent it a code.", email=form.email.data), "success")
            return redirect(url_for("auth.reset", email=form.email.data))
    return render_template("auth/forgot.html", form=form), 400 if form.errors else 200


@bp.route("/reset", methods=["GET", "POST"])
def reset():
    form = ResetForm()
    if request.method == "GET" and request.args.get("email"):
        form.email.data = request.args["email"]
    if form.validate_on_submit():
        try:
            cognito.reset_password(_settings().cognito_client_id, form.email.data, form.code.data,
                                   form.password.data)
        except AuthError as err:
            _form_error(form, err)
        else:
            flash(_("Your password is changed. Please sign in."), "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/reset.html", form=form), 400 if form.errors else 200


@bp.route("/profile", methods=["GET", "POST"])
@login_required()
def profile():
    if current_app.config.get("PROFILE_ENDPOINT", "auth.profile") != "auth.profile":
        return redirect(url_for(current_app.config["PROFILE_ENDPOINT"]))  # the app's own page edits these too
    settings = _settings()
    form = ProfileForm()
    if request.method == "GET":
        attributes = cognito.get_profile(settings.cognito_userpool_id, g.identity.email)
        form.name.data = attributes.get("name", "")
        form.phone.data = from_e164(attributes.get("phone_number", ""))
    elif form.validate_on_submit():
        phone = to_e164(form.phone.data) if form.phone.data else None
        try:
            cognito.update_profile(settings.cognito_userpool_id, g.identity.email, form.name.data, phone)
        except AuthError as err:
            _form_error(form, err)
        else:
            start_session(replace(session_identity(), name=form.name.data), renew=False)
            flash(_("Your profile is saved."), "success")
            return redirect(url_for("auth.profile"))
    return render_template("auth/profile.html", form=form), 400 if form.errors else 200
