"""The OpenAPI documents: every JSON route is in them, they are served with a page for people, and
Schemathesis finds no server error and no answer off the document, for each role (bounded examples)."""

from __future__ import annotations

import pytest

APPS = ("reqsys", "childsys", "taskapp")
# the roles each app's JSON routes are fuzzed as (a token of each; anonymous has none)
ROLES = {"anon": (), "parent": ("parents",), "staff": ("staff",), "employee": ("employees",), "admin": ("admins",)}
EXAMPLES = 6  # per route and role: the whole run stays near a minute on two cores


@pytest.mark.parametrize("app_name", APPS)
def test_every_json_route_is_documented_and_served(app_name, make_app):
    from shared.platform.openapi import json_rules

    app = make_app(app_name, migrate=False)
    web = app.test_client()
    spec = web.get("/api/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    documented = {(path, method.upper()) for path, methods in spec["paths"].items() for method in methods}
    for rule in json_rules(app):
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<{name}>", "{" + name + "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, (path, method)
    assert ("/auth/token", "POST") in documented
    page = web.get("/api/docs")
    assert page.status_code == 200 and "/auth/token" in page.get_data(as_text=True)


@pytest.fixture
def role_headers(make_user, bearer):
    def headers(app_name: str, role: str) -> dict[str, str]:
        if role == "anon":
            return {}
        user = make_user(groups=ROLES[role], daycare_id="A00017" if role == "staff" else None)
        return bearer(user.email, app_name=app_name)

    return headers


@pytest.mark.parametrize("app_name", APPS)
def test_schemathesis_finds_no_server_error_and_no_answer_off_the_document(app_name, make_app, role_headers):
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    app = make_app(app_name)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    failures: list[str] = []
    def fuzz(operation, role: str, headers: dict) -> None:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case):
            try:
                case.call_and_validate(checks=checks, headers={**(case.headers or {}), **headers})
            except (Exception, BaseExceptionGroup) as err:  # noqa: BLE001 - collected: every route and role is tried
                failures.append(f"{role} {operation.method.upper()} {operation.path}: {str(err)[:400]}")

        run()

    for role in ROLES:
        headers = role_headers(app_name, role)
        for result in schema.get_all_operations():
            fuzz(result.ok(), role, headers)
    assert failures == []
