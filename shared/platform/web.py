"""The parts every app factory shares: settings, security, i18n, auth, errors, the UI shell."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flask import Blueprint, Flask, redirect, request, session

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


def build_app(name: str, config: dict | None = None, *, title: str, nav: list[tuple[str, str]],
              json_prefixes: tuple[str, ...] = (), signup_group: str | None = None,
              admin_nav: list[tuple[str, str]] | None = None) -> Flask:
    """A Flask app with everything shared in place; the caller adds its own blueprints.

    `nav` lists (endpoint, label) pairs for the navigation bar (`admin_nav`: shown to admins only);
    labels are translated.
    """
    settings = Settings.load(name)
    config = dict(config or {})
    settings = config.pop("SETTINGS", settings)
    settings.check_production()

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
        NAV=nav,
        ADMIN_NAV=admin_nav or [],
        PROFILE_ENDPOINT="auth.profile",  # an app with its own profile page names it here
        NAV_INCLUDE=None,  # a template the navigation includes for signed-in users (taskapp's bell)
        SIGNUP_GROUP=signup_group,
        LANGUAGES=LANGUAGES,
    )
    app.config.update(config)
    app.json.ensure_ascii = False  # Korean text stays readable in JSON
    app.add_template_filter(local_time, "kst")

    from flask_babel import Babel, get_locale
    from flask_wtf.csrf import CSRFProtect

    Babel(app, locale_selector=select_locale)
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

    @app.before_request
    def _csrf_for_forms():
        # JSON routes authenticate with bearer tokens, never the session cookie, so a
        # cross-site form cannot act through them; everything else needs the CSRF token.
        if request.method not in ("GET", "HEAD", "OPTIONS") and not request.path.startswith(
            app.config["JSON_PATH_PREFIXES"]
        ):
            csrf.protect()

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    return app
