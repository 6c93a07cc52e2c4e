"""The deployed stages' Zappa settings, rendered from the one wiring list: `python -m shared.tools.deploy render`.

zappa_settings.json holds the `*_local` stages, which the local runner plays (DESIGN.md section 3).
A real account's stages are the same functions with the same event handlers; only names differ:
the account, the region, the stage in every resource name, and the DynamoDB stream's ARN (which has
a creation label no one can guess). So `<app>_dev` and `<app>_prod` are rendered here from `<app>_local`,
from CI variables and the provisioning outputs, and written to `.local/deploy/zappa_settings.<stage>.json`
for `zappa package/deploy/update -s`. Nobody edits ARNs by hand, and a handler wired locally is wired
in AWS.

CI variables (all optional except where a deploy needs them):
    AWS_REGION                 region of the stage (default: the local stages' region)
    ZAPPA_BUCKET               bucket for Zappa's uploads (default daycare-<stage>-<account>-zappa)
    VPC_SUBNET_IDS             comma-separated private subnets for reqsys/childsys (RDS MySQL)
    VPC_SECURITY_GROUP_IDS     comma-separated security groups for reqsys/childsys
    KEEP_WARM                  "false" to stop Zappa pinging the web apps every 4 minutes (default on where
                               SnapStart is off)
    SNAP_START                 "false" to turn SnapStart off for the web apps (default on, which takes effect
                               only on a runtime of python3.12 or newer: README, "Deploying")
Secrets never pass through here: they are SSM parameters under /daycare/<stage>/<app>/ (see release.py).
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

from shared.platform.settings import LOCAL_DIR, ROOT

SETTINGS_FILE = ROOT / "zappa_settings.json"
LOCAL = "local"
LOCAL_ACCOUNT = "123456789012"  # the emulator's, which the local stages' ARNs name
WEB_APPS = ("reqsys", "childsys", "taskapp")
VPC_APPS = ("reqsys", "childsys")  # the MySQL apps: in the VPC with RDS
LIVE_ALIAS = "live"  # the alias every way in goes through, shifted by CodeDeploy (canary.py)
SNAP_START_FROM = (3, 12)  # Lambda's SnapStart for Python needs python3.12 or newer


def runtime(path: Path = SETTINGS_FILE) -> str:
    """The functions' Lambda runtime (`python3.13`), as zappa_settings.json's base stage sets it."""
    return json.loads(Path(path).read_text())["base"]["runtime"]


def snap_start(app: str, runtime: str, env: Mapping[str, str]) -> bool:
    """SnapStart for a web app on a runtime that has it, unless SNAP_START=false."""
    version = tuple(int(part) for part in runtime.removeprefix("python").split("."))
    return app in WEB_APPS and version >= SNAP_START_FROM and env.get("SNAP_START", "true").lower() != "false"
# Provisioning outputs the functions read at run time (shared/platform/settings.py `resource`): names and
# URLs, not ARNs, which only provisioning and IAM need. The same set for every function keeps one
# rule; IAM, not the environment, decides what each function may touch.
_RUNTIME_OUTPUT = re.compile(r".*_(QUEUE_URL|DLQ_URL|TABLE|BUCKET)$|^(EVENT_BUS_NAME|TASK_TOPIC_ARN|SES_SENDER|"
                             r"GLUE_DATABASE|ATHENA_WORKGROUP)$")


def lambda_name(app: str, stage: str) -> str:
    """What Zappa names the function of stage `<app>_<stage>` (project_name + stage)."""
    return f"daycare-{app}-{stage}"


def role_name(app: str, stage: str) -> str:
    return f"daycare-{stage}-{app}-lambda"


def parameter_path(app: str, stage: str) -> str:
    """The function's SSM parameters (its secrets), read at cold start by shared/platform/settings.py."""
    return f"/daycare/{stage}/{app}/"


def _resolved(stages: dict[str, dict], name: str) -> dict:
    from shared.tools.runner import _stage_settings  # one reading of Zappa's shallow `extends`

    return _stage_settings(stages, name)


def local_stages(path: Path = SETTINGS_FILE) -> dict[str, dict]:
    """app -> its `<app>_local` stage with `extends` applied."""
    stages = json.loads(Path(path).read_text())
    return {name.removesuffix(f"_{LOCAL}"): _resolved(stages, name) for name in stages if name.endswith(f"_{LOCAL}")}


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


class MissingVariable(RuntimeError):
    """A deploy needs a CI variable that is not set."""


def _arn(local_arn: str, stage: str, account_id: str, region: str, outputs: Mapping[str, str]) -> str:
    """A local stage's ARN, renamed for `stage` in `account_id`/`region`."""
    parts = local_arn.split(":", 5)
    if parts[3]:
        parts[3] = region
    if parts[4] == LOCAL_ACCOUNT:
        parts[4] = account_id
    parts[5] = parts[5].replace(f"daycare-{LOCAL}-", f"daycare-{stage}-")
    arn = ":".join(parts)
    if parts[2] == "dynamodb" and "/stream/" in arn:
        # the real stream ARN ends in its creation time: take it from provisioning
        table_arn = arn.split("/stream/")[0]
        streams = [v for k, v in outputs.items() if k.endswith("_STREAM_ARN") and v.startswith(table_arn + "/")]
        if not streams:
            raise MissingVariable(f"no stream ARN for {table_arn} in the provisioning outputs; provision first")
        arn = streams[0]
    return arn


def render_stage(app: str, local: dict, stage: str, *, account_id: str, region: str,
                 outputs: Mapping[str, str], env: Mapping[str, str], strict: bool = False) -> dict:
    """One deployed stage. `strict` (a deploy) requires what packaging does not (VPC ids)."""
    rendered = {k: v for k, v in local.items() if k not in ("environment_variables", "events", "layers")}
    snapping = snap_start(app, local["runtime"], env)
    rendered.update({
        "aws_region": region,
        "s3_bucket": env.get("ZAPPA_BUCKET") or f"daycare-{stage}-{account_id}-zappa",
        # our own least-privilege role per function (shared/tools/deploy/iam.py), never Zappa's broad one
        "role_arn": f"arn:aws:iam::{account_id}:role/{role_name(app, stage)}",
        "manage_roles": False,
        # SnapStart (a web app on python3.12+): a new instance starts from a snapshot taken after the cold
        # start. Where it is off, keep_warm: a ping every 4 minutes keeps one instance warm (none of the
        # concurrent ones a busy morning brings) for cents. The queue and schedule handlers have no one waiting.
        "snap_start": "PublishedVersions" if snapping else "None",
        # Zappa's handler builds the app when it is imported (Lambda's init, which the snapshot keeps) rather
        # than on the first request (after every restore); it reads this from the function's environment
        **({"aws_environment_variables": {"INSTANTIATE_LAMBDA_HANDLER_ON_IMPORT": "true"}} if snapping else {}),
        # Zappa's API Gateway calls the released alias, never the version `zappa update` just uploaded (nor,
        # with SnapStart, the alias Zappa would move to it at once): the canary decides when it takes traffic
        **({"apigateway_lambda_qualifier": LIVE_ALIAS} if app in WEB_APPS else {}),
        "keep_warm": app in WEB_APPS and not snapping and env.get("KEEP_WARM", "true").lower() != "false",
           # after a deploy Zappa requests the new public URL; an emulator's API has none (a rehearsal)
        "touch": app in WEB_APPS and not env.get("AWS_ENDPOINT_URL"),
    })
    variables = {
        "STAGE": stage,
        "SSM_PARAMETER_PATH": parameter_path(app, stage),
        **{k: v for k, v in sorted(outputs.items()) if _RUNTIME_OUTPUT.match(k)},
        "ANALYTICS_FUNCTION": lambda_name("analytics", stage),
    }
    if app in WEB_APPS:
        variables["COGNITO_USERPOOL_ID"] = outputs.get("COGNITO_USERPOOL_ID", "")
        variables["COGNITO_APP_CLIENT_ID"] = outputs.get(f"COGNITO_CLIENT_ID_{app.upper()}", "")
    rendered["environment_variables"] = variables
    events = []
    for entry in local.get("events") or []:
        entry = json.loads(json.dumps(entry))
        if "event_source" in entry:
            entry["event_source"]["arn"] = _arn(entry["event_source"]["arn"], stage, account_id, region, outputs)
        events.append(entry)
    if events:
        rendered["events"] = events
    if local.get("layers") and not env.get("AWS_ENDPOINT_URL"):  # AWS's public layers: an emulator has none
        rendered["layers"] = [_arn(layer, stage, layer.split(":")[4], region, outputs) for layer in local["layers"]]
    if app in VPC_APPS:
        subnets, groups = _split(env.get("VPC_SUBNET_IDS")), _split(env.get("VPC_SECURITY_GROUP_IDS"))
        if subnets and groups:
            rendered["vpc_config"] = {"SubnetIds": subnets, "SecurityGroupIds": groups}
        elif strict:
            raise MissingVariable(f"{app} reaches RDS in a VPC: set VPC_SUBNET_IDS and VPC_SECURITY_GROUP_IDS")
    return rendered


def render(stage: str, *, account_id: str, region: str | None = None, outputs: Mapping[str, str] | None = None,
           env: Mapping[str, str] | None = None, strict: bool = False, path: Path = SETTINGS_FILE) -> dict:
    """Every app's `<app>_<stage>` Zappa stage, complete (no `extends`: Zappa's is a shallow merge)."""
    if stage == LOCAL or not re.fullmatch(r"[a-z][a-z0-9]{1,15}", stage):
        raise ValueError(f"stage must be a short lowercase name other than {LOCAL!r}, not {stage!r}")
    env = os.environ if env is None else env
    locals_ = local_stages(path)
    region = region or env.get("AWS_REGION") or next(iter(locals_.values()))["aws_region"]
    return {f"{app}_{stage}": render_stage(app, local, stage, account_id=account_id, region=region,
                                           outputs=outputs or {}, env=env, strict=strict)
            for app, local in locals_.items()}


def rendered_path(stage: str) -> Path:
    return LOCAL_DIR / "deploy" / f"zappa_settings.{stage}.json"


def write(stage: str, **kwargs) -> Path:
    """Render `stage` and write it where `zappa -s` and the wiring read it."""
    path = rendered_path(stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(render(stage, **kwargs), indent=2, sort_keys=True) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.tools.deploy render", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--account-id", help="default: the caller's account (sts)")
    parser.add_argument("--outputs", type=Path, help="provisioning outputs JSON (default: the stage's outputs file)")
    args = parser.parse_args(argv)
    from shared.platform.aws import client
    from shared.platform.settings import outputs_path

    account_id = args.account_id or client("sts").get_caller_identity()["Account"]
    outputs_file = args.outputs or outputs_path(args.stage)
    outputs = json.loads(outputs_file.read_text()) if outputs_file.is_file() else {}
    print(write(args.stage, account_id=account_id, outputs=outputs))
    return 0
