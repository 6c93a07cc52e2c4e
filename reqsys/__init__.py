"""reqsys: parents register children and apply to daycares (the seed's ReqSys)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask_babel import lazy_gettext as _l


def create_app(config: dict | None = None) -> Flask:
    from reqsys.models import db
    from shared.platform.db import init_db
    from shared.platform.web import build_app
    from shared.waitlist.settings import init_waitlist

    app = build_app(
        "reqsys",
        config,
        title="Daycare admission",
        nav=[("home", _l("Home")), ("main.nurseries", _l("Daycares")),
             ("main.children", _l("My children"), ("parents",)),
             ("main.applications", _l("My applications"), ("parents",))],
        json_prefixes=("/enterwait", "/request/"),
        signup_group="parents",
        admin_nav=[("monitor.queues", _l("Pipeline monitor")), ("admin.init", _l("Database"))],
    )
    init_db(app, db, Path(__file__).parent / "migrations")
    init_waitlist(app)

    from reqsys.api import api
    from reqsys.contact_views import bp as contact_bp
    from reqsys.monitor import bp as monitor_bp
    from reqsys.sync import bp as sync_bp
    from reqsys.views import bp, index
    from shared.platform.admin import bp as admin_bp

    app.register_blueprint(bp)
    app.register_blueprint(api)
    app.register_blueprint(sync_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(monitor_bp)
    app.register_blueprint(contact_bp)
    app.add_url_rule("/", endpoint="home", view_func=index)
    from reqsys.api_doc import ROUTES

    app.config["OPENAPI_ROUTES"] = ROUTES  # its JSON routes in the OpenAPI document (/api/openapi.json)

    return app


def __getattr__(name: str):
    # `reqsys.app`, the WSGI app Zappa's app_function names, is built on first use so
    # that importing the package (tests, the CLI) does not start an app.
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(name)
