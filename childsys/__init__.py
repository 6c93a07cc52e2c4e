"""childsys: daycare staff decide on applications and see enrolled children (the seed's ChildManageSys)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask_babel import lazy_gettext as _l


def create_app(config: dict | None = None) -> Flask:
    from childsys.models import db
    from shared.platform.db import init_db
    from shared.platform.web import build_app
    from shared.waitlist.settings import init_waitlist

    staff = ("staff", "admins")  # the groups childsys/views.py lets in
    app = build_app(
        "childsys",
        config,
        title="Daycare staff",
        nav=[("home", _l("Home")), ("main.applications", _l("Applications"), staff),
             ("main.classes", _l("Classes"), staff), ("main.enrolled", _l("Enrolled children"), staff),
             ("main.audit_log", _l("Audit log"), staff)],
        json_prefixes=("/request", "/enterwait/"),
        admin_nav=[("admin.init", _l("Database"))],
    )
    init_db(app, db, Path(__file__).parent / "migrations")
    init_waitlist(app)

    from childsys.api import api
    from childsys.sync import bp as sync_bp
    from childsys.views import bp, index
    from shared.platform.admin import bp as admin_bp

    app.register_blueprint(bp)
    app.register_blueprint(api)
    app.register_blueprint(sync_bp)
    app.register_blueprint(admin_bp)
    app.add_url_rule("/", endpoint="home", view_func=index)
    from childsys.api_doc import ROUTES

    app.config["OPENAPI_ROUTES"] = ROUTES  # its JSON routes in the OpenAPI document (/api/openapi.json)

    return app


def __getattr__(name: str):
    # `childsys.app` (Zappa's app_function) is built on first use; importing the package starts nothing.
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(name)
