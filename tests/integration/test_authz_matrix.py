"""The authorization matrix: every route of the three apps x every role -> the status it answers.

Roles: anonymous, a parent, another parent, staff of the daycare (A00017), staff of another daycare
(B00102), an agency employee, an admin. Pages are asked with the role's signed-in session (and a valid
CSRF token on POSTs), JSON routes with its bearer token. Routes that change something are asked about
objects that do not exist (an allowed role then gets 404 or 400, a refused one 401/403/302), and a few
read routes about real ones (the parent's application, the daycare's application, the employee's task),
so the owner and the others are told apart. A route missing from the table fails the test: a new route
needs its row.
"""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import csrf_token_in

ROLES = ("anon", "parent", "other_parent", "staff", "other_staff", "employee", "admin")
GROUPS = {"parent": ("parents",), "other_parent": ("parents",), "staff": ("staff",), "other_staff": ("staff",),
          "employee": ("employees",), "admin": ("admins",)}
DAYCARE = {"staff": "A00017", "other_staff": "B00102"}
NONE = "0" * 32  # an id nothing has


def seed_body(**changes) -> dict:
    body = {"child_id": "2023" + uuid.uuid4().hex[:11].translate(str.maketrans("abcdef", "123456")),
            "child_name": "김아기", "child_birthday": "20230101", "parent_name": "김부모",
            "parent_tel": "010-0000-0000",
            "parent_address": "서울특별시 마포구", "parent_postcode": "00001", "parent_email": "user@email.com",
            "nursery_id": "A00017"}
    return body | changes


@pytest.fixture
def world(make_app, make_user, bearer, sign_in):
    """Users of every role, the three apps, a client per (app, role) and the objects the table names."""
    users = {role: make_user(groups=GROUPS[role], daycare_id=DAYCARE.get(role)) for role in ROLES[1:]}
    apps = {name: make_app(name) for name in ("reqsys", "childsys", "taskapp")}
    from tests.waitlist_helpers import add_nurseries

    add_nurseries(apps["reqsys"])
    pages, headers = {}, {}
    for name, app in apps.items():
        for role in ROLES:
            client = app.test_client()
            if role != "anon":
                sign_in(client, users[role].email)
                headers[name, role] = bearer(users[role].email, app_name=name)
            else:
                headers[name, role] = {}
            pages[name, role] = client
    ids = {"none": NONE}
    applied = apps["reqsys"].test_client().post("/enterwait/request", json=seed_body(),
                                                headers=headers["reqsys", "parent"])
    assert applied.status_code == 201, applied.get_json()
    ids["application"] = applied.get_json()["application"]["request_id"]
    # an application at the staff's daycare, as the pipeline brings it to childsys (a signed sync call)
    from shared.platform.events import Envelope
    from shared.platform.signing import sign

    body = seed_body(user_id=users["parent"].email)
    raw = Envelope(type="REQUEST", version=1, application=body).to_json().encode()
    secret = apps["childsys"].config["SETTINGS"].sync_secret
    synced = apps["childsys"].test_client().post("/enterwait/request", data=raw, content_type="application/json",
                                                 headers=sign(secret, raw))
    assert synced.status_code == 200, synced.get_json()
    listed = apps["childsys"].test_client().get("/request?nursery_id=A00017", headers=headers["childsys", "staff"])
    ids["theirs"] = next(a["request_id"] for a in listed.get_json()["applications"]
                                      if a["child_id"] == body["child_id"])
    task = apps["taskapp"].test_client().post("/api/tasks", json={"title": "matrix"},
                                              headers=headers["taskapp", "employee"])
    ids["task"] = task.get_json()["task_id"]
    return {"apps": apps, "pages": pages, "headers": headers, "ids": ids}


def ask(world, app: str, role: str, method: str, path: str, json_route: bool, body=None) -> int:
    path = path.format(**world["ids"])
    if json_route:
        client = world["apps"][app].test_client()
        kwargs = {"headers": world["headers"][app, role]}
        if method in ("POST", "PATCH", "PUT"):
            kwargs["json"] = body if body is not None else {}
        return client.open(path, method=method, **kwargs).status_code
    client = world["pages"][app, role]
    kwargs = {}
    if method == "POST":
        tokens = world.setdefault("csrf", {})
        if (app, role) not in tokens:  # the token lasts as long as the session
            tokens[app, role] = csrf_token_in(client.get("/auth/login").get_data(as_text=True))
        kwargs["data"] = {"csrf_token": tokens[app, role], **(body or {})}
    return client.open(path, method=method, **kwargs).status_code


def test_every_route_answers_each_role_as_the_table_says(world):
    wrong = []
    for app, method, path, json_route, expected in ROUTES:
        got = tuple(ask(world, app, role, method, path, json_route) for role in ROLES)
        if got != expected:
            wrong.append(f"{method} {app}{path}: {dict(zip(ROLES, got, strict=True))} "
                         f"expected {dict(zip(ROLES, expected, strict=True))}")
    assert wrong == []


def test_the_table_has_every_route(make_app):
    """Each (app, method, rule) of the three apps has at least one row."""
    import re

    listed = {(app, method, re.sub(r"\{[a-z_]+\}", "<>", path.split("?")[0])) for app, method, path, *_ in ROUTES}
    missing = []
    for name in ("reqsys", "childsys", "taskapp"):
        for rule in make_app(name, migrate=False).url_map.iter_rules():
            if rule.endpoint.endswith("static"):
                continue
            shape = re.sub(r"<[^>]+>", "<>", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                if not any(a == name and m == method and (p == shape or _fits(shape, p)) for a, m, p in listed):
                    missing.append(f"{name} {method} {rule.rule}")
    assert missing == []


def _fits(shape: str, path: str) -> bool:
    """A rule shape with <> placeholders matched by a concrete path of the table (e.g. /lang/en)."""
    import re

    return re.fullmatch(re.escape(shape).replace("<>", "[^/]+"), path) is not None


ROUTES = [
    # app, method, path (ids from the world fixture), JSON route?,
    #   (anon, parent, other_parent, staff, other_staff, employee, admin)
    ('reqsys', 'GET', '/assets/ui/{none}/app.css', False, (200, 200, 200, 200, 200, 200, 200)),
    ('childsys', 'GET', '/assets/ui/{none}/app.css', False, (200, 200, 200, 200, 200, 200, 200)),
    ('taskapp', 'GET', '/assets/ui/{none}/app.css', False, (200, 200, 200, 200, 200, 200, 200)),
    ('reqsys', 'GET', '/contact/confirm', False, (200, 200, 200, 200, 200, 200, 200)),
    ('reqsys', 'POST', '/contact/confirm', False, (404, 404, 404, 404, 404, 404, 404)),
    ('reqsys', 'POST', '/enterwait/contact/confirm', True, (400, 400, 400, 400, 400, 400, 400)),
    ('reqsys', 'GET', '/api/admin/queues/{none}/messages', True, (401, 403, 403, 403, 403, 403, 404)),
    ('reqsys', 'POST', '/api/admin/queues/{none}/redrive', True, (401, 403, 403, 403, 403, 403, 404)),
    ('childsys', 'GET', '/applications/{none}/accept', False, (302, 403, 403, 404, 404, 403, 404)),
    ('taskapp', 'GET', '/jobs/live', False, (302, 403, 403, 403, 403, 200, 200)),
    ('taskapp', 'GET', '/jobs/{none}/live', False, (302, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'GET', '/reports/live', False, (302, 403, 403, 403, 403, 200, 200)),
    ('taskapp', 'GET', '/reports/{none}/live', False, (302, 403, 403, 403, 403, 404, 404)),
    ('reqsys', 'GET', '/', False, (200, 200, 200, 200, 200, 200, 200)),
    ('reqsys', 'GET', '/api/openapi.json', True, (200, 200, 200, 200, 200, 200, 200)),
    ('reqsys', 'GET', '/api/docs', False, (200, 200, 200, 200, 200, 200, 200)),
    ('childsys', 'GET', '/api/openapi.json', True, (200, 200, 200, 200, 200, 200, 200)),
    ('childsys', 'GET', '/api/docs', False, (200, 200, 200, 200, 200, 200, 200)),
    ('taskapp', 'GET', '/api/openapi.json', True, (200, 200, 200, 200, 200, 200, 200)),
    ('taskapp', 'GET', '/api/docs', False, (200, 200, 200, 200, 200, 200, 200)),
    ('reqsys', 'GET', '/admin/init', False, (302, 403, 403, 403, 403, 403, 200)),
    ('reqsys', 'POST', '/admin/init', False, (302, 403, 403, 403, 403, 403, 302)),
    ('reqsys', 'GET', '/admin/monitor/', False, (302, 403, 403, 403, 403, 403, 200)),
    ('reqsys', 'GET', '/admin/monitor/dlq/{none}', False, (302, 403, 403, 403, 403, 403, 404)),
    ('reqsys', 'POST', '/admin/monitor/dlq/{none}/redrive', False, (302, 403, 403, 403, 403, 403, 404)),
    ('reqsys', 'GET', '/admin/monitor/emails', False, (302, 403, 403, 403, 403, 403, 200)),
    ('reqsys', 'GET', '/admin/monitor/timeline', False, (302, 403, 403, 403, 403, 403, 200)),
    ('reqsys', 'GET', '/api/admin/queues', True, (401, 403, 403, 403, 403, 403, 200)),
    ('reqsys', 'GET', '/api/criteria', True, (200, 200, 200, 200, 200, 200, 200)),
    ('reqsys', 'GET', '/api/nurseries', True, (200, 200, 200, 200, 200, 200, 200)),
    ('reqsys', 'GET', '/applications', False, (302, 200, 200, 403, 403, 403, 403)),
    ('reqsys', 'POST', '/applications/{none}/cancel', False, (302, 404, 404, 403, 403, 403, 403)),
    ('reqsys', 'POST', '/applications/{none}/confirm', False, (302, 404, 404, 403, 403, 403, 403)),
    ('reqsys', 'POST', '/applications/{none}/criteria/C1/proof', False, (302, 404, 404, 403, 403, 403, 403)),
    ('reqsys', 'POST', '/applications/{none}/criteria/C1/upload', False, (302, 404, 404, 403, 403, 403, 403)),
    ('reqsys', 'POST', '/applications/{none}/decline', False, (302, 404, 404, 403, 403, 403, 403)),
    ('reqsys', 'GET', '/auth/confirm', False, (200, 200, 200, 200, 200, 200, 200)),
    ('reqsys', 'POST', '/auth/confirm', False, (400, 400, 400, 400, 400, 400, 400)),
    ('reqsys', 'GET', '/auth/forgot', False, (200, 200, 200, 200, 200, 200, 200)),
    ('reqsys', 'POST', '/auth/forgot', False, (400, 400, 400, 400, 400, 400, 400)),
    ('reqsys', 'GET', '/auth/login', False, (200, 200, 200, 200, 200, 200, 200)),
    ('reqsys', 'POST', '/auth/login', False, (400, 400, 400, 400, 400, 400, 400)),
    ('reqsys', 'GET', '/auth/profile', False, (302, 200, 200, 200, 200, 200, 200)),
    ('reqsys', 'POST', '/auth/profile', False, (302, 400, 400, 400, 400, 400, 400)),
    ('reqsys', 'GET', '/auth/reset', False, (200, 200, 200, 200, 200, 200, 200)),
    ('reqsys', 'POST', '/auth/reset', False, (400, 400, 400, 400, 400, 400, 400)),
    ('reqsys', 'GET', '/auth/signup', False, (200, 200, 200, 200, 200, 200, 200)),
    ('reqsys', 'POST', '/auth/signup', False, (400, 400, 400, 400, 400, 400, 400)),
    ('reqsys', 'POST', '/auth/token', True, (400, 400, 400, 400, 400, 400, 400)),
    ('reqsys', 'GET', '/children', False, (302, 200, 200, 403, 403, 403, 403)),
    ('reqsys', 'POST', '/children', False, (302, 400, 400, 403, 403, 403, 403)),
    ('reqsys', 'GET', '/enterwait', True, (401, 200, 200, 403, 403, 403, 200)),
    ('reqsys', 'POST', '/enterwait/cancel', True, (401, 400, 400, 403, 403, 403, 403)),
    ('reqsys', 'POST', '/enterwait/confirm', True, (401, 400, 400, 403, 403, 403, 403)),
    ('reqsys', 'POST', '/enterwait/decline', True, (401, 400, 400, 403, 403, 403, 403)),
    ('reqsys', 'POST', '/enterwait/proofs', True, (401, 400, 400, 403, 403, 403, 403)),
    ('reqsys', 'POST', '/enterwait/proofs/upload', True, (401, 400, 400, 403, 403, 403, 403)),
    ('reqsys', 'POST', '/enterwait/request', True, (401, 400, 400, 403, 403, 403, 403)),
    ('reqsys', 'GET', '/healthz', False, (200, 200, 200, 200, 200, 200, 200)),
    ('reqsys', 'GET', '/lang/en', False, (302, 302, 302, 302, 302, 302, 302)),
    ('reqsys', 'GET', '/nurseries', False, (200, 200, 200, 200, 200, 200, 200)),
    ('reqsys', 'GET', '/nurseries/A00017/apply', False, (302, 200, 302, 403, 403, 403, 403)),
    ('reqsys', 'POST', '/nurseries/A00017/apply', False, (302, 400, 302, 403, 403, 403, 403)),
    ('reqsys', 'POST', '/request/accept', True, (401, 401, 401, 401, 401, 401, 401)),
    ('reqsys', 'POST', '/request/offer', True, (401, 401, 401, 401, 401, 401, 401)),
    ('reqsys', 'POST', '/request/reject', True, (401, 401, 401, 401, 401, 401, 401)),
    ('reqsys', 'POST', '/request/verify', True, (401, 401, 401, 401, 401, 401, 401)),
    ('childsys', 'GET', '/', False, (302, 200, 200, 302, 302, 200, 200)),
    ('childsys', 'GET', '/admin/init', False, (302, 403, 403, 403, 403, 403, 200)),
    ('childsys', 'POST', '/admin/init', False, (302, 403, 403, 403, 403, 403, 302)),
    ('childsys', 'GET', '/api/applications/{none}/criteria/C1/proof', True, (401, 403, 403, 404, 404, 403, 404)),
    ('childsys', 'GET', '/api/audit', True, (401, 403, 403, 200, 200, 403, 200)),
    ('childsys', 'GET', '/api/classes', True, (401, 403, 403, 200, 200, 403, 403)),
    ('childsys', 'GET', '/applications', False, (302, 403, 403, 200, 200, 403, 302)),
    ('childsys', 'GET', '/applications/{none}', False, (302, 403, 403, 404, 404, 403, 404)),
    ('childsys', 'POST', '/applications/{none}/accept', False, (302, 403, 403, 404, 404, 403, 404)),
    ('childsys', 'POST', '/applications/{none}/criteria/C1/verify', False, (302, 403, 403, 404, 404, 403, 404)),
    ('childsys', 'GET', '/applications/{none}/criteria/C1/proof', False, (302, 403, 403, 404, 404, 403, 404)),
    ('childsys', 'POST', '/applications/{none}/reject', False, (302, 403, 403, 404, 404, 403, 404)),
    ('childsys', 'GET', '/audit', False, (302, 403, 403, 200, 200, 403, 200)),
    ('childsys', 'GET', '/auth/confirm', False, (200, 200, 200, 200, 200, 200, 200)),
    ('childsys', 'POST', '/auth/confirm', False, (400, 400, 400, 400, 400, 400, 400)),
    ('childsys', 'GET', '/auth/forgot', False, (200, 200, 200, 200, 200, 200, 200)),
    ('childsys', 'POST', '/auth/forgot', False, (400, 400, 400, 400, 400, 400, 400)),
    ('childsys', 'GET', '/auth/login', False, (200, 200, 200, 200, 200, 200, 200)),
    ('childsys', 'POST', '/auth/login', False, (400, 400, 400, 400, 400, 400, 400)),
    ('childsys', 'GET', '/auth/profile', False, (302, 200, 200, 200, 200, 200, 200)),
    ('childsys', 'POST', '/auth/profile', False, (302, 400, 400, 400, 400, 400, 400)),
    ('childsys', 'GET', '/auth/reset', False, (200, 200, 200, 200, 200, 200, 200)),
    ('childsys', 'POST', '/auth/reset', False, (400, 400, 400, 400, 400, 400, 400)),
    ('childsys', 'GET', '/auth/signup', False, (200, 200, 200, 200, 200, 200, 200)),
    ('childsys', 'POST', '/auth/signup', False, (400, 400, 400, 400, 400, 400, 400)),
    ('childsys', 'POST', '/auth/token', True, (400, 400, 400, 400, 400, 400, 400)),
    ('childsys', 'GET', '/classes', False, (302, 403, 403, 200, 200, 403, 302)),
    ('childsys', 'POST', '/classes', False, (302, 403, 403, 302, 302, 403, 302)),
    ('childsys', 'GET', '/enrolled', False, (302, 403, 403, 200, 200, 403, 302)),
    ('childsys', 'GET', '/applications/{theirs}', False, (302, 403, 403, 200, 403, 403, 200)),
    ('childsys', 'GET', '/api/applications/{theirs}/criteria/C1/proof', True, (401, 403, 403, 404, 403, 403, 404)),
    ('childsys', 'GET', '/request?nursery_id=B00102', True, (401, 403, 403, 403, 200, 403, 200)),
    ('childsys', 'GET', '/applications?nursery_id=B00102', False, (302, 403, 403, 403, 200, 403, 200)),
    ('childsys', 'POST', '/enterwait/cancel', True, (401, 401, 401, 401, 401, 401, 401)),
    ('childsys', 'POST', '/enterwait/confirm', True, (401, 401, 401, 401, 401, 401, 401)),
    ('childsys', 'POST', '/enterwait/decline', True, (401, 401, 401, 401, 401, 401, 401)),
    ('childsys', 'POST', '/enterwait/expire', True, (401, 401, 401, 401, 401, 401, 401)),
    ('childsys', 'POST', '/enterwait/proof', True, (401, 401, 401, 401, 401, 401, 401)),
    ('childsys', 'POST', '/enterwait/request', True, (401, 401, 401, 401, 401, 401, 401)),
    ('childsys', 'POST', '/enterwait/withdraw', True, (401, 401, 401, 401, 401, 401, 401)),
    ('childsys', 'GET', '/healthz', False, (200, 200, 200, 200, 200, 200, 200)),
    ('childsys', 'GET', '/lang/en', False, (302, 302, 302, 302, 302, 302, 302)),
    ('childsys', 'GET', '/request', True, (401, 403, 403, 200, 200, 403, 403)),
    ('childsys', 'POST', '/request/accept', True, (401, 403, 403, 400, 400, 403, 400)),
    ('childsys', 'POST', '/request/reject', True, (401, 403, 403, 400, 400, 403, 400)),
    ('childsys', 'POST', '/request/verify', True, (401, 403, 403, 400, 400, 403, 400)),
    ('taskapp', 'GET', '/', False, (302, 403, 403, 403, 403, 302, 302)),
    ('taskapp', 'GET', '/admin/analytics', False, (302, 403, 403, 403, 403, 403, 200)),
    ('taskapp', 'POST', '/admin/analytics/export', False, (302, 403, 403, 403, 403, 403, 302)),
    ('taskapp', 'POST', '/api/admin/analytics/export', True, (401, 403, 403, 403, 403, 403, 200)),
    ('taskapp', 'POST', '/api/exports', True, (401, 403, 403, 403, 403, 202, 202)),
    ('taskapp', 'POST', '/api/imports', True, (401, 403, 403, 403, 403, 400, 400)),
    ('taskapp', 'POST', '/api/imports/complete', True, (401, 403, 403, 403, 403, 400, 400)),
    ('taskapp', 'GET', '/api/jobs', True, (401, 403, 403, 403, 403, 200, 200)),
    ('taskapp', 'GET', '/api/jobs/{none}', True, (401, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'GET', '/api/jobs/{none}/download', True, (401, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'GET', '/api/notifications', True, (401, 403, 403, 403, 403, 200, 200)),
    ('taskapp', 'POST', '/api/notifications/{none}/read', True, (401, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'POST', '/api/notifications/read-all', True, (401, 403, 403, 403, 403, 200, 200)),
    ('taskapp', 'GET', '/api/profile', True, (401, 403, 403, 403, 403, 200, 200)),
    ('taskapp', 'PATCH', '/api/profile', True, (401, 403, 403, 403, 403, 200, 200)),
    ('taskapp', 'POST', '/api/reports', True, (401, 403, 403, 403, 403, 400, 400)),
    ('taskapp', 'GET', '/api/reports', True, (401, 403, 403, 403, 403, 200, 200)),
    ('taskapp', 'GET', '/api/reports/{none}', True, (401, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'GET', '/api/reports/{none}/csv', True, (401, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'POST', '/api/reports/{none}/retry', True, (401, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'GET', '/api/tasks', True, (401, 403, 403, 403, 403, 200, 200)),
    ('taskapp', 'POST', '/api/tasks', True, (401, 403, 403, 403, 403, 400, 400)),
    ('taskapp', 'GET', '/api/tasks/{task}', True, (401, 403, 403, 403, 403, 200, 404)),
    ('taskapp', 'PATCH', '/api/tasks/{none}', True, (401, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'DELETE', '/api/tasks/{none}', True, (401, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'POST', '/api/tasks/{none}/attachments', True, (401, 403, 403, 403, 403, 400, 400)),
    ('taskapp', 'GET', '/api/tasks/{task}/attachments', True, (401, 403, 403, 403, 403, 200, 404)),
    ('taskapp', 'GET', '/api/tasks/{task}/attachments/{none}', True, (401, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'DELETE', '/api/tasks/{none}/attachments/{none}', True, (401, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'POST', '/api/tasks/{none}/attachments/complete', True, (401, 403, 403, 403, 403, 400, 400)),
    ('taskapp', 'GET', '/auth/confirm', False, (200, 200, 200, 200, 200, 200, 200)),
    ('taskapp', 'POST', '/auth/confirm', False, (400, 400, 400, 400, 400, 400, 400)),
    ('taskapp', 'GET', '/auth/forgot', False, (200, 200, 200, 200, 200, 200, 200)),
    ('taskapp', 'POST', '/auth/forgot', False, (400, 400, 400, 400, 400, 400, 400)),
    ('taskapp', 'GET', '/auth/login', False, (200, 200, 200, 200, 200, 200, 200)),
    ('taskapp', 'POST', '/auth/login', False, (400, 400, 400, 400, 400, 400, 400)),
    ('taskapp', 'GET', '/auth/profile', False, (302, 403, 403, 403, 403, 302, 302)),
    ('taskapp', 'POST', '/auth/profile', False, (302, 403, 403, 403, 403, 302, 302)),
    ('taskapp', 'GET', '/auth/reset', False, (200, 200, 200, 200, 200, 200, 200)),
    ('taskapp', 'POST', '/auth/reset', False, (400, 400, 400, 400, 400, 400, 400)),
    ('taskapp', 'GET', '/auth/signup', False, (200, 200, 200, 200, 200, 200, 200)),
    ('taskapp', 'POST', '/auth/signup', False, (400, 400, 400, 400, 400, 400, 400)),
    ('taskapp', 'POST', '/auth/token', True, (400, 400, 400, 400, 400, 400, 400)),
    ('taskapp', 'GET', '/board', False, (302, 403, 403, 403, 403, 200, 200)),
    ('taskapp', 'GET', '/healthz', False, (200, 200, 200, 200, 200, 200, 200)),
    ('taskapp', 'GET', '/jobs', False, (302, 403, 403, 403, 403, 200, 200)),
    ('taskapp', 'GET', '/jobs/{none}', False, (302, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'GET', '/jobs/{none}/download', False, (302, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'POST', '/jobs/export', False, (302, 403, 403, 403, 403, 302, 302)),
    ('taskapp', 'GET', '/jobs/import/uploaded', False, (302, 403, 403, 403, 403, 200, 200)),
    ('taskapp', 'POST', '/jobs/import/uploaded', False, (302, 403, 403, 403, 403, 400, 400)),
    ('taskapp', 'GET', '/jobs/template.csv', False, (302, 403, 403, 403, 403, 200, 200)),
    ('taskapp', 'GET', '/lang/en', False, (302, 302, 302, 302, 302, 302, 302)),
    ('taskapp', 'GET', '/notifications', False, (302, 403, 403, 403, 403, 200, 200)),
    ('taskapp', 'POST', '/notifications/{none}/open', False, (302, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'POST', '/notifications/{none}/read', False, (302, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'POST', '/notifications/read-all', False, (302, 403, 403, 403, 403, 302, 302)),
    ('taskapp', 'GET', '/profile', False, (302, 403, 403, 403, 403, 200, 200)),
    ('taskapp', 'POST', '/profile', False, (302, 403, 403, 403, 403, 400, 400)),
    ('taskapp', 'GET', '/reports', False, (302, 403, 403, 403, 403, 200, 200)),
    ('taskapp', 'POST', '/reports', False, (302, 403, 403, 403, 403, 400, 400)),
    ('taskapp', 'GET', '/reports/{none}', False, (302, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'GET', '/reports/{none}/csv', False, (302, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'POST', '/reports/{none}/retry', False, (302, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'GET', '/tasks', False, (302, 403, 403, 403, 403, 200, 200)),
    ('taskapp', 'GET', '/tasks/{task}', False, (302, 403, 403, 403, 403, 200, 404)),
    ('taskapp', 'GET', '/tasks/{task}/attachments/uploaded', False, (302, 403, 403, 403, 403, 200, 404)),
    ('taskapp', 'POST', '/tasks/{none}/attachments/uploaded', False, (302, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'GET', '/tasks/{task}/delete', False, (302, 403, 403, 403, 403, 200, 404)),
    ('taskapp', 'POST', '/tasks/{none}/delete', False, (302, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'GET', '/tasks/{task}/edit', False, (302, 403, 403, 403, 403, 200, 404)),
    ('taskapp', 'POST', '/tasks/{none}/edit', False, (302, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'GET', '/tasks/{task}/files/{none}', False, (302, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'POST', '/tasks/{none}/files/{none}/delete', False, (302, 403, 403, 403, 403, 404, 404)),
    ('taskapp', 'POST', '/tasks/{none}/move', False, (302, 403, 403, 403, 403, 302, 302)),
    ('taskapp', 'GET', '/tasks/new', False, (302, 403, 403, 403, 403, 200, 200)),
    ('taskapp', 'POST', '/tasks/new', False, (302, 403, 403, 403, 403, 400, 400)),
    ('reqsys', 'POST', '/auth/logout', False, (302, 302, 302, 302, 302, 302, 302)),
    ('childsys', 'POST', '/auth/logout', False, (302, 302, 302, 302, 302, 302, 302)),
    ('taskapp', 'POST', '/auth/logout', False, (302, 302, 302, 302, 302, 302, 302)),
]
