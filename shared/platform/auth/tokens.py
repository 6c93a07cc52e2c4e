"""Token checks through flask-cognito, loaded when a token is first checked, not at cold start.

flask-cognito brings cognitojwt, python-jose (with its RSA and ASN.1 code) and requests: a fifth of a
web app's import, which a parent opening the sign-in page never needs. `shared.platform.auth` imports
this module inside the functions that check a token (a bearer request, the sign-in form's token).
"""

from __future__ import annotations

from flask import Flask, current_app
from flask_cognito import CognitoAuth, CognitoAuthError, _cognito_auth_required, current_cognito_jwt

from shared.platform.errors import Forbidden, Unauthorized


class CheckedCognitoAuth(CognitoAuth):
    """flask-cognito, plus the checks cognitojwt leaves out: issuer and token use."""

    def decode_token(self, token):
        from cognitojwt import CognitoJWTException

        try:
            claims = super().decode_token(token)
        except (KeyError, TypeError, IndexError) as err:  # cognitojwt indexes headers/claims unchecked
            raise CognitoJWTException("Malformed Authentication Token") from err
        if claims.get("iss") != current_app.config["SETTINGS"].cognito_issuer:
            raise CognitoJWTException("Token was not issued by this user pool")
        if claims.get("token_use") != "id":
            raise CognitoJWTException("An id token is required")
        return claims


class _WithoutErrorHandler:
    """The app as CognitoAuth.init_app sees it, minus `errorhandler`: a Flask app that has served a request
    takes no new handlers, and the refusals are ours (`require_token`)."""

    def __init__(self, app: Flask):
        self.config, self.extensions = app.config, app.extensions

    def errorhandler(self, _error):
        return lambda handler: handler


def cognito(app: Flask) -> CheckedCognitoAuth:
    """The app's token checker, made on first use (init_auth has put its settings in app.config)."""
    auth = app.extensions.get("cognito_auth")
    if auth is None:
        auth = CheckedCognitoAuth()
        auth.init_app(_WithoutErrorHandler(app))
    return auth


def decode(token: str) -> dict:
    """The verified claims of `token`; raises cognitojwt's CognitoJWTException."""
    return cognito(current_app).decode_token(token)


def require_token() -> dict:
    """The verified claims of this request's bearer token; 401 without a valid one (flask-cognito's 403: 403)."""
    cognito(current_app)
    try:
        _cognito_auth_required()
    except CognitoAuthError as err:
        if err.status_code == 403:
            raise Forbidden() from err
        raise Unauthorized("A valid bearer token is required") from err
    return dict(current_cognito_jwt)
