"""One settings object, read from the environment.

Locally every value has a default, and AWS resource names/URLs fall back to the
outputs file that provisioning writes (`.local/aws-<stage>.json`), so
`flask --app reqsys run` works after `make run` has provisioned once. In AWS
(no AWS_ENDPOINT_URL) the values come from the Lambda environment, and unsafe
values stop the app from starting.

Local mode is AWS_ENDPOINT_URL and nothing else, and never inside a Lambda function: with
AWS_LAMBDA_FUNCTION_NAME set (Lambda sets it in every function) an AWS_ENDPOINT_URL stops the app
from starting, whatever else is set, so a stray variable cannot turn a deployed function into one
running on the public local secrets.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCAL_DIR = ROOT / ".local"
DEV_SECRET_KEY = "local-dev-only-secret-key"  # noqa: S105 - refused outside the emulator
DEV_SYNC_SECRET = "local-dev-only-sync-secret"  # noqa: S105 - refused outside the emulator
LOCAL_ENDPOINT = "http://127.0.0.1:4566"


class UnsafeSettings(RuntimeError):
    """Raised at start-up when production settings would be insecure."""


def outputs_path(stage: str) -> Path:
    return Path(os.environ.get("AWS_OUTPUTS_DIR") or LOCAL_DIR) / f"aws-{stage}.json"


def _load_outputs(stage: str) -> dict[str, str]:
    path = outputs_path(stage)
    if path.is_file():
        return json.loads(path.read_text())
    return {}


@cache
def _parameters(path: str) -> dict[str, str]:
    """The function's SSM parameters (secrets, and URLs known only after a deploy), once per cold start.

    `/daycare/prod/reqsys/SECRET_KEY` becomes SECRET_KEY. The Lambda environment carries only the
    path, so no secret is visible in the function's configuration; IAM lets each function read
    only its own path (shared/tools/deploy/iam.py).
    """
    from shared.platform.aws import client

    pages = client("ssm").get_paginator("get_parameters_by_path").paginate(
        Path=path.rstrip("/"), Recursive=False, WithDecryption=True)
    return {p["Name"].rsplit("/", 1)[-1]: p["Value"] for page in pages for p in page["Parameters"]}


def refuse_local_mode_in_lambda(env) -> None:
    """UnsafeSettings when the environment asks for local mode inside a Lambda function."""
    if env.get("AWS_LAMBDA_FUNCTION_NAME") and env.get("AWS_ENDPOINT_URL"):
        raise UnsafeSettings(
            f"{env['AWS_LAMBDA_FUNCTION_NAME']} refuses to start: AWS_ENDPOINT_URL (the local mode, with its "
            "public secrets and no production checks) is never allowed in a Lambda function")


def _with_parameters(env: dict[str, str], into_environ: bool) -> dict[str, str]:
    path = env.get("SSM_PARAMETER_PATH")
    if not path or env.get("AWS_ENDPOINT_URL"):
        return env
    parameters = _parameters(path)
    if into_environ:  # for code that reads os.environ directly (the forward handler's target URLs)
        for name, value in parameters.items():
            os.environ.setdefault(name, value)
    return {**parameters, **env}  # an explicit environment variable wins


def _static_url(env: dict[str, str], region: str, *, local: bool) -> str:
    """STATIC_URL if set; in AWS the static bucket's address; locally empty (Flask serves /assets)."""
    if env.get("STATIC_URL"):
        return env["STATIC_URL"].rstrip("/")
    bucket = env.get("STATIC_BUCKET")
    if bucket and not local:
        return f"https://{bucket}.s3.{region}.amazonaws.com"
    return ""


@dataclass(frozen=True)
class Settings:
    app_name: str
    stage: str
    region: str
    endpoint_url: str | None
    secret_key: str
    sync_secret: str
    database_url: str
    cognito_userpool_id: str
    cognito_client_id: str
    jwks_path: str
    default_locale: str = "ko"
    resources: dict[str, str] = field(default_factory=dict)
    # where browsers fetch static files from: empty = this app (locally); in AWS the stage's static bucket
    static_url: str = ""

    in_lambda: bool = False

    @property
    def is_local(self) -> bool:
        return bool(self.endpoint_url) and not self.in_lambda

    @property
    def cognito_issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.cognito_userpool_id}"

    def resource(self, name: str) -> str:
        """A provisioned resource (queue URL, table name, ARN) by its output name."""
        value = os.environ.get(name) or self.resources.get(name)
        if not value:
            raise KeyError(f"resource {name} is not configured; run provisioning")
        return value

    @classmethod
    def load(cls, app_name: str, env: dict[str, str] | None = None) -> Settings:
        from_environ = env is None
        env = dict(os.environ if env is None else env)
        refuse_local_mode_in_lambda(env)
        env = _with_parameters(env, into_environ=from_environ)
        endpoint = env.get("AWS_ENDPOINT_URL") or None
        stage = env.get("STAGE", "local")
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "ap-northeast-2"
        outputs = _load_outputs(stage) if endpoint else {}

        def get(name: str, default: str = "") -> str:
            return env.get(name) or outputs.get(name) or default

        pool_id = get("COGNITO_USERPOOL_ID")
        client_id = env.get("COGNITO_APP_CLIENT_ID") or outputs.get(f"COGNITO_CLIENT_ID_{app_name.upper()}", "")
        jwks_default = f"{endpoint}/{pool_id}/.well-known/jwks.json" if endpoint and pool_id else ""
        local_db = f"sqlite:///{LOCAL_DIR / f'{app_name}.db'}"
        return cls(
            app_name=app_name,
            stage=stage,
            region=region,
            endpoint_url=endpoint,
            secret_key=env.get("SECRET_KEY") or (DEV_SECRET_KEY if endpoint else ""),
            sync_secret=env.get("SYNC_SECRET") or (DEV_SYNC_SECRET if endpoint else ""),
            database_url=env.get("DATABASE_URL") or local_db,
            cognito_userpool_id=pool_id,
            cognito_client_id=client_id,
            jwks_path=env.get("AWS_COGNITO_JWKS_PATH") or jwks_default,
            default_locale=env.get("DEFAULT_LOCALE", "ko"),
            resources=outputs,
            static_url=_static_url(env, region, local=bool(endpoint)),
            in_lambda=bool(env.get("AWS_LAMBDA_FUNCTION_NAME")),
        )

    def check_production(self) -> None:
        """Refuse to start in AWS with settings that would be unsafe there."""
        if self.in_lambda and self.endpoint_url:
            refuse_local_mode_in_lambda({"AWS_LAMBDA_FUNCTION_NAME": self.app_name,
                                         "AWS_ENDPOINT_URL": self.endpoint_url})
        if self.is_local:
            return
        problems = []
        if not self.secret_key or self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
            problems.append("SECRET_KEY is missing, a default, or shorter than 32 characters")
        if not self.sync_secret or self.sync_secret == DEV_SYNC_SECRET:
            problems.append("SYNC_SECRET is missing or the local default")
        if not self.cognito_client_id:
            problems.append("COGNITO_APP_CLIENT_ID is missing (token audience would not be checked)")
        if not self.cognito_userpool_id:
            problems.append("COGNITO_USERPOOL_ID is missing")
        if self.jwks_path and self.jwks_path != f"{self.cognito_issuer}/.well-known/jwks.json":
            problems.append("AWS_COGNITO_JWKS_PATH is not this pool's AWS JWKS (never an emulator or a file)")
        if self.database_url.startswith("sqlite") and self.app_name in ("reqsys", "childsys"):
            problems.append("DATABASE_URL is missing (SQLite is for local use only)")
        if problems:
            raise UnsafeSettings(f"{self.app_name} refuses to start: " + "; ".join(problems))
