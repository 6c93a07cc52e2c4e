"""taskapp: the agency staff's task manager (the task-management seed)."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l


def create_app(config: dict | None = None) -> Flask:
    from shared.web import build_app

    app = build_app("taskapp", config, title="Tasks", nav=[("main.tasks", _l("Tasks")), ("main.board", _l("Board")),
                                                     ("main.create", _l("New task"))],
                    admin_nav=[("analytics.status", _l("Analytics export"))])

    from taskapp.analytics.views import bp as analytics
    from taskapp.views import api, bp, index

    app.register_blueprint(bp)
    app.register_blueprint(api)
    app.register_blueprint(analytics)
    app.add_url_rule("/", endpoint="home", view_func=index)
    return app


def __getattr__(name: str):
    # `taskapp.app` (Zappa's app_function) is built on first use; importing the package starts nothing.
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(name)
