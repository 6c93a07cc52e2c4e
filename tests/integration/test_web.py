"""The UI shell every app shares: language, error pages, CSRF, session cookie, form errors."""

from __future__ import annotations

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
    assert "<h1>404</h1>" in html
    english = "The page you are looking for does not exist."
    with reqsys.application.test_request_context(), force_locale("ko"):
        korean = gettext(english)
    assert korean != english
    assert korean in html, "the message is in Korean"


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
        assert control.get("aria-describedby") == f"{field}-error", field
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

