"""One error shape for every app.

JSON callers (the /api routes, /auth/token, the seed's JSON routes, anyone sending
a bearer token or asking for JSON) get {"error": {"code", "message", "fields"?}};
browsers get an error page. Never a stack trace, SQL text or SDK metadata.
"""

from __future__ import annotations

import logging
import re

from flask import Flask, current_app, jsonify, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error a caller can act on: status, stable code, message, and per-field messages."""

    def __init__(self, status: int, code: str, message: str, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}


class Unauthorized(ApiError):
    def __init__(self, message: str = "Authentication required"):
        super().__init__(401, "unauthorized", message)


class Forbidden(ApiError):
    def __init__(self, message: str = "You do not have access to this resource"):
        super().__init__(403, "forbidden", message)


class NotFound(ApiError):
    def __init__(self, message: str = "Not found"):
        super().__init__(404, "not_found", message)


class Conflict(ApiError):
    """409: the request is fine but the state it finds forbids it; `code` says which refusal it is."""

    def __init__(self, message: str, code: str = "conflict"):
        super().__init__(409, code, message)


class ValidationFailed(ApiError):
    def __init__(self, fields: dict[str, str], message: str = "Some fields are invalid"):
        super().__init__(400, "invalid", message, fields)


def wants_json() -> bool:
    prefixes = tuple(current_app.config.get("JSON_PATH_PREFIXES", ()))
    if request.path.startswith(prefixes):
        return True
    if request.headers.get("Authorization", "").lower().startswith("bearer "):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


# What an error page says, in plain words: a heading for what happened and what to do next.
PAGE_TEXT = {
    400: (_l("Something in the request was not right"),
          _l("Some of what was sent could not be used. Go back, check what you entered and try again.")),
    401: (_l("Please sign in"), _l("Sign in to see this page.")),
    403: (_l("You cannot open this page"), _l(
        "Your account does not have access to this page. If you think it should, ask the service's administrator.")),
    404: (_l("Page not found"), _l(
        "The page or item you are looking for does not exist, or it has been removed. Check the address.")),
    405: (_l("This action is not possible here"),
          _l("The page cannot do what was asked. Go back and use its buttons.")),
    409: (_l("This has already changed"), _l(
        "Someone (or you, in another window) changed this in the meantime. Reload the page to see where it stands.")),
    413: (_l("The file is too large"), _l("Choose a smaller file and try again.")),
    429: (_l("Too many attempts"), _l("Please wait a moment and try again.")),
    500: (_l("Something went wrong on our side"),
          _l("The page could not be shown because of a problem in the service. Please try again in a moment.")),
}
_HANGUL = re.compile(r"[\uac00-\ud7a3]")


def _readable(text: str) -> str | None:
    """`text` in the page's language, or None: a Korean page never shows an untranslated English message."""
    translated = _(text) if text else ""
    if not translated:
        return None
    if str(get_locale()) == "ko" and not _HANGUL.search(translated):
        return None
    return translated


def error_response(status: int, code: str, message: str, fields: dict[str, str] | None = None, *,
                   page_detail: bool = True):
    """JSON for API callers; an error page for browsers (with `message` under the heading if `page_detail`
    and the message is in the page's language)."""
    if wants_json():
        body: dict = {"code": code, "message": message}
        if fields:
            body["fields"] = fields
        return jsonify(error=body), status
    try:
        heading, advice = PAGE_TEXT.get(status, PAGE_TEXT[500 if status >= 500 else 400])
        detail = _readable(message) if page_detail else None
        problems = [p for p in (_readable(problem) for problem in (fields or {}).values()) if p]
        if detail and detail in (str(heading), str(advice)):
            detail = None
        return render_template("errors/error.html", status=status, heading=heading, advice=advice, detail=detail,
                               problems=problems), status
    except Exception:  # the error page itself failed: still answer, plainly
        log.exception("error page failed to render")
        return f"{status} {message}", status, {"Content-Type": "text/plain; charset=utf-8"}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def handle_api_error(err: ApiError):
        return error_response(err.status, err.code, err.message, err.fields)

    @app.errorhandler(HTTPException)
    def handle_http_error(err: HTTPException):
        code = (err.name or "error").lower().replace(" ", "_")
        messages = {
            400: _("The request could not be understood."),
            401: _("Please sign in."),
            403: _("You do not have access to this page."),
            404: _("The page you are looking for does not exist."),
            405: _("This action is not allowed here."),
            409: _("This has already changed."),
            413: _("The upload is too large."),
            429: _("Too many requests. Please wait a moment."),
        }
        if err.code == 400 and getattr(err, "description", "") and "CSRF" in str(err.description):
            return error_response(400, "csrf", _("The form expired. Please go back, reload the page and try again."))
        # the page's heading and advice say it in plain words; the short message is for JSON callers
        return error_response(err.code or 500, code, messages.get(err.code, err.name or "Error"), page_detail=False)

    @app.errorhandler(Exception)
    def handle_unexpected(err: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", _("Something went wrong on our side. Please try again."),
                              page_detail=False)
