"""Sign-up, sign-in, tokens and access control against the emulator's Cognito."""

from __future__ import annotations

import base64
import gzip
import json
import os
import time
from dataclasses import replace
from functools import cache
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import moto
import pytest
from flask import Blueprint, g, jsonify

from shared.platform import aws
from shared.platform.auth import api_auth_required
from shared.platform.settings import Settings

NEW_PASSWORD = "Test-5678!new"
LEAKS = ("Traceback", "botocore", "ClientError", "Exception", "An error occurred (", "cognitojwt",
         "File \"", "RequestId")

# --- a bearer-protected blueprint (the apps have no bearer route of their own yet) --------------

api = Blueprint("test_api", __name__)


@api.get("/api/whoami")
@api_auth_required()
def whoami():
    identity = g.identity
    return jsonify(sub=identity.sub, email=identity.email, name=identity.name, groups=list(identity.groups),
                   daycare_id=identity.daycare_id)


@api.get("/api/staff-only")
@api_auth_required("staff", "admins")
def staff_only():
    return jsonify(ok=True, email=g.identity.email)


# --- helpers ----------------------------------------------------------------------------------------


def b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token: str) -> dict:
    return json.loads(b64decode(token.split(".")[1]))


@cache
def moto_signing_key():
    """The one private key moto signs every pool's tokens with."""
    from joserfc.jwk import RSAKey

    resources_dir = Path(moto.__file__).parent / "cognitoidp" / "resources"
    packed = resources_dir / "jwks-private.json.gz"
    if packed.exists():
        data = gzip.decompress(packed.read_bytes())
    else:
        data = (resources_dir / "jwks-private.json").read_bytes()
    return RSAKey.import_key(json.loads(data))


def sign(claims: dict, header: dict | None = None) -> str:
    from joserfc import jwt

    return jwt.encode(header if header is not None else {"alg": "RS256", "kid": "dummy"}, claims, moto_signing_key())


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert_no_leaks(response)
    return body["error"]


def assert_no_leaks(response):
    text = response.get_data(as_text=True)
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} leaked into the response"


def location(response) -> str:
    return urlsplit(response.headers["Location"]).path


# --- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture
def reqsys_app(make_app):
    return make_app("reqsys", blueprints=[api])


@pytest.fixture
def childsys_app(make_app):
    return make_app("childsys", blueprints=[api])


@pytest.fixture
def reqsys(reqsys_app):
    return reqsys_app.test_client()


@pytest.fixture
def parent(make_user):
    return make_user(groups=["parents"], name="김하늘")


@pytest.fixture
def keep_jwks_env(monkeypatch):
    """An app built for another pool re-points cognitojwt's JWKS (os.environ): restore it after."""
    monkeypatch.setenv("AWS_COGNITO_JWKS_PATH", os.environ.get("AWS_COGNITO_JWKS_PATH", ""))


@pytest.fixture(scope="module")
def other_pool(resources):
    """A second user pool + client in the emulator, with one signed-in user: same moto signing key,
    different issuer."""
    idp = aws.client("cognito-idp")
    pool_id = idp.create_user_pool(PoolName="someone-elses-pool")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="elsewhere",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    email = "outsider@example.com"
    idp.admin_create_user(UserPoolId=pool_id, Username=email, MessageAction="SUPPRESS",
                          UserAttributes=[{"Name": "email", "Value": email}, {"Name": "name", "Value": "Outsider"}])
    idp.admin_set_user_password(UserPoolId=pool_id, Username=email, Password="Other-1234!pw", Permanent=True)
    auth = idp.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
                             AuthParameters={"USERNAME": email, "PASSWORD": "Other-1234!pw"})
    yield {"pool_id": pool_id, "client_id": client_id, "id_token": auth["AuthenticationResult"]["IdToken"]}
    idp.delete_user_pool(UserPoolId=pool_id)


# --- sign up, confirm, sign in ------------------------------------------------------------------


def test_sign_up_confirm_and_sign_in_as_a_parent(reqsys, submit, cognito, resources, tokens_for):
    email = f"new-parent-{os.urandom(4).hex()}@example.com"
    signed_up = submit(reqsys, "/auth/signup", {
        "email": email, "name": "김하늘", "phone": "010-1234-5678",
        "password": NEW_PASSWORD, "password_again": NEW_PASSWORD,
    })
    assert signed_up.status_code == 302, signed_up.get_data(as_text=True)
    assert location(signed_up) == "/auth/confirm"
    assert parse_qs(urlsplit(signed_up.headers["Location"]).query)["email"] == [email]

    # the confirm page tells where the code went and has the address filled in
    confirm_page = reqsys.get(signed_up.headers["Location"]).get_data(as_text=True)
    assert email in confirm_page

    # not confirmed yet: signing in sends the user to the confirm page
    early = submit(reqsys, "/auth/login", {"email": email, "password": NEW_PASSWORD})
    assert early.status_code == 302
    assert location(early) == "/auth/confirm"
    assert_error(reqsys.post("/auth/token", json={"email": email, "password": NEW_PASSWORD}), 403, "not_confirmed")

    confirmed = submit(reqsys, "/auth/confirm", {"email": email, "code": "123456"})
    assert confirmed.status_code == 302
    assert location(confirmed) == "/auth/login"

    signed_in = submit(reqsys, "/auth/login", {"email": email, "password": NEW_PASSWORD})
    assert signed_in.status_code == 302
    assert location(signed_in) == "/"
    home = reqsys.get("/").get_data(as_text=True)
    assert "김하늘" in home, "the header shows who is signed in"
    assert reqsys.get("/auth/profile").status_code == 200

    # Cognito has the phone in E.164, and sign-up put the parent in the parents group
    user = cognito.admin_get_user(UserPoolId=resources["COGNITO_USERPOOL_ID"], Username=email)
    attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    assert attributes["phone_number"] == "+821012345678"
    assert attributes["name"] == "김하늘"
    id_token = tokens_for(email, NEW_PASSWORD, "reqsys")["id_token"]
    assert claims_of(id_token)["cognito:groups"] == ["parents"]
    me = reqsys.get("/api/whoami", headers={"Authorization": f"Bearer {id_token}"})
    assert me.status_code == 200
    assert me.get_json()["groups"] == ["parents"]
    assert me.get_json()["email"] == email
    cognito.admin_delete_user(UserPoolId=resources["COGNITO_USERPOOL_ID"], Username=email)


def test_staff_sign_up_in_childsys_joins_no_group(client_for, submit, cognito, resources, tokens_for):
    """Only reqsys (parents) makes sign-ups members of a group; staff are added by an admin."""
    client = client_for("childsys")
    email = f"new-staff-{os.urandom(4).hex()}@example.com"
    response = submit(client, "/auth/signup", {"email": email, "name": "이서준", "password": NEW_PASSWORD,
                                                "password_again": NEW_PASSWORD})
    assert response.status_code == 302
    assert submit(client, "/auth/confirm", {"email": email, "code": "000000"}).status_code == 302
    claims = claims_of(tokens_for(email, NEW_PASSWORD, "childsys")["id_token"])
    assert not claims.get("cognito:groups")
    cognito.admin_delete_user(UserPoolId=resources["COGNITO_USERPOOL_ID"], Username=email)


def test_signing_up_twice_says_the_account_exists_at_the_email_field(reqsys, submit, parent):
    response = submit(reqsys, "/auth/signup", {"email": parent.email, "name": "또", "password": NEW_PASSWORD,
                                               "password_again": NEW_PASSWORD})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'id="email-error"' in html
    assert "이미" in html  # "이미 존재합니다" / "already exists", in Korean
    assert_no_leaks(response)


def test_weak_password_is_explained_at_the_password_field(reqsys, submit, resources, cognito):
    email = f"weak-{os.urandom(4).hex()}@example.com"
    response = submit(reqsys, "/auth/signup", {"email": email, "name": "약함", "password": "alllowercase",
                                               "password_again": "alllowercase"})
    assert response.status_code == 400
    assert 'id="password-error"' in response.get_data(as_text=True)
    assert_no_leaks(response)


def test_sign_in_returns_to_the_page_asked_for_but_never_off_site(reqsys, submit, parent):
    first = reqsys.get("/auth/profile")
    assert first.status_code == 302
    assert first.headers["Location"].endswith("/auth/login?next=/auth/profile")
    response = submit(reqsys, "/auth/login?next=/auth/profile", {"email": parent.email, "password": parent.password})
    assert location(response) == "/auth/profile"

    other = reqsys.application.test_client()
    response = submit(other, "/auth/login?next=//evil.example/x", {"email": parent.email,
                                                                     "password": parent.password})
    assert response.status_code == 302
    assert "evil.example" not in response.headers["Location"]


# --- wrong password -------------------------------------------------------------------------------


def test_wrong_password_on_the_token_route_is_401_invalid_credentials(reqsys, parent):
    response = reqsys.post("/auth/token", json={"email": parent.email, "password": "Wrong-1234!pw"})
    error = assert_error(response, 401, "invalid_credentials")
    unknown = reqsys.post("/auth/token", json={"email": "nobody-here@example.com", "password": "Wrong-1234!pw"})
    assert assert_error(unknown, 401, "invalid_credentials") == error, "no hint whether the account exists"


def test_wrong_password_on_the_login_form_shows_the_message_and_no_session(reqsys, submit, parent):
    response = submit(reqsys, "/auth/login", {"email": parent.email, "password": "Wrong-1234!pw"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "이메일 또는 비밀번호가 올바르지 않습니다." in html
    assert html.index("이메일 또는 비밀번호가 올바르지 않습니다.") < html.index("<form method=\"post\" novalidate")
    assert f'value="{parent.email}"' in html, "the email stays filled in"
    assert "Wrong-1234!pw" not in html
    assert_no_leaks(response)
    with reqsys.session_transaction() as session:
        assert "sub" not in session
    assert reqsys.get("/auth/profile").status_code == 302


def test_cognito_failures_are_told_plainly_without_sdk_details(make_app, submit, parent):
    """An error Cognito raises that we have no message for (here: an unknown app client)."""
    settings = Settings.load("reqsys")
    broken = make_app("reqsys", {"SETTINGS": replace(settings, cognito_client_id="no-such-client")}, migrate=False)
    client = broken.test_client()
    error = assert_error(client.post("/auth/token", json={"email": parent.email, "password": parent.password}),
                         503, "unavailable")
    assert "no-such-client" not in error["message"]
    page = submit(client, "/auth/login", {"email": parent.email, "password": parent.password})
    assert page.status_code >= 400
    assert "no-such-client" not in page.get_data(as_text=True)
    assert_no_leaks(page)


# --- bearer tokens --------------------------------------------------------------------------------


def test_token_route_returns_the_cognito_tokens(reqsys, parent, resources):
    response = reqsys.post("/auth/token", json={"email": parent.email, "password": parent.password})
    assert response.status_code == 200
    body = response.get_json()
    assert {"id_token", "access_token", "refresh_token", "expires_in"} <= set(body)
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    claims = claims_of(body["id_token"])
    assert claims["token_use"] == "id"
    assert claims["aud"] == resources["COGNITO_CLIENT_ID_REQSYS"]
    assert claims["email"] == parent.email
    assert claims_of(body["access_token"])["token_use"] == "access"


@pytest.mark.parametrize(("body", "content_type", "code"), [
    ("{not json", "application/json", "malformed_json"),
    ("[1, 2]", "application/json", "malformed_json"),
    ("email=a@b.c&password=x", "application/x-www-form-urlencoded", "malformed_json"),
    ('{"email": "a@b.c"}', "application/json", "invalid"),
    ('{"email": "not-an-email", "password": "x"}', "application/json", "invalid"),
])
def test_bad_token_requests_get_a_400_json_error(reqsys, body, content_type, code):
    response = reqsys.post("/auth/token", data=body, content_type=content_type)
    error = assert_error(response, 400, code)
    if code == "invalid":
        assert error["fields"]


def test_a_valid_id_token_reaches_the_bearer_route(reqsys, bearer, make_user):
    staff = make_user(groups=["staff"], daycare_id="A00017", name="이서준")
    response = reqsys.get("/api/whoami", headers=bearer(staff.email))
    assert response.status_code == 200
    assert response.get_json() == {
        "sub": response.get_json()["sub"], "email": staff.email, "name": "이서준", "groups": ["staff"],
        "daycare_id": "A00017",
    }
    assert reqsys.get("/api/staff-only", headers=bearer(staff.email)).status_code == 200


def test_missing_or_malformed_authorization_is_401(reqsys):
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwdw=="},
                    {"Authorization": "Bearer a b"}):
        assert_error(reqsys.get("/api/whoami", headers=headers), 401, "unauthorized")


def _flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1:]


def test_tampered_tokens_are_401(reqsys, parent, tokens_for):
    token = tokens_for(parent.email)["id_token"]
    header, payload, signature = token.split(".")
    claims = claims_of(token)
    promoted = b64encode(json.dumps({**claims, "cognito:groups": ["admins"]}).encode())
    tampered = {
        "claims rewritten": f"{header}.{promoted}.{signature}",
        "payload char flipped": f"{header}.{_flip(payload, len(payload) // 2)}.{signature}",
        "signature char flipped": f"{header}.{payload}.{_flip(signature, len(signature) // 2)}",
        "signature dropped": f"{header}.{payload}.",
    }
    assert reqsys.get("/api/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    for name, bad in tampered.items():
        response = reqsys.get("/api/whoami", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401, name
        assert_error(response, 401, "unauthorized")


def test_expired_token_is_401_while_the_same_token_unexpired_passes(reqsys, parent, tokens_for):
    claims = claims_of(tokens_for(parent.email)["id_token"])
    now = int(time.time())
    fresh = sign({**claims, "iat": now, "exp": now + 600})
    expired = sign({**claims, "iat": now - 3700, "auth_time": now - 3700, "exp": now - 100})
    assert reqsys.get("/api/whoami", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
    assert_error(reqsys.get("/api/whoami", headers={"Authorization": f"Bearer {expired}"}), 401, "unauthorized")


def test_token_for_another_app_client_is_401(reqsys, childsys_app, parent, tokens_for):
    childsys_token = tokens_for(parent.email, app_name="childsys")["id_token"]
    headers = {"Authorization": f"Bearer {childsys_token}"}
    assert childsys_app.test_client().get("/api/whoami", headers=headers).status_code == 200
    assert_error(reqsys.get("/api/whoami", headers=headers), 401, "unauthorized")


def test_token_from_another_user_pool_is_401(reqsys, make_app, other_pool, resources, keep_jwks_env):
    headers = {"Authorization": f"Bearer {other_pool['id_token']}"}
    assert_error(reqsys.get("/api/whoami", headers=headers), 401, "unauthorized")

    # the trap: moto signs every pool's tokens with the same key, so only the issuer tells them
    # apart. An app whose client id matches the token (aud passes) must still refuse it.
    settings = Settings.load("reqsys")
    same_client = make_app("reqsys", {"SETTINGS": replace(settings, cognito_client_id=other_pool["client_id"])},
                           blueprints=[api])
    assert_error(same_client.test_client().get("/api/whoami", headers=headers), 401, "unauthorized")

    # a token we sign with reqsys's audience and the other pool's issuer
    claims = claims_of(other_pool["id_token"])
    forged = sign({**claims, "aud": resources["COGNITO_CLIENT_ID_REQSYS"]})
    assert_error(reqsys.get("/api/whoami", headers={"Authorization": f"Bearer {forged}"}), 401, "unauthorized")

    # control: the app that really belongs to that pool accepts the token
    own = make_app("reqsys", {"SETTINGS": replace(
        settings, cognito_userpool_id=other_pool["pool_id"], cognito_client_id=other_pool["client_id"],
        jwks_path=f"{settings.endpoint_url}/{other_pool['pool_id']}/.well-known/jwks.json")}, blueprints=[api])
    assert own.test_client().get("/api/whoami", headers=headers).status_code == 200


def test_access_token_instead_of_id_token_is_401(reqsys, parent, tokens_for):
    access = tokens_for(parent.email)["access_token"]
    assert_error(reqsys.get("/api/whoami", headers={"Authorization": f"Bearer {access}"}), 401, "unauthorized")


def test_garbage_and_unknown_key_tokens_are_401(reqsys, parent, tokens_for):
    claims = claims_of(tokens_for(parent.email)["id_token"])
    header_none = b64encode(json.dumps({"alg": "none", "kid": "dummy"}).encode())
    payload = b64encode(json.dumps(claims).encode())
    garbage = {
        "not a jwt": "garbage",
        "three dots of nothing": "a.b.c",
        "empty parts": "..",
        "no kid": sign(claims, {"alg": "RS256"}),
        "unknown kid": sign(claims, {"alg": "RS256", "kid": "someone-else"}),
        "alg none": f"{header_none}.{payload}.",
        "json that is not an object": f"{b64encode(b'[1]')}.{b64encode(b'[2]')}.{b64encode(b'x')}",
    }
    for name, token in garbage.items():
        response = reqsys.get("/api/whoami", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (name, response.get_data(as_text=True))
        assert_error(response, 401, "unauthorized")


# --- groups -----------------------------------------------------------------------------------------


def test_wrong_group_on_a_bearer_route_is_403(reqsys, parent, bearer):
    error = assert_error(reqsys.get("/api/staff-only", headers=bearer(parent.email)), 403, "forbidden")
    assert error["message"]
    assert reqsys.get("/api/whoami", headers=bearer(parent.email)).status_code == 200


def test_admin_page_is_403_for_a_parent_and_open_to_an_admin(reqsys_app, parent, make_user, sign_in, submit):
    as_parent = reqsys_app.test_client()
    sign_in(as_parent, parent.email)
    response = as_parent.get("/admin/init")
    assert response.status_code == 403
    assert response.mimetype == "text/html"
    assert_no_leaks(response)
    assert submit(as_parent, "/admin/init", {}, page="/").status_code == 403, "not even with a valid CSRF token"

    admin = make_user(groups=["admins"])
    as_admin = reqsys_app.test_client()
    sign_in(as_admin, admin.email)
    assert as_admin.get("/admin/init").status_code == 200


def test_anonymous_admin_page_redirects_to_login(reqsys):
    response = reqsys.get("/admin/init")
    assert response.status_code == 302
    assert location(response) == "/auth/login"


# --- sign out -----------------------------------------------------------------------------------------


def test_sign_out_ends_the_session(reqsys, parent, sign_in, submit):
    sign_in(reqsys, parent.email)
    assert reqsys.get("/auth/profile").status_code == 200
    assert parent.name in reqsys.get("/").get_data(as_text=True)

    response = submit(reqsys, "/auth/logout", {}, page="/")
    assert response.status_code == 302
    assert location(response) == "/auth/login"
    assert "로그아웃했습니다." in reqsys.get("/auth/login").get_data(as_text=True)

    after = reqsys.get("/auth/profile")
    assert after.status_code == 302
    assert location(after) == "/auth/login"
    assert parent.name not in reqsys.get("/").get_data(as_text=True)


# --- forgotten password and profile ------------------------------------------------------------------


def test_forgot_and_reset_password(reqsys, submit, parent):
    asked = submit(reqsys, "/auth/forgot", {"email": parent.email})
    assert asked.status_code == 302
    assert location(asked) == "/auth/reset"
    assert parent.email in reqsys.get(asked.headers["Location"]).get_data(as_text=True)

    reset = submit(reqsys, "/auth/reset", {"email": parent.email, "code": "123456", "password": NEW_PASSWORD})
    assert reset.status_code == 302, reset.get_data(as_text=True)
    assert location(reset) == "/auth/login"

    old = reqsys.post("/auth/token", json={"email": parent.email, "password": parent.password})
    assert_error(old, 401, "invalid_credentials")
    assert reqsys.post("/auth/token", json={"email": parent.email, "password": NEW_PASSWORD}).status_code == 200


def test_forgot_password_does_not_reveal_whether_an_account_exists(reqsys, submit, parent):
    known = submit(reqsys, "/auth/forgot", {"email": parent.email})
    unknown = submit(reqsys, "/auth/forgot", {"email": "no-such-person@example.com"})
    assert known.status_code == unknown.status_code == 302
    assert location(known) == location(unknown) == "/auth/reset"


def test_profile_update_stores_name_and_phone(reqsys, parent, sign_in, submit, cognito, resources):
    sign_in(reqsys, parent.email)
    page = reqsys.get("/auth/profile").get_data(as_text=True)
    assert 'value="김하늘"' in page

    saved = submit(reqsys, "/auth/profile", {"name": "김하늘 엄마", "phone": "010-1234-5678"})
    assert saved.status_code == 302
    assert location(saved) == "/auth/profile"

    user = cognito.admin_get_user(UserPoolId=resources["COGNITO_USERPOOL_ID"], Username=parent.email)
    attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    assert attributes["name"] == "김하늘 엄마"
    assert attributes["phone_number"] == "+821012345678"

    page = reqsys.get("/auth/profile").get_data(as_text=True)
    assert 'value="010-1234-5678"' in page, "shown back in the Korean format"
    assert "김하늘 엄마" in reqsys.get("/").get_data(as_text=True), "the header shows the new name"


def test_profile_rejects_a_bad_phone_next_to_the_field(reqsys, parent, sign_in, submit, cognito, resources):
    sign_in(reqsys, parent.email)
    response = submit(reqsys, "/auth/profile", {"name": "김하늘", "phone": "02-123"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'aria-describedby="phone-error"' in html
    user = cognito.admin_get_user(UserPoolId=resources["COGNITO_USERPOOL_ID"], Username=parent.email)
    assert "phone_number" not in {a["Name"] for a in user["UserAttributes"]}
