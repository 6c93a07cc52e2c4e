"""The UI shell every app shares: language, error pages, CSRF, session cookie, form errors."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from flask_babel import force_locale, gettext

APPS = ("reqsys", "childsys", "taskapp")


class Elements(HTMLParser):
    """Every element of a page by id: its attributes and its text."""

    def __init__(self, html: str):
        super().__init__()
        self.by_id: dict[str, dict] = {}
        self._open: list[dict] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, **{k: v or "" for k, v in attrs}, "text": ""}
        if element.get("id"):
            self.by_id[element["id"]] = element
        if tag not in ("input", "meta", "link", "br", "img"):
            self._open.append(element)

    def handle_endtag(self, tag):
        if self._open and self._open[-1]["tag"] == tag:
            self._open.pop()

    def handle_data(self, data):
        for element in self._open:
            element["text"] += data


@pytest.fixture
def reqsys(client_for):
    return client_for("reqsys")


def test_pages_are_korean_by_default(reqsys):
    response = reqsys.get("/auth/login")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<html lang="ko">' in html
    assert "로그인" in html
    assert "Sign in" not in html


def test_language_switch_to_english_returns_to_the_page(reqsys):
    switched = reqsys.get("/lang/en", headers={"Referer": "http://localhost/auth/login"})
    assert switched.status_code == 302
    assert switched.headers["Location"] in ("http://localhost/auth/login", "/auth/login")
    html = reqsys.get("/auth/login").get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Sign in" in html
    assert "로그인" not in html
    # and back
    reqsys.get("/lang/ko")
    assert "로그인" in reqsys.get("/auth/login").get_data(as_text=True)


def test_language_switch_never_redirects_off_site(reqsys):
    response = reqsys.get("/lang/en", headers={"Referer": "https://evil.example/phish"})
    assert response.status_code == 302
    assert "evil.example" not in response.headers["Location"]


def test_unknown_language_keeps_korean(reqsys):
    reqsys.get("/lang/xx")
    assert '<html lang="ko">' in reqsys.get("/auth/login").get_data(as_text=True)


def test_api_404_is_json_in_the_error_shape(reqsys):
    response = reqsys.get("/api/no-such-thing")
    assert response.status_code == 404
    assert response.is_json
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "not_found"
    assert body["error"]["message"]


def test_page_404_is_an_html_page(reqsys):
    response = reqsys.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "<h1>페이지를 찾을 수 없습니다</h1>" in html, "a heading that says what happened"
    assert 'href="/"' in html, "a way back"
    english = "The page or item you are looking for does not exist, or it has been removed. Check the address."
    with reqsys.application.test_request_context(), force_locale("ko"):
        korean = gettext(english)
    assert korean != english
    assert korean in html, "what to do next, in Korean"


def test_404_for_a_client_asking_for_json_is_json(reqsys):
    response = reqsys.get("/no-such-page", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_405_on_json_route_is_json(reqsys):
    response = reqsys.get("/auth/token")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"


def test_form_post_without_csrf_token_is_refused(client_for, make_user):
    user = make_user()
    client = client_for("reqsys")
    response = client.post("/auth/login", data={"email": user.email, "password": user.password})
    assert response.status_code == 400
    # the correct password did not sign anyone in
    with client.session_transaction() as session:
        assert "sub" not in session
    assert client.get("/auth/profile").status_code == 302


def test_form_post_with_a_forged_csrf_token_is_refused(client_for, make_user):
    user = make_user()
    client = client_for("reqsys")
    client.get("/auth/login")
    response = client.post("/auth/login", data={"email": user.email, "password": user.password,
                                                "csrf_token": "forged"})
    assert response.status_code == 400
    assert client.get("/auth/profile").status_code == 302


def test_cross_site_sign_out_without_token_does_not_sign_out(client_for, make_user, sign_in):
    user = make_user()
    client = client_for("reqsys")
    sign_in(client, user.email)
    assert client.post("/auth/logout").status_code == 400
    assert client.get("/auth/profile").status_code == 200


def test_json_route_is_not_subject_to_csrf(client_for, make_user):
    user = make_user()
    client = client_for("reqsys")
    response = client.post("/auth/token", json={"email": user.email, "password": user.password})
    assert response.status_code == 200
    assert response.get_json()["id_token"]


@pytest.mark.parametrize("app_name", APPS)
def test_session_cookie_is_httponly_lax_and_named_per_app(client_for, app_name):
    client = client_for(app_name)
    response = client.get("/lang/en")  # writes the session
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(f"{app_name}_session=")]
    assert len(cookies) == 1, response.headers.getlist("Set-Cookie")
    attributes = [part.strip().lower() for part in cookies[0].split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "secure" not in attributes, "locally the site is plain http"


def test_three_apps_on_one_host_keep_separate_sessions(client_for):
    names = {client_for(name).application.config["SESSION_COOKIE_NAME"] for name in APPS}
    assert names == {"reqsys_session", "childsys_session", "taskapp_session"}


def test_form_errors_render_next_to_their_fields(reqsys, submit):
    response = submit(reqsys, "/auth/signup", {
        "email": "not-an-email",
        "name": "김하늘",
        "phone": "12345",
        "password": "short",
        "password_again": "different",
    })
    assert response.status_code == 400
    page = Elements(response.get_data(as_text=True))
    for field in ("email", "phone", "password", "password_again"):
        control = page.by_id[field]
        assert control.get("aria-invalid") == "true", field
        assert f"{field}-error" in control.get("aria-describedby", "").split(), field
        assert page.by_id[f"{field}-error"]["text"].strip(), f"{field} has a visible message"
    assert "010-1234-5678" in page.by_id["phone-error"]["text"]
    # a correct field is left alone and keeps what was typed
    assert "aria-invalid" not in page.by_id["name"]
    assert page.by_id["name"]["value"] == "김하늘"
    assert page.by_id["email"]["value"] == "not-an-email"
    assert "value" not in page.by_id["password"] or page.by_id["password"]["value"] == "", "passwords are not echoed"


def test_empty_login_form_names_both_fields(reqsys, submit):
    response = submit(reqsys, "/auth/login", {"email": "", "password": ""})
    assert response.status_code == 400
    page = Elements(response.get_data(as_text=True))
    assert page.by_id["email"]["aria-invalid"] == "true"
    assert page.by_id["password"]["aria-invalid"] == "true"
    assert page.by_id["email-error"]["text"].strip()


def test_security_headers_on_every_page(reqsys):
    response = reqsys.get("/auth/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_healthz(reqsys):
    assert reqsys.get("/healthz").get_json() == {"status": "ok"}



# --- the page shell: error pages, error summary, menus, security headers, static files --------------


@pytest.mark.parametrize(("path", "status", "korean", "english"), [
    ("/no-such-page", 404, "페이지를 찾을 수 없습니다", "Page not found"),
    ("/auth/logout", 405, "이 페이지에서 할 수 없는 요청입니다", "This action is not possible here"),
])
def test_error_pages_speak_korean_by_default_and_english_when_chosen(reqsys, path, status, korean, english):
    html = reqsys.get(path).get_data(as_text=True)
    assert f"<h1>{korean}</h1>" in html
    assert english not in html
    reqsys.get("/lang/en")
    response = reqsys.get(path)
    assert response.status_code == status
    html = response.get_data(as_text=True)
    assert f"<h1>{english}</h1>" in html
    assert korean not in html
    assert 'href="/"' in html, "a way back to the start page"


def test_an_untranslated_english_message_never_shows_on_a_korean_page(reqsys):
    from shared.platform.errors import ValidationFailed

    app = reqsys.application

    @app.get("/test-invalid")
    def invalid():
        raise ValidationFailed({"class": "Input should be less than or equal to 5"})

    html = reqsys.get("/test-invalid").get_data(as_text=True)
    assert "Input should be" not in html and "Some fields are invalid" not in html
    assert "<h1>요청을 처리할 수 없습니다</h1>" in html
    reqsys.get("/lang/en")
    html = reqsys.get("/test-invalid").get_data(as_text=True)
    assert "Input should be less than or equal to 5" in html, "English pages may show the detail"


def test_500_page_is_plain_and_korean(reqsys):
    app = reqsys.application

    @app.get("/test-boom")
    def boom():
        raise RuntimeError("SELECT secret FROM table")

    response = reqsys.get("/test-boom")
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert "<h1>서비스에 문제가 생겼습니다</h1>" in html
    assert "SELECT" not in html and "Traceback" not in html


def test_a_refused_form_has_an_error_summary_linking_each_field(reqsys, submit):
    response = submit(reqsys, "/auth/signup", {"email": "not-an-email", "name": "", "phone": "12345",
                                               "password": "short", "password_again": "different"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    page = Elements(html)
    summary = page.by_id["error-summary-title"]
    assert summary["text"] == "입력 내용을 확인해 주세요"
    assert 'role="alert"' in html and "data-error-summary" in html
    for field in ("email", "name", "phone", "password", "password_again"):
        assert f'href="#{field}"' in html, f"the summary links to {field}"
    # the summary comes before the form
    assert html.index("data-error-summary") < html.index('<form method="post" novalidate>')


def test_a_good_page_has_no_error_summary(reqsys):
    assert "data-error-summary" not in reqsys.get("/auth/signup").get_data(as_text=True)


def test_admins_do_not_see_parent_only_menu_items(client_for, make_user, sign_in):
    admin, parent = make_user(groups=["admins"]), make_user(groups=["parents"])
    admin_client, parent_client = client_for("reqsys"), client_for("reqsys")
    sign_in(admin_client, admin.email)
    sign_in(parent_client, parent.email)
    admin_html = admin_client.get("/auth/profile").get_data(as_text=True)
    parent_html = parent_client.get("/auth/profile").get_data(as_text=True)
    for path in ("/children", "/applications"):
        assert f'href="{path}"' in parent_html
        assert f'href="{path}"' not in admin_html, f"{path} answers 403 to an admin: not in the admin's menu"
        assert admin_client.get(path).status_code == 403
    assert 'href="/admin/init"' in admin_html
    assert 'href="/admin/init"' not in parent_html


def test_every_response_carries_a_strict_content_security_policy(reqsys):
    response = reqsys.get("/auth/login")
    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert policy["script-src"].split()[0] == "'self'" and "unsafe-inline" not in policy["script-src"]
    assert "unsafe-inline" not in policy["style-src"]
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    # presigned S3 POST forms and proofs: the uploads bucket's origin is allowed to receive forms
    endpoint = reqsys.application.config["SETTINGS"].endpoint_url
    assert endpoint.rstrip("/") in policy["form-action"]
    assert "Strict-Transport-Security" not in response.headers, "locally the site is plain http"


def test_no_inline_script_style_or_handler_in_the_shell_templates():
    import re
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "shared" / "platform" / "templates"
    for path in folder.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), f"{path.name} has an inline script"
        assert not re.search(r"\sstyle=", text), f"{path.name} has a style attribute"
        assert not re.search(r"\son[a-z]+=", text), f"{path.name} has an on* handler"


def test_signed_in_pages_and_json_are_not_cached_public_pages_may_be(client_for, make_user, sign_in):
    client = client_for("reqsys")
    assert "no-store" not in client.get("/auth/login").headers.get("Cache-Control", "")
    assert client.get("/healthz").headers["Cache-Control"] == "no-store"
    user = make_user(groups=["parents"])
    sign_in(client, user.email)
    assert client.get("/auth/profile").headers["Cache-Control"] == "no-store"


def test_static_files_have_a_content_hash_in_their_url_and_are_cached_for_a_year(reqsys, tmp_path):
    import re

    html = reqsys.get("/auth/login").get_data(as_text=True)
    css = re.search(r'href="(/assets/ui/([0-9a-f]{12})/app\.css)"', html)
    assert css, "the stylesheet's URL carries a hash"
    response = reqsys.get(css.group(1))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.mimetype == "text/css"
    # the font the stylesheet names, by a relative URL, is served under the same hash
    krds = reqsys.get(css.group(1).replace("app.css", "krds/krds.css")).get_data(as_text=True)
    font = re.search(r"url\((fonts/[^)]+\.woff2)\)", krds).group(1)
    font_response = reqsys.get(css.group(1).replace("app.css", f"krds/{font}"))
    assert font_response.status_code == 200 and font_response.mimetype == "font/woff2"
    assert "immutable" in font_response.headers["Cache-Control"]
    # an outdated hash is still answered, but not cached for a year
    stale = reqsys.get(css.group(1).replace(css.group(2), "0" * 12))
    assert stale.status_code == 200 and "immutable" not in stale.headers["Cache-Control"]


def test_the_hash_changes_when_a_file_changes(tmp_path):
    from shared.platform.assets import folder_hash

    (tmp_path / "a.css").write_text("body{}")
    before = folder_hash(tmp_path)
    (tmp_path / "a.css").write_text("body{color:red}")
    assert folder_hash(tmp_path) != before


def test_in_aws_static_files_come_from_the_static_bucket():
    from shared.platform.settings import Settings

    env = {"STAGE": "prod", "AWS_REGION": "ap-northeast-2", "STATIC_BUCKET": "daycare-prod-1-static"}
    assert Settings.load("reqsys", env).static_url == "https://daycare-prod-1-static.s3.ap-northeast-2.amazonaws.com"
    local = {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "STATIC_BUCKET": "x"}
    assert Settings.load("reqsys", local).static_url == "", "locally Flask serves them"


def test_with_a_static_url_pages_link_the_files_there(make_app, resources):
    from dataclasses import replace

    from shared.platform.settings import Settings

    settings = replace(Settings.load("reqsys"), static_url="https://static.example.com")
    client = make_app("reqsys", {"SETTINGS": settings}).test_client()
    response = client.get("/auth/login")
    assert re.search(r'href="https://static\.example\.com/ui/[0-9a-f]{12}/app\.css"', response.get_data(as_text=True))
    policy = response.headers["Content-Security-Policy"]
    assert "style-src 'self' https://static.example.com" in policy
    assert "font-src 'self' https://static.example.com" in policy


def test_in_aws_pages_demand_https_for_a_year(make_app):
    from dataclasses import replace

    from shared.platform.settings import Settings

    local = Settings.load("taskapp")
    issuer = f"https://cognito-idp.{local.region}.amazonaws.com/{local.cognito_userpool_id}"
    in_aws = replace(local, endpoint_url=None, secret_key="k" * 40, sync_secret="s" * 40,
                     cognito_client_id=local.cognito_client_id or "client", jwks_path=f"{issuer}/.well-known/jwks.json")
    response = make_app("taskapp", {"SETTINGS": in_aws}).test_client().get("/healthz")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
