"""`make deploy` and `make smoke`, on the emulator: secrets in SSM, the app URLs the pipeline forwards to,
the event source mappings Zappa cannot make, and the smoke checks against served apps."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from shared.platform.aws import client
from shared.tools import provision
from shared.tools.deploy import release, stages
from shared.tools.runner import SqsSource, StreamSource, load_event_sources


@pytest.fixture
def stage_name(resources):
    """A stage of its own for the SSM tests (parameters outlive a test on the session's emulator)."""
    import uuid

    return "t" + uuid.uuid4().hex[:8]


def test_secrets_are_generated_once_shared_where_they_must_be_and_kept(stage_name):
    env = {"DATABASE_URL_REQSYS": "mysql+pymysql://req@db/reqsys", "DATABASE_URL_CHILDSYS": "mysql+pymysql://c@db/cs"}
    changes = release.ensure_secrets(stage_name, env)
    assert len(changes) == 3 + 3 + 2

    def value(app: str, name: str) -> str:
        return release._parameter(stages.parameter_path(app, stage_name) + name)

    keys = {value(app, "SECRET_KEY") for app in ("reqsys", "childsys", "taskapp")}
    assert len(keys) == 3 and all(len(key) >= 32 for key in keys)  # one per app, long enough for check_production
    sync = {value(app, "SYNC_SECRET") for app in ("reqsys", "childsys", "pipeline")}
    assert len(sync) == 1  # the forward handler signs what the apps verify
    assert value("reqsys", "DATABASE_URL") == env["DATABASE_URL_REQSYS"]
    assert value("taskapp", "DATABASE_URL") is None and value("pipeline", "SECRET_KEY") is None
    parameter = client("ssm").get_parameter(Name=f"/daycare/{stage_name}/reqsys/SECRET_KEY")["Parameter"]
    assert parameter["Type"] == "SecureString"

    # a second deploy, without the database secrets in CI, changes nothing and keeps every value
    before = {app: value(app, "SECRET_KEY") for app in ("reqsys", "childsys", "taskapp")}
    assert release.ensure_secrets(stage_name, {}) == []
    assert before == {app: value(app, "SECRET_KEY") for app in ("reqsys", "childsys", "taskapp")}


def test_a_first_deploy_without_the_database_urls_is_refused_naming_them(stage_name):
    with pytest.raises(SystemExit, match="DATABASE_URL_REQSYS, DATABASE_URL_CHILDSYS"):
        release.ensure_secrets(stage_name, {})
    with pytest.raises(SystemExit, match="mysql"):
        release.ensure_secrets(stage_name, {"DATABASE_URL_REQSYS": "sqlite:///x.db", "DATABASE_URL_CHILDSYS": "x"})


def test_the_pipeline_learns_the_apps_urls_from_their_stacks(stage_name):
    cloudformation = client("cloudformation")
    ids = {}
    for app in ("reqsys", "childsys"):
        template = {"Resources": {"Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": app}}}}
        cloudformation.create_stack(StackName=stages.lambda_name(app, stage_name), TemplateBody=json.dumps(template))
        ids[app] = cloudformation.describe_stack_resource(
            StackName=stages.lambda_name(app, stage_name), LogicalResourceId="Api")["StackResourceDetail"][
            "PhysicalResourceId"]

    assert len(release.publish_app_urls(stage_name)) == 2
    url = release._parameter(f"/daycare/{stage_name}/pipeline/CHILDSYS_URL")
    assert url == f"https://{ids['childsys']}.execute-api.ap-northeast-2.amazonaws.com/childsys_{stage_name}"
    assert release.publish_app_urls(stage_name) == []
    assert release.api_url("taskapp", stage_name) is None  # not deployed: the smoke test says so


def _function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return None\n")
    return buffer.getvalue()


def test_wiring_makes_every_mapping_zappa_cannot(own_emulator, tmp_path, monkeypatch):
    from shared.tools.deploy import canary

    stage = "wiring"
    outputs = provision.apply(stage).outputs
    monkeypatch.setattr(stages, "LOCAL_DIR", tmp_path)
    path = stages.write(stage, account_id="123456789012", outputs=outputs, env={})
    iam, lam = client("iam"), client("lambda")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "lambda.amazonaws.com"}}]}
    role = iam.create_role(RoleName="wiring-test", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    sources = [s for s in load_event_sources(path, env=stage) if isinstance(s, SqsSource | StreamSource)]
    for name in {s.lambda_name for s in sources}:
        lam.create_function(FunctionName=name, Runtime="python3.13", Role=role, Handler="handler.lambda_handler",
                            Code={"ZipFile": _function_zip()})
    # as `zappa deploy` would leave a queue mapping: on the unqualified function (code no canary released),
    # without ReportBatchItemFailures (failures would be ignored)
    email = next(s for s in sources if s.arn.endswith("-email"))
    lam.create_event_source_mapping(FunctionName=email.lambda_name, EventSourceArn=email.arn, BatchSize=10)
    failures = release.mapping_failures(stage)
    assert any("-email" in failure and "bypasses the alias live" in failure for failure in failures)

    settings = json.loads(path.read_text())
    changes = [c for app in ("pipeline", "taskapp") for c in canary.wire_alias(stage, app, settings[f"{app}_{stage}"])]
    assert f"removed mapping {email.arn} -> {email.lambda_name} (unqualified)" in changes
    assert f"created mapping {email.arn} -> {email.lambda_name}:live" in changes
    stream = next(s for s in sources if isinstance(s, StreamSource))
    mapping = lam.list_event_source_mappings(FunctionName=f"{stream.lambda_name}:live",
                                             EventSourceArn=stream.arn)["EventSourceMappings"]
    assert len(mapping) == 1 and mapping[0]["StartingPosition"] == "TRIM_HORIZON"
    assert mapping[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert release.mapping_failures(stage) == []
    # a re-deploy changes nothing
    again = [c for app in ("pipeline", "taskapp") for c in canary.wire_alias(stage, app, settings[f"{app}_{stage}"])]
    assert again == []


def test_the_database_tiers_urls_need_no_ci_secret(stage_name):
    urls = {"reqsys": "mysql+pymysql://reqsys:pw@p.proxy-x.rds.amazonaws.com:3306/reqsys?ssl_ca=/ca",
            "childsys": "mysql+pymysql://childsys:pw@p.proxy-x.rds.amazonaws.com:3306/childsys?ssl_ca=/ca"}
    changes = release.ensure_secrets(stage_name, {}, urls)
    assert f"set parameter /daycare/{stage_name}/reqsys/DATABASE_URL" in changes
    assert release._parameter(f"/daycare/{stage_name}/childsys/DATABASE_URL") == urls["childsys"]
    assert release.ensure_secrets(stage_name, {}, urls) == []


def test_zappa_deploys_without_events_or_keep_warm_so_nothing_reaches_unreleased_code():
    from shared.tools.deploy import canary

    rendered = {"reqsys_dev": {"keep_warm": True, "events": [{"function": "reqsys.relay.handler",
                                                              "expression": "rate(1 minute)"}], "app_function": "x"}}
    assert canary.deploy_settings(rendered) == {"reqsys_dev": {"keep_warm": False, "events": [], "app_function": "x"}}
    assert canary.schedules("reqsys", "dev", rendered["reqsys_dev"]) == {
        "daycare-reqsys-dev-reqsys.relay.handler": "rate(1 minute)",
        "daycare-reqsys-dev-zappa-keep-warm-handler.keep_warm_callback": "rate(4 minutes)"}


@pytest.fixture
def served(make_app, live_server):
    return {app: live_server(make_app(app)) for app in release.WEB_APPS}


def test_smoke_passes_against_working_apps(served):
    assert release.smoke(served) == []


def test_smoke_fails_when_an_app_is_not_what_it_should_be(served):
    wrong = {**served, "taskapp": served["reqsys"]}  # taskapp's URL answering with another app
    failures = release.smoke(wrong)
    assert failures and all("/api/tasks" in failure for failure in failures)
