"""`make deploy STAGE=…`, `make smoke STAGE=…` and `make rollback STAGE=…`: one command from CI to a working stage.

deploy, in order (every step idempotent, so a failed deploy is re-run, not repaired by hand):
 1. provision the stage's resources (shared/tools/provision.py), each function's least-privilege role
    (shared/tools/deploy/iam.py), the database tier (shared/tools/deploy/database.py: RDS, its secrets, the
    RDS Proxy; DATABASE_TIER=external keeps a database of one's own), and the release tier
    (shared/tools/deploy/canary.py: operator topic, alarms, CodeDeploy, the pre-traffic hook);
    PIPELINE=1 also the CodePipeline (shared/tools/deploy/pipeline.py);
 2. secrets as SSM SecureStrings under /daycare/<stage>/<app>/: SECRET_KEY and SYNC_SECRET are generated
    once and kept; DATABASE_URL is the database tier's (through the proxy, the app's own user, TLS), or with
    DATABASE_TIER=external comes from the CI secrets DATABASE_URL_REQSYS / DATABASE_URL_CHILDSYS;
 3. render the stages' Zappa settings (shared/tools/deploy/stages.py) and package them (`make package`);
 4. `zappa deploy` (first time) or `zappa update` with that zip and settings without events or keep-warm:
    Zappa uploads, nothing reaches the new code; then a version is published (code and configuration);
 5. the alias `live` and all that reaches a function through it (canary.py `wire_alias`): API Gateway's
    integrations, the queue and stream mappings (ReportBatchItemFailures, the stream's starting position:
    Zappa can do neither), the schedules;
 6. release: per function a CodeDeploy deployment moves `live` to the new version (pre-traffic smoke checks,
    10 % for 5 minutes, then all), rolled back by CodeDeploy when one of the function's alarms fires.
smoke: each web app answers /healthz, its sign-in page and an unauthenticated JSON call as it should, and
every mapping is on the alias, enabled, with ReportBatchItemFailures.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from shared.platform.aws import client, region
from shared.tools.deploy import stages
from shared.tools.deploy.canary import api_id

WEB_APPS = stages.WEB_APPS
EVENT_APPS = ("pipeline", "analytics")
SYNC_APPS = ("reqsys", "childsys", "pipeline")
ROLE_PROPAGATION_SECONDS = 15  # share the secret that signs machine-to-machine calls


def _parameter(name: str) -> str | None:
    ssm = client("ssm")
    try:
        return ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None


def _put(name: str, value: str, changes: list[str], secure: bool = True) -> None:
    client("ssm").put_parameter(Name=name, Value=value, Type="SecureString" if secure else "String", Overwrite=True)
    changes.append(f"set parameter {name}")


def ensure_secrets(stage: str, env: Mapping[str, str], database_urls: Mapping[str, str] | None = None) -> list[str]:
    """Every function's secrets in its own SSM path; values already there are kept. `database_urls` (the
    database tier's, app -> URL) take the place of the CI secrets DATABASE_URL_<APP>."""
    changes: list[str] = []
    database_urls = database_urls or {}
    for app in WEB_APPS:
        name = stages.parameter_path(app, stage) + "SECRET_KEY"
        if _parameter(name) is None:
            _put(name, secrets.token_urlsafe(48), changes)
    sync_names = [stages.parameter_path(app, stage) + "SYNC_SECRET" for app in SYNC_APPS]
    current = {name: _parameter(name) for name in sync_names}
    shared = next((value for value in current.values() if value), None) or secrets.token_urlsafe(48)
    for name, value in current.items():
        if value != shared:
            _put(name, shared, changes)
    missing = []
    for app in stages.VPC_APPS:
        name = stages.parameter_path(app, stage) + "DATABASE_URL"
        given = database_urls.get(app) or env.get(f"DATABASE_URL_{app.upper()}")
        if given:
            if not given.startswith("mysql+pymysql://"):
                raise SystemExit(f"DATABASE_URL_{app.upper()} must be a mysql+pymysql:// URL")
            if _parameter(name) != given:
                _put(name, given, changes)
        elif _parameter(name) is None:
            missing.append(f"DATABASE_URL_{app.upper()}")
    if missing:
        raise SystemExit(f"set the CI secret(s) {', '.join(missing)} once: the MySQL apps have no database URL "
                         f"in SSM under /daycare/{stage}/")
    return changes


def api_url(app: str, stage: str) -> str | None:
    """The API Gateway URL Zappa made for `<app>_<stage>`."""
    rest_api = api_id(app, stage)
    return None if rest_api is None else f"https://{rest_api}.execute-api.{region()}.amazonaws.com/{app}_{stage}"


def publish_app_urls(stage: str) -> list[str]:
    """The pipeline forwards to reqsys and childsys: their URLs become its parameters."""
    changes: list[str] = []
    for app in ("reqsys", "childsys"):
        url = api_url(app, stage)
        if url is None:
            raise SystemExit(f"{app}_{stage} has no API Gateway yet; deploy it first")
        name = stages.parameter_path("pipeline", stage) + f"{app.upper()}_URL"
        if _parameter(name) != url:
            _put(name, url, changes, secure=False)
    return changes


def _deployed(app: str, stage: str) -> bool:
    lam = client("lambda")
    try:
        lam.get_function(FunctionName=stages.lambda_name(app, stage))
    except lam.exceptions.ResourceNotFoundException:
        return False
    return True


def zappa_command(app: str, stage: str, settings_file: Path, zip_file: Path, deployed: bool) -> list[str]:
    zappa = str(Path(sys.executable).with_name("zappa"))
    return [zappa, "update" if deployed else "deploy", f"{app}_{stage}", "-s", str(settings_file),
            "--zip", str(zip_file)]


def deploy_settings_file(settings_file: Path) -> Path:
    """The rendered settings as Zappa deploys them: no events, no keep-warm (canary.deploy_settings)."""
    from shared.tools.deploy.canary import deploy_settings

    path = settings_file.with_name(settings_file.name.replace("zappa_settings.", "zappa_deploy."))
    path.write_text(json.dumps(deploy_settings(json.loads(settings_file.read_text())), indent=2, sort_keys=True))
    return path


def publish(app: str, stage: str) -> str:
    """A version of what Zappa uploaded, code and configuration (Zappa's own version predates its
    configuration update); the same version again when nothing changed."""
    lam = client("lambda")
    name = stages.lambda_name(app, stage)
    try:
        lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 60})
    except Exception as error:  # noqa: BLE001 - an emulator without the waiter's fields: publish anyway
        print(f"  (waiting for {name} to settle: {type(error).__name__})", flush=True)
    return lam.publish_version(FunctionName=name, Description="make deploy")["Version"]


def deploy(stage: str, env: Mapping[str, str], run: Callable[[list[str]], None], dist: Path = Path("dist"),
           execute: Callable[[str], str] | None = None, zips: Mapping[str, Path] | None = None) -> dict[str, str]:
    """The whole deploy; app -> the version `live` is on. `execute` plays a CodeDeploy deployment to its
    end (default: wait for CodeDeploy's own); `zips` skips packaging (a rehearsal that packaged once)."""
    from shared.tools import provision
    from shared.tools.deploy import canary, database, iam
    from shared.tools.deploy.package import build

    def say(lines: list[str]) -> None:
        print("\n".join(f"  {line}" for line in lines) or "  no changes", flush=True)

    print(f"1. provisioning {stage}", flush=True)
    result = provision.apply(stage)
    iam.ensure_roles(stage, result)
    database_urls = database.ensure_database_tier(stage, env, result)
    canary.ensure_release_tier(stage, result, env)
    if any(change.startswith("created role") for change in result.changes) and not env.get("AWS_ENDPOINT_URL"):
        time.sleep(ROLE_PROPAGATION_SECONDS)  # a new role is not usable by Lambda at once (IAM is eventual)
    if env.get("PIPELINE") == "1":
        from shared.tools.deploy.pipeline import ensure_pipeline

        ensure_pipeline(stage, result)
    say(result.changes)
    print("2. secrets", flush=True)
    say(ensure_secrets(stage, env, database_urls))
    print("3. settings and packages", flush=True)
    account_id = client("sts").get_caller_identity()["Account"]
    settings_file = stages.write(stage, account_id=account_id, region=region(), outputs=result.outputs, env=env,
                                 strict=True)
    zips = dict(zips) if zips else build(stage, settings_file, dist)
    deploy_file = deploy_settings_file(settings_file)
    rendered = json.loads(settings_file.read_text())
    print("4. zappa (upload and publish; no traffic moves)", flush=True)
    targets: dict[str, str] = {}
    for app in WEB_APPS:
        run(zappa_command(app, stage, deploy_file, zips[app], _deployed(app, stage)))
        targets[app] = publish(app, stage)
    say(publish_app_urls(stage))
    say(provision.protect_apis(stage, result.outputs["WEB_ACL_ARN"]))  # the sign-in rate limit (WAF)
    for app in EVENT_APPS:
        run(zappa_command(app, stage, deploy_file, zips[app], _deployed(app, stage)))
        targets[app] = publish(app, stage)
    print(f"5. the alias {canary.ALIAS}: API Gateway, queue and stream mappings, schedules", flush=True)
    for app in (*WEB_APPS, *EVENT_APPS):
        say(canary.wire_alias(stage, app, rendered[f"{app}_{stage}"]))
    print(f"6. release through CodeDeploy ({canary.CANARY}, rolled back on alarm)", flush=True)
    canary.release_all(stage, targets, **({"execute": execute} if execute else {}))
    return targets


def _get(url: str) -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers={"Accept": "application/json, text/html"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - our own https URLs
            return response.status, response.headers.get("Content-Type", ""), response.read(65536).decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read(65536).decode(errors="replace")


# (app, path, expected status, what the body must contain)
SMOKE_CHECKS = (
    *((app, "/healthz", 200, '"ok"') for app in WEB_APPS),
    *((app, "/auth/login", 200, "<form") for app in WEB_APPS),
    ("reqsys", "/api/nurseries", 200, '"nurseries"'),  # public, and reads MySQL through the VPC
    ("reqsys", "/enterwait", 401, '"error"'),
    ("childsys", "/request?nursery_id=A00017", 401, '"error"'),
    ("childsys", "/enterwait/request", 405, ""),  # the signed sync endpoint exists and takes only POST
    ("taskapp", "/api/tasks", 401, '"error"'),
)


def smoke(urls: Mapping[str, str], get: Callable[[str], tuple[int, str, str]] = _get) -> list[str]:
    """HTTP checks against the deployed apps; returns the failures (empty when all is well)."""
    failures = []
    for app, path, status, needle in SMOKE_CHECKS:
        url = urls[app].rstrip("/") + path
        got, content_type, body = get(url)
        if got != status or needle not in body:
            failures.append(f"{url}: HTTP {got}, expected {status} with {needle!r}")
        elif "Traceback" in body or "sqlalchemy" in body.lower():
            failures.append(f"{url}: the answer shows internals")
        else:
            print(f"  ok  {got}  {url}", flush=True)
    return failures


def mapping_failures(stage: str) -> list[str]:
    """Every queue and stream handler of the wiring list has an enabled mapping with ReportBatchItemFailures,
    on the alias `live` (a mapping on the unqualified function would run code no canary released)."""
    from shared.tools.deploy.canary import ALIAS
    from shared.tools.runner import SqsSource, StreamSource, load_event_sources

    lam = client("lambda")
    failures = []
    for source in load_event_sources(env=stages.LOCAL):
        if not isinstance(source, SqsSource | StreamSource):
            continue
        name = source.lambda_name.removesuffix(f"-{stages.LOCAL}") + f"-{stage}"
        resource = source.arn.split(":", 5)[5].replace(f"daycare-{stages.LOCAL}-", f"daycare-{stage}-")
        if source.arn.startswith("arn:aws:dynamodb"):
            resource = resource.split("/stream/")[0] + "/stream/"
        on_alias, unqualified = ([m for m in lam.list_event_source_mappings(FunctionName=qualifier)[
            "EventSourceMappings"] if resource in m["EventSourceArn"]] for qualifier in (f"{name}:{ALIAS}", name))
        good = [m for m in on_alias if m.get("State") in ("Enabled", "Enabling", "Updating")
                and "ReportBatchItemFailures" in (m.get("FunctionResponseTypes") or [])]
        if not good:
            failures.append(f"{name}:{ALIAS}: no enabled mapping with ReportBatchItemFailures on {resource}")
        if any(m["FunctionArn"].endswith(f":function:{name}") for m in unqualified):
            failures.append(f"{name}: a mapping on {resource} bypasses the alias {ALIAS}")
    return failures


def _arguments(argv: list[str] | None, description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--stage", required=True)
    args = parser.parse_args(argv)
    if args.stage == stages.LOCAL:
        parser.error("the local stage is `make run`, not a deploy")
    return args


def deploy_main(argv: list[str] | None = None) -> int:
    args = _arguments(argv, "Provision, configure, package, deploy and wire a stage.")

    def run(command: list[str]) -> None:
        print("  $ " + " ".join(command), flush=True)
        if subprocess.run(command).returncode:  # noqa: S603 - our own zappa with fixed arguments
            raise SystemExit(f"failed: {' '.join(command[1:3])} (Zappa's output above); the deploy is safe to re-run")

    deploy(args.stage, dict(os.environ), run)
    print(f"deployed {args.stage}; next: make smoke STAGE={args.stage}")
    return 0


def smoke_main(argv: list[str] | None = None) -> int:
    args = _arguments(argv, "Check a deployed stage over HTTP and its event source mappings.")
    urls = {app: api_url(app, args.stage) for app in WEB_APPS}
    missing = [app for app, url in urls.items() if url is None]
    if missing:
        print(f"not deployed: {', '.join(missing)}", file=sys.stderr)
        return 1
    failures = smoke(urls) + mapping_failures(args.stage)
    for failure in failures:
        print(f"  FAIL {failure}", file=sys.stderr)
    print(json.dumps({"stage": args.stage, "checks": len(SMOKE_CHECKS), "failures": len(failures)}))
    return 1 if failures else 0
