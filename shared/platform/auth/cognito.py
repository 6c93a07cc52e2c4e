"""Cognito user-pool calls behind the sign-in pages and POST /auth/token.

Every Cognito error is turned into an AuthError with a message fit for the user;
the SDK's own text and metadata never reach a response.
"""

from __future__ import annotations

import logging

from flask_babel import lazy_gettext as _l

from shared.platform.aws import client

log = logging.getLogger(__name__)


class AuthError(Exception):
    def __init__(self, message, status: int = 400, code: str = "auth_failed", field: str | None = None):
        super().__init__(str(message))
        self.message = message
        self.status = status
        self.code = code
        self.field = field


LOCKED_MESSAGE = _l("Too many failed sign-ins. Please wait a few minutes before trying again, "
                    "or reset your password.")

# Cognito error code -> (user message, HTTP status, our code, form field)
_ERRORS = {
    "NotAuthorizedException": (_l("Incorrect email or password."), 401, "invalid_credentials", None),
    # same answer as a wrong password, so sign-in does not reveal who has an account
    "UserNotFoundException": (_l("Incorrect email or password."), 401, "invalid_credentials", None),
    "UserNotConfirmedException": (
        _l("Please confirm your email address first."), 403, "not_confirmed", None),
    "UsernameExistsException": (_l("An account with this email already exists."), 409, "exists", "email"),
    "InvalidPasswordException": (
        _l("The password must be at least 8 characters with upper and lower case letters, "
           "a number and a symbol."), 400, "weak_password", "password"),
    "CodeMismatchException": (_l("The code is not correct."), 400, "wrong_code", "code"),
    "ExpiredCodeException": (_l("The code has expired. Ask for a new one."), 400, "expired_code", "code"),
    "PasswordResetRequiredException": (
        _l("Your password must be reset before you can sign in. Use \"Forgot password\"."), 403,
        "password_reset_required", None),
    "LimitExceededException": (_l("Too many attempts. Please wait and try again."), 429, "rate_limited", None),
    "TooManyRequestsException": (LOCKED_MESSAGE, 429, "rate_limited", None),
    "TooManyFailedAttemptsException": (
        _l("Too many attempts. Please wait and try again."), 429, "rate_limited", None),
    "InvalidParameterException": (_l("Some of the details are not valid."), 400, "invalid", None),
}


def _error(err) -> AuthError:
    """A Cognito ClientError as the AuthError the user is told (503 "unavailable" for one we do not know)."""
    code = err.response.get("Error", {}).get("Code", "")
    if code == "NotAuthorizedException" and "attempts exceeded" in err.response["Error"].get("Message", ""):
        # Cognito's own lockout after repeated wrong passwords ("Password attempts exceeded")
        return AuthError(LOCKED_MESSAGE, 429, "rate_limited")
    if code in _ERRORS:
        message, status, our_code, field = _ERRORS[code]
        return AuthError(message, status, our_code, field)
    return AuthError(_l("Sign-in is unavailable right now. Please try again."), 503, "unavailable")


def _call(operation: str, **kwargs):
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return getattr(client("cognito-idp"), operation)(**kwargs)
    except ClientError as err:
        error = _error(err)
        if error.code == "unavailable":
            log.exception("cognito %s failed", operation)
        raise error from None
    except BotoCoreError:
        log.exception("cognito %s unreachable", operation)
        raise AuthError(_l("Sign-in is unavailable right now. Please try again."), 503, "unavailable") from None


def sign_in(client_id: str, email: str, password: str) -> dict:
    """Password sign-in; returns id_token, access_token, refresh_token, expires_in."""
    result = _call(
        "initiate_auth",
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )
    auth = result.get("AuthenticationResult")
    if not auth:  # a challenge (e.g. NEW_PASSWORD_REQUIRED) we do not support in the UI
        raise AuthError(_l("This account needs an administrator to finish its set-up."), 403, "challenge")
    return {
        "id_token": auth["IdToken"],
        "access_token": auth["AccessToken"],
        "refresh_token": auth.get("RefreshToken"),
        "expires_in": auth["ExpiresIn"],
        "token_type": "Bearer",
    }


def sign_up(client_id: str, email: str, password: str, name: str, phone: str | None) -> str:
    attributes = [{"Name": "email", "Value": email}, {"Name": "name", "Value": name}]
    if phone:
        attributes.append({"Name": "phone_number", "Value": phone})
    result = _call("sign_up", ClientId=client_id, Username=email, Password=password, UserAttributes=attributes)
    return result["UserSub"]


def confirm_sign_up(client_id: str, email: str, code: str) -> None:
    _call("confirm_sign_up", ClientId=client_id, Username=email, ConfirmationCode=code)


def add_to_group(pool_id: str, email: str, group: str) -> None:
    _call("admin_add_user_to_group", UserPoolId=pool_id, Username=email, GroupName=group)


def forgot_password(client_id: str, email: str) -> None:
    try:
        _call("forgot_password", ClientId=client_id, Username=email)
    except AuthError as err:
        # Do not reveal whether the address has an account; only throttling is worth telling.
        if err.code == "rate_limited":
            raise


def reset_password(client_id: str, email: str, code: str, password: str) -> None:
    _call("confirm_forgot_password", ClientId=client_id, Username=email, ConfirmationCode=code, Password=password)


def get_profile(pool_id: str, username: str) -> dict[str, str]:
    result = _call("admin_get_user", UserPoolId=pool_id, Username=username)
    return {a["Name"]: a["Value"] for a in result.get("UserAttributes", [])}


def update_profile(pool_id: str, username: str, name: str, phone: str | None) -> None:
    attributes = [{"Name": "name", "Value": name}, {"Name": "phone_number", "Value": phone or ""}]
    _call("admin_update_user_attributes", UserPoolId=pool_id, Username=username, UserAttributes=attributes)
