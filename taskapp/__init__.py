"""taskapp: the agency staff's task manager (the task-management seed)."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l


def create_app(config: dict | None = None) -> Flask:
    from shared.platform.web import build_app

    app = build_app("taskapp", config, title="Tasks", nav=[
        ("main.tasks", _l("Tasks")), ("main.board", _l("Board")), ("main.create", _l("New task")),
        ("reports.page", _l("Reports")), ("jobs.page", _l("Import & export"))],
        admin_nav=[("analytics.status", _l("Analytics export"))])
    # the profile page is taskapp's (preferences too), the navigation shows the bell
    app.config.update(PROFILE_ENDPOINT="profile.page", NAV_INCLUDE="taskapp/_bell.html")

    from taskapp import file_views, job_views, notification_views, profile_views
    from taskapp.analytics.report_views import bp as reports
    from taskapp.analytics.views import bp as analytics
    from taskapp.views import api, bp, index

    for blueprint in (bp, api, file_views.bp, job_views.bp, notification_views.bp, profile_views.bp, analytics,
                      reports):
        app.register_blueprint(blueprint)
    app.add_url_rule("/", endpoint="home", view_func=index)

    @app.context_processor
    def _me():
        from shared.platform.auth import session_identity
        from taskapp.profiles import page_profile

        return {"me": page_profile(session_identity())}

    @app.template_filter("localtime")
    def _localtime(value: str | None) -> str:
        """A stored UTC time (ISO 8601) as the signed-in user's local time, to the minute."""
        from zoneinfo import ZoneInfo

        from shared.platform.auth import session_identity
        from shared.platform.clock import local_time
        from taskapp.profiles import DEFAULT_TIME_ZONE, page_profile

        if not value:
            return ""
        profile = page_profile(session_identity()) or {}
        return local_time(value, ZoneInfo(profile.get("time_zone") or DEFAULT_TIME_ZONE))

    return app


def __getattr__(name: str):
    # `taskapp.app` (Zappa's app_function) is built on first use; importing the package starts nothing.
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(name)
