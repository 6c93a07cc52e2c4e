"""The parts every app factory shares: settings, security, i18n, auth, errors, the UI shell."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, Flask, g, redirect, request, session
from flask_babel import lazy_gettext as _l

from shared.platform.clock import local_time
from shared.platform.settings import Settings

SHARED_DIR = Path(__file__).resolve().parent
LANGUAGES = {"ko": "한국어", "en": "English"}

ui = Blueprint("ui", __name__, template_folder="templates", static_folder="static", static_url_path="/static/ui")


def select_locale() -> str:
    return session.get("lang") or "ko"


@ui.get("/lang/<code>")
def set_language(code: str):
    if code in LANGUAGES:
        session["lang"] = code
    target = request.referrer or "/"
    # only return to a page of this site
    if not target.startswith(request.host_url):
        target = "/"
    return redirect(target)


@ui.get("/healthz")
def healthz():
    return {"status": "ok"}


NavItem = tuple  # (endpoint, label) or (endpoint, label, groups): shown to members of one of the groups


def visible_nav(items, identity, *, admin: bool = False) -> list[tuple[str, str]]:
    """The (endpoint, label) pairs of `items` this user may open: an item with groups needs a signed-in member
    of one of them (admins are not members of parent-only groups: they do not see those items);
    `admin` items need an admin."""
    shown = []
    for item in items:
        endpoint, label, *rest = item
        groups = tuple(rest[0]) if rest else ()
        if admin and not (identity and identity.is_admin):
            continue
        if groups and not (identity and any(group in identity.groups for group in groups)):
            continue
        shown.append((endpoint, label))
    return shown


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _upload_origins(app: Flask) -> tuple[str, ...]:
    """Origins browsers post files to and view proofs from (the buckets' presigned URLs), computed once."""
    cached = app.extensions.get("upload_origins")
    if cached is None:
        origins = []
        settings = app.config["SETTINGS"]
        for key in ("UPLOADS_BUCKET", "TASK_FILES_BUCKET"):
            try:
                from shared.platform.aws import client

                url = client("s3").generate_presigned_post(settings.resource(key), "probe")["url"]
            except Exception:  # noqa: S112 - not provisioned for this app: nothing to allow
                continue
            if (origin := _origin(url)) and origin not in origins:
                origins.append(origin)
        cached = app.extensions["upload_origins"] = tuple(origins)
    return cached


def content_security_policy(app: Flask) -> str:
    static = _origin(app.config.get("STATIC_URL") or "")
    uploads = " ".join(_upload_origins(app))
    own = f"'self' {static}".strip()
    return "; ".join([
        "default-src 'self'",
        f"script-src {own}",
        f"style-src {own}",
        f"font-src {own}",
        f"img-src {own} data: {uploads}".strip(),
        f"frame-src 'self' {uploads}".strip(),  # a proof shown inside a page
        f"connect-src 'self' {uploads}".strip(),  # uploads sent by script (progress, checks) go to S3 too
        "object-src 'none'",
        "base-uri 'self'",
        f"form-action 'self' {uploads}".strip(),  # presigned S3 POST forms
        "frame-ancestors 'none'",
    ])


def _gettext_per_request(app: Flask) -> None:
    """Templates translate with the request's catalogue looked up once (Flask-Babel's own callables look
    up the locale and the catalogue again for every string: a staff page has hundreds of them). The
    locale is Flask-Babel's, itself chosen once per request."""
    from flask_babel import get_translations

    def translations():
        found = g.get("babel_catalogue")
        if found is None:
            found = g.babel_catalogue = get_translations()
        return found

    app.jinja_env.install_gettext_callables(
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        pgettext=lambda c, s: translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: translations().unpgettext(c, s, p, n),
        newstyle=True)


def build_app(name: str, config: dict | None = None, *, title: str, nav: list[NavItem],
              json_prefixes: tuple[str, ...] = (), signup_group: str | None = None,
              admin_nav: list[NavItem] | None = None, agency: str | None = None) -> Flask:
    """A Flask app with everything shared in place; the caller adds its own blueprints.

    `nav` lists (endpoint, label) or (endpoint, label, groups) items for the navigation bar: with groups, only
    members of one of them see the item; `admin_nav` items are shown to admins only. Labels are translated.
    `agency` names the service in the header and footer (defaults to the waitlist service's name).
    """
    settings = Settings.load(name)
    config = dict(config or {})
    settings = config.pop("SETTINGS", settings)
    settings.check_production()

    from shared.platform import logs

    logs.setup(name)  # JSON lines (shared.platform.logs)
    app = Flask(name)
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME=f"{name}_session",  # three apps on one host locally: keep sessions apart
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=not settings.is_local,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        WTF_CSRF_CHECK_DEFAULT=False,  # checked by path in _csrf_for_forms below
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        BABEL_DEFAULT_LOCALE=settings.default_locale,
        BABEL_TRANSLATION_DIRECTORIES=str(SHARED_DIR / "translations"),
        JSON_PATH_PREFIXES=("/api", "/auth/token", *json_prefixes),
        APP_TITLE=title,
        AGENCY=agency or _l("Daycare waitlist service"),
        NAV=nav,
        ADMIN_NAV=admin_nav or [],
        STATIC_URL=settings.static_url,
        PROFILE_ENDPOINT="auth.profile",  # an app with its own profile page names it here
        NAV_INCLUDE=None,  # a template the navigation includes for signed-in users (taskapp's bell)
        SIGNUP_GROUP=signup_group,
        LANGUAGES=LANGUAGES,
    )
    app.config.update(config)
    app.jinja_env.add_extension("jinja2.ext.do")  # the form macros collect errors with {% do %}
    from shared.platform.payloads import BoundedJSONProvider

    app.json = BoundedJSONProvider(app)  # bodies bounded in size and depth before parsing; Korean readable
    app.add_template_filter(local_time, "kst")

    from flask_babel import Babel, get_locale
    from flask_wtf.csrf import CSRFProtect

    Babel(app, locale_selector=select_locale)
    _gettext_per_request(app)
    app.jinja_env.globals["get_locale"] = get_locale
    csrf = CSRFProtect(app)

    from shared.platform.auth import init_auth
    from shared.platform.auth.views import bp as auth_bp
    from shared.platform.errors import register_error_handlers
    from shared.platform.restore import install as install_restore_hooks

    register_error_handlers(app)
    init_auth(app)
    install_restore_hooks(app)  # SnapStart: what to reset after a restore
    app.register_blueprint(ui)
    app.register_blueprint(auth_bp)
    from shared.platform.openapi import bp as openapi_bp

    app.register_blueprint(openapi_bp)  # /api/openapi.json and /api/docs

    from shared.platform import assets

    folders = {"ui": SHARED_DIR / "static"}
    if app.static_folder:
        folders[name] = Path(app.static_folder)
    assets.register(app, folders)

    @app.context_processor
    def _navigation():
        from shared.platform.auth import session_identity

        identity = session_identity()
        return {"main_nav": visible_nav(app.config["NAV"], identity)
                + visible_nav(app.config["ADMIN_NAV"], identity, admin=True)}

    @app.before_request
    def _csrf_for_forms():
        # JSON routes authenticate with bearer tokens, never the session cookie, so a
        # cross-site form cannot act through them; everything else needs the CSRF token.
        if request.method not in ("GET", "HEAD", "OPTIONS") and not request.path.startswith(
            app.config["JSON_PATH_PREFIXES"]
        ):
            csrf.protect()

    @app.before_request
    def _log_context():
        # every log line of the request carries its id (API Gateway's through Zappa, else the caller's or a
        # new one) and, on the signed sync endpoints, the event id the forward handler sends
        context = request.environ.get("lambda.context")
        request_id = (getattr(context, "aws_request_id", None) or request.headers.get("X-Request-Id", "")[:64]
                      or uuid.uuid4().hex)
        g.request_id = request_id
        g._log_token = logs.push(aws_request_id=request_id,
                                 correlation_id=request.headers.get("X-Correlation-Id", "")[:64] or None)

    @app.teardown_request
    def _log_context_end(_exc):
        logs.pop(g.pop("_log_token", None))

    @app.after_request
    def _security_headers(response):
        if g.get("request_id"):
            response.headers.setdefault("X-Request-Id", g.request_id)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", content_security_policy(app))
        if not settings.is_local:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        # personal data stays out of caches: JSON, and every page of a signed-in user (or one that sets a session)
        personal = response.mimetype == "application/json" or (
            response.mimetype == "text/html" and session.get("sub"))
        if personal and not request.path.startswith("/assets/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    return app
