"""One error shape for every app.

JSON callers (the /api routes, /auth/token, the seed's JSON routes, anyone sending
a bearer token or asking for JSON) get {"error": {"code", "message", "fields"?}};
browsers get an error page. Never a stack trace, SQL text or SDK metadata.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify, render_template, request
from flask_babel import gettext as _
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


def error_response(status: int, code: str, message: str, fields: dict[str, str] | None = None):
    if wants_json():
        body: dict = {"code": code, "message": message}
        if fields:
            body["fields"] = fields
        return jsonify(error=body), status
    try:
        return render_template("errors/error.html", status=status, message=message, fields=fields or {}), status
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
            413: _("The upload is too large."),
            429: _("Too many requests. Please wait a moment."),
        }
        return error_response(err.code or 500, code, messages.get(err.code, err.name or "Error"))

    @app.errorhandler(Exception)
    def handle_unexpected(err: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", _("Something went wrong on our side. Please try again."))
