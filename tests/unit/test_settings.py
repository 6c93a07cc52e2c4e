"""Production settings: every unsafe value stops the app from starting.

The environment is given to `Settings.load` explicitly, so the session's emulator
variables (AWS_ENDPOINT_URL, set by the `aws_endpoint` fixture) never leak in.
"""

from __future__ import annotations

import importlib
import os

import pytest

from shared.platform.settings import DEV_SECRET_KEY, DEV_SYNC_SECRET, Settings, UnsafeSettings

APPS = ("reqsys", "childsys", "taskapp")
POOL = "ap-northeast-2_AbCdEfGhI"


def safe_env(**changes: str | None) -> dict[str, str]:
    """What a correctly configured Lambda has; `changes` set (or with None, remove) values."""
    env = {
        "AWS_REGION": "ap-northeast-2",
        "STAGE": "prod",
        "SECRET_KEY": "k" * 48,
        "SYNC_SECRET": "s" * 48,
        "DATABASE_URL": "mysql+pymysql://app:pw@db.internal:3306/app",
        "COGNITO_USERPOOL_ID": POOL,
        "COGNITO_APP_CLIENT_ID": "3n4b5urk1ft4fl3mg5e62d9ado",
        "AWS_COGNITO_JWKS_PATH": f"https://cognito-idp.ap-northeast-2.amazonaws.com/{POOL}/.well-known/jwks.json",
    }
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def create(app_name: str, env: dict[str, str]):
    from shared.waitlist.settings import WaitlistSettings

    module = importlib.import_module(app_name)
    config = {"SETTINGS": Settings.load(app_name, env=env)}
    if app_name != "taskapp":
        config["WAITLIST"] = WaitlistSettings.load(env)
    return module.create_app(config)


@pytest.fixture(autouse=True)
def keep_jwks_env(monkeypatch):
    """init_auth points cognitojwt at the JWKS through os.environ: put it back afterwards."""
    monkeypatch.setenv("AWS_COGNITO_JWKS_PATH", os.environ.get("AWS_COGNITO_JWKS_PATH", ""))


UNSAFE = {
    "missing secret key": ({"SECRET_KEY": None}, "SECRET_KEY"),
    "default secret key": ({"SECRET_KEY": DEV_SECRET_KEY}, "SECRET_KEY"),
    "short secret key": ({"SECRET_KEY": "too-short"}, "SECRET_KEY"),
    "missing sync secret": ({"SYNC_SECRET": None}, "SYNC_SECRET"),
    "default sync secret": ({"SYNC_SECRET": DEV_SYNC_SECRET}, "SYNC_SECRET"),
    "emulator JWKS": (
        {"AWS_COGNITO_JWKS_PATH": f"http://127.0.0.1:4566/{POOL}/.well-known/jwks.json"},
        "AWS_COGNITO_JWKS_PATH",
    ),
    "JWKS from a file": ({"AWS_COGNITO_JWKS_PATH": "/tmp/jwks.json"}, "AWS_COGNITO_JWKS_PATH"),
    "missing client id": ({"COGNITO_APP_CLIENT_ID": None}, "COGNITO_APP_CLIENT_ID"),
    "missing user pool": ({"COGNITO_USERPOOL_ID": None}, "COGNITO_USERPOOL_ID"),
}


@pytest.mark.parametrize("app_name", APPS)
@pytest.mark.parametrize("case", list(UNSAFE), ids=list(UNSAFE))
def test_unsafe_production_setting_refuses_to_start(app_name, case):
    changes, variable = UNSAFE[case]
    with pytest.raises(UnsafeSettings) as refused:
        create(app_name, safe_env(**changes))
    message = str(refused.value)
    assert variable in message, "the refusal names what to fix"
    assert app_name in message
    # the secret itself is never echoed into logs
    for value in changes.values():
        if value and value != "/tmp/jwks.json" and not value.startswith("http"):
            assert value not in message


@pytest.mark.parametrize("app_name", ["reqsys", "childsys"])
def test_sql_apps_refuse_sqlite_in_production(app_name):
    with pytest.raises(UnsafeSettings, match="DATABASE_URL"):
        create(app_name, safe_env(DATABASE_URL=None))


def test_every_problem_is_reported_at_once():
    with pytest.raises(UnsafeSettings) as refused:
        create("reqsys", {"AWS_REGION": "ap-northeast-2"})
    message = str(refused.value)
    for variable in ("SECRET_KEY", "SYNC_SECRET", "COGNITO_APP_CLIENT_ID", "COGNITO_USERPOOL_ID", "DATABASE_URL"):
        assert variable in message


def test_create_app_without_config_reads_the_environment_and_refuses(monkeypatch):
    """`create_app()` as Zappa calls it: the Lambda environment, no emulator."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for key, value in safe_env(SECRET_KEY=None).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    from reqsys import create_app

    with pytest.raises(UnsafeSettings, match="SECRET_KEY"):
        create_app()


@pytest.mark.parametrize("app_name", APPS)
def test_safe_production_settings_start(app_name):
    app = create(app_name, safe_env())
    assert app.config["SESSION_COOKIE_SECURE"] is True, "production cookies only travel over HTTPS"
    assert app.config["COGNITO_APP_CLIENT_ID"] == "3n4b5urk1ft4fl3mg5e62d9ado", "token audience is checked"
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_production_defaults_to_aws_jwks_for_the_pool():
    """With no JWKS path set, cognitojwt's default (the pool's AWS URL) is used: safe."""
    settings = Settings.load("taskapp", env=safe_env(AWS_COGNITO_JWKS_PATH=None))
    assert settings.jwks_path == ""
    settings.check_production()
    assert settings.cognito_issuer == f"https://cognito-idp.ap-northeast-2.amazonaws.com/{POOL}"


def test_local_emulator_settings_start_with_development_defaults():
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_REGION": "ap-northeast-2",
           "COGNITO_USERPOOL_ID": POOL, "COGNITO_APP_CLIENT_ID": "local-client"}
    settings = Settings.load("reqsys", env=env)
    assert settings.is_local
    assert settings.secret_key == DEV_SECRET_KEY
    assert settings.jwks_path == f"http://127.0.0.1:4566/{POOL}/.well-known/jwks.json"
    settings.check_production()  # no refusal next to the emulator
    app = create("taskapp", env)
    assert app.config["SESSION_COOKIE_SECURE"] is False, "plain http on 127.0.0.1 keeps its session"


def test_offer_days_are_read_and_checked():
    from shared.waitlist.settings import WaitlistSettings

    settings = WaitlistSettings.load(env=safe_env(OFFER_DAYS="5", OFFER_REMINDER_DAYS="1"))
    assert (settings.offer_days, settings.offer_reminder_days) == (5, 1)
    assert WaitlistSettings.load(env=safe_env()).offer_days == 7
    for wrong in ("0", "61", "seven", "-3"):
        with pytest.raises(UnsafeSettings, match="OFFER_DAYS"):
            WaitlistSettings.load(env=safe_env(OFFER_DAYS=wrong))


def test_a_broken_criteria_file_stops_the_app(tmp_path):
    broken = tmp_path / "criteria.json"
    broken.write_text("{not json")
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "COGNITO_USERPOOL_ID": POOL,
           "COGNITO_APP_CLIENT_ID": "local-client", "PRIORITY_CRITERIA_PATH": str(broken),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    for app_name in ("reqsys", "childsys"):
        with pytest.raises(ValueError, match="priority criteria"):
            create(app_name, env)


def test_local_mode_is_refused_inside_a_lambda_whatever_else_is_set():
    lambda_env = {"AWS_LAMBDA_FUNCTION_NAME": "daycare-reqsys-prod", "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}
    for env in (lambda_env, safe_env(**lambda_env), {**lambda_env, "SECRET_KEY": DEV_SECRET_KEY, "STAGE": "local"}):
        with pytest.raises(UnsafeSettings, match="AWS_ENDPOINT_URL"):
            Settings.load("reqsys", env)
    # a Settings object made some other way is refused again where the app starts
    from dataclasses import replace

    made = replace(Settings.load("reqsys", safe_env()), endpoint_url="http://127.0.0.1:4566", in_lambda=True)
    assert not made.is_local
    with pytest.raises(UnsafeSettings):
        made.check_production()
    # outside a Lambda the endpoint alone is local mode, as before
    assert Settings.load("reqsys", {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}).is_local
