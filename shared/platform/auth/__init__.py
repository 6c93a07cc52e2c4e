"""Cognito authentication for all three apps, through flask-cognito.

- JSON routes: `Authorization: Bearer <id_token>`, checked by `api_auth_required`.
- Pages: a session cookie holding the verified claims, checked by `login_required`.
Both end in the same `Identity` in `g.identity`; services take it as an argument and
make their own authorization decisions (which child, which daycare).

Tokens are checked for signature (JWKS), expiry and audience by flask-cognito and
cognitojwt; cognitojwt does not check the issuer, so `CheckedCognitoAuth` adds it, and
insists on id tokens (they carry email, groups and the daycare id). Both live in `tokens`, imported
when a token is first checked: the sign-in page, a cold start's usual first request, needs neither.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import wraps

from flask import Flask, current_app, g, redirect, request, session, url_for

from shared.platform.errors import Forbidden, Unauthorized

GROUPS = ("parents", "staff", "admins", "employees")


@dataclass(frozen=True)
class Identity:
    sub: str
    email: str
    name: str
    groups: tuple[str, ...]
    daycare_id: str | None
    expires_at: int

    @classmethod
    def from_claims(cls, claims: dict) -> Identity:
        return cls(
            sub=claims["sub"],
            email=claims.get("email", ""),
            name=claims.get("name", ""),
            groups=tuple(claims.get("cognito:groups") or ()),
            daycare_id=claims.get("custom:daycare_id") or None,
            expires_at=int(claims["exp"]),
        )

    def in_any(self, *groups: str) -> bool:
        return not groups or any(group in self.groups for group in groups)

    @property
    def is_admin(self) -> bool:
        return "admins" in self.groups


def init_auth(app: Flask) -> None:
    settings = app.config["SETTINGS"]
    app.config.update(
        COGNITO_REGION=settings.region,
        COGNITO_USERPOOL_ID=settings.cognito_userpool_id or "unconfigured",
        COGNITO_APP_CLIENT_ID=settings.cognito_client_id,
        COGNITO_CHECK_TOKEN_EXPIRATION=True,
    )
    if settings.jwks_path:
        import os

        # cognitojwt reads the JWKS location from the environment only
        os.environ["AWS_COGNITO_JWKS_PATH"] = settings.jwks_path
    # the token checker (flask-cognito) is made when a token is first checked: shared.platform.auth.tokens

    @app.context_processor
    def _inject_identity():
        return {"identity": session_identity()}


def verify_id_token(token: str) -> Identity:
    """Verify a token outside a bearer request (sign-in page); raises Unauthorized."""
    from cognitojwt import CognitoJWTException

    from shared.platform.auth.tokens import decode

    try:
        claims = decode(token)
    except CognitoJWTException as err:
        raise Unauthorized("The sign-in token was not valid") from err
    return Identity.from_claims(claims)


# --- JSON routes --------------------------------------------------------------------------------


class NotForThisApp(Forbidden):
    def __init__(self):
        super().__init__(str(current_app.config.get("APP_GROUPS_MESSAGE") or "You do not have access to this resource"))
        self.code = "not_a_member"


def _refuse(identity: Identity, groups: tuple[str, ...]) -> None:
    """403 unless `identity` is in one of the app's groups (APP_GROUPS: who may use the app at all,
    e.g. taskapp's agency employees) and in one of the route's `groups`."""
    if not identity.in_any(*current_app.config.get("APP_GROUPS", ())):
        raise NotForThisApp()
    if not identity.in_any(*groups):
        raise Forbidden()


def api_auth_required(*groups: str):
    """Bearer token required; with groups, membership of one of them (else 403)."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            from shared.platform.auth.tokens import require_token

            identity = Identity.from_claims(require_token())
            _refuse(identity, groups)
            g.identity = identity
            return view(*args, **kwargs)

        return wrapper

    return decorator


# --- pages -----------------------------------------------------------------------------------------

_SESSION_KEYS = ("sub", "email", "name", "groups", "daycare_id", "expires_at")


def start_session(identity: Identity, refresh_token: str | None = None, *, renew: bool = True) -> None:
    """Sign the browser in as `identity`: a new server-side session record (shared.platform.auth.sessions)
    that the cookie names. `renew=False` only changes the claims the cookie carries (a profile edit),
    keeping the record."""
    from shared.platform.auth import sessions

    session_id = session.get("sid")
    if renew or not session_id:
        if session_id:
            sessions.end(session_id)  # signing in again replaces the old session
        session_id = sessions.create(identity.sub, identity.expires_at, refresh_token)
    session.clear()
    session.update({key: getattr(identity, key) for key in _SESSION_KEYS})
    session["groups"] = list(identity.groups)
    session["sid"] = session_id
    session.permanent = True
    g.pop("session_checked", None)


def end_session() -> None:
    """Sign out: the session's record is deleted (every copy of the cookie stops working) and its Cognito
    refresh token revoked."""
    from shared.platform.auth import sessions

    session_id = session.get("sid")
    if session_id:
        sessions.end(session_id)
    session.clear()


def session_identity() -> Identity | None:
    """The signed-in user of this browser session, or None (expired or signed-out sessions end here)."""
    if "sub" not in session:
        return None
    if session.get("expires_at", 0) < time.time() or not _record_alive():
        session.clear()
        return None
    return Identity(
        sub=session["sub"],
        email=session.get("email", ""),
        name=session.get("name", ""),
        groups=tuple(session.get("groups", ())),
        daycare_id=session.get("daycare_id"),
        expires_at=session["expires_at"],
    )


def _record_alive() -> bool:
    """The cookie's session record exists (looked up once per request)."""
    from shared.platform.auth import sessions

    if "session_checked" not in g:
        g.session_checked = sessions.alive(str(session.get("sid") or ""), str(session["sub"]))
    return g.session_checked


def login_required(*groups: str):
    """Signed-in session required; with groups, membership of one of them (else 403 page)."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            identity = session_identity()
            if identity is None:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            _refuse(identity, groups)
            g.identity = identity
            return view(*args, **kwargs)

        return wrapper

    return decorator
