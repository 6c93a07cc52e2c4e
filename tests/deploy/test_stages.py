"""The deployed stages are rendered from the one wiring list (the `*_local` stages) for a real account,
and the functions read their secrets from SSM at cold start."""

from __future__ import annotations

import json

import pytest

from shared.platform import settings as settings_module
from shared.platform.settings import Settings
from shared.tools.deploy import stages
from shared.tools.runner import load_event_sources

ACCOUNT = "210987654321"
REGION = "eu-west-1"
STREAM = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/daycare-prod-events/stream/2026-11-23T10:00:00.000"
OUTPUTS = {
    "EVENTS_TABLE": "daycare-prod-events",
    "EVENTS_TABLE_STREAM_ARN": STREAM,
    "EMAIL_QUEUE_URL": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/daycare-prod-email",
    "EMAIL_QUEUE_ARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:daycare-prod-email",
    "UPLOADS_BUCKET": f"daycare-prod-{ACCOUNT}-uploads",
    "COGNITO_USERPOOL_ID": f"{REGION}_Pool",
    "COGNITO_CLIENT_ID_REQSYS": "reqsys-client",
    "COGNITO_CLIENT_ID_TASKAPP": "taskapp-client",
}
CI = {"VPC_SUBNET_IDS": "subnet-a, subnet-b", "VPC_SECURITY_GROUP_IDS": "sg-1", "ZAPPA_BUCKET": "ci-bucket"}


def rendered(**kwargs) -> dict:
    kwargs = {"account_id": ACCOUNT, "region": REGION, "outputs": OUTPUTS, "env": CI, **kwargs}
    return stages.render("prod", **kwargs)


def test_every_local_handler_is_wired_in_the_rendered_stage_with_the_accounts_arns(tmp_path):
    settings = rendered(strict=True)
    assert set(settings) == {f"{app}_prod" for app in ("reqsys", "childsys", "taskapp", "pipeline", "analytics")}
    path = tmp_path / "zappa_settings.json"
    path.write_text(json.dumps(settings))

    local = load_event_sources(env="local")
    deployed = load_event_sources(path, env="prod")
    assert [(s.function, type(s)) for s in deployed] == [(s.function, type(s)) for s in local]
    arns = [s.arn for s in deployed if hasattr(s, "arn")]
    assert arns and all(f":{REGION}:{ACCOUNT}:" in arn and "-local" not in arn for arn in arns)
    assert STREAM in arns  # Zappa routes by the exact ARN: the stream's, with its label, from provisioning
    assert f"arn:aws:sqs:{REGION}:{ACCOUNT}:daycare-prod-integrated-events.fifo" in arns
    assert {s.lambda_name for s in deployed} == {f"daycare-{app}-prod" for app in
                                                 ("reqsys", "childsys", "taskapp", "pipeline", "analytics")}


def test_functions_get_their_role_config_and_no_secret():
    settings = rendered()
    reqsys, pipeline = settings["reqsys_prod"], settings["pipeline_prod"]
    assert reqsys["role_arn"] == f"arn:aws:iam::{ACCOUNT}:role/daycare-prod-reqsys-lambda"
    assert reqsys["manage_roles"] is False and "extends" not in reqsys
    assert reqsys["s3_bucket"] == "ci-bucket" and reqsys["aws_region"] == REGION
    assert reqsys["vpc_config"] == {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]}
    assert "vpc_config" not in settings["taskapp_prod"]  # DynamoDB only: no VPC, no NAT needed
    env = reqsys["environment_variables"]
    assert env["STAGE"] == "prod" and env["SSM_PARAMETER_PATH"] == "/daycare/prod/reqsys/"
    assert env["COGNITO_APP_CLIENT_ID"] == "reqsys-client" and env["EMAIL_QUEUE_URL"] == OUTPUTS["EMAIL_QUEUE_URL"]
    assert "EMAIL_QUEUE_ARN" not in env
    assert not {"SECRET_KEY", "SYNC_SECRET", "DATABASE_URL"} & set(env)
    assert "COGNITO_APP_CLIENT_ID" not in pipeline["environment_variables"]
    assert settings["analytics_prod"]["layers"] == [
        f"arn:aws:lambda:{REGION}:336392948345:layer:AWSSDKPandas-Python313:15"]
    assert len(json.dumps(env)) < 4096  # Lambda's limit on a function's environment


def test_web_apps_start_from_a_snapshot_and_keep_warm_only_where_snap_start_is_turned_off(tmp_path):
    assert stages.runtime() == "python3.13"  # SnapStart for Python needs 3.12+
    snap = rendered()
    assert {name for name, stage in snap.items() if stage["snap_start"] == "PublishedVersions"} == {
        "reqsys_prod", "childsys_prod", "taskapp_prod"}  # the queue and schedule handlers have no one waiting
    assert not any(stage["keep_warm"] for stage in snap.values())  # a snapshot, not pings, hides the cold start
    # the app is built in Lambda's init, so the snapshot holds it (else each restore would build it again)
    assert {name for name, stage in snap.items()
            if stage.get("aws_environment_variables", {}).get("INSTANTIATE_LAMBDA_HANDLER_ON_IMPORT") == "true"
            } == {"reqsys_prod", "childsys_prod", "taskapp_prod"}
    off = rendered(env={**CI, "SNAP_START": "false"})
    assert {stage["snap_start"] for stage in off.values()} == {"None"}
    assert not any("aws_environment_variables" in stage for stage in off.values())
    assert {name for name, stage in off.items() if stage["keep_warm"]} == {"reqsys_prod", "childsys_prod",
                                                                          "taskapp_prod"}
    assert not any(stage["keep_warm"] for stage in rendered(env={**CI, "SNAP_START": "false",
                                                                 "KEEP_WARM": "false"}).values())
    local = json.loads(stages.SETTINGS_FILE.read_text())
    local["base"]["runtime"] = "python3.11"
    older = tmp_path / "zappa_settings.json"
    older.write_text(json.dumps(local))
    assert {stage["snap_start"] for stage in rendered(path=older).values()} == {"None"}  # no SnapStart before 3.12


def test_api_gateway_calls_the_released_alias_not_what_zappa_just_uploaded():
    settings = rendered()
    for app in ("reqsys", "childsys", "taskapp"):
        assert settings[f"{app}_prod"]["apigateway_lambda_qualifier"] == "live"
    assert "apigateway_lambda_qualifier" not in settings["pipeline_prod"]


def test_the_analytics_layer_is_built_for_the_functions_runtime():
    layer = rendered()["analytics_prod"]["layers"][0]
    assert f":layer:AWSSDKPandas-Python{stages.runtime().removeprefix('python').replace('.', '')}:" in layer


def test_a_deploy_without_vpc_ids_or_provisioning_is_refused_with_the_reason():
    with pytest.raises(stages.MissingVariable, match="VPC_SUBNET_IDS"):
        rendered(env={}, strict=True)
    assert "vpc_config" not in rendered(env={})["reqsys_prod"]  # packaging needs no VPC
    with pytest.raises(stages.MissingVariable, match="stream ARN"):
        rendered(outputs={})
    with pytest.raises(ValueError, match="stage"):
        stages.render("local", account_id=ACCOUNT)


@pytest.fixture
def parameters(aws_endpoint):
    from shared.platform.aws import client

    ssm = client("ssm")
    path = "/daycare/prod/reqsys/"
    values = {"SECRET_KEY": "k" * 48, "SYNC_SECRET": "s" * 48, "DATABASE_URL": "mysql+pymysql://app:pw@db/app"}
    for name, value in values.items():
        ssm.put_parameter(Name=path + name, Value=value, Type="SecureString", Overwrite=True)
    ssm.put_parameter(Name="/daycare/prod/childsys/DATABASE_URL", Value="mysql+pymysql://other@db/childsys",
                      Type="SecureString", Overwrite=True)
    settings_module._parameters.cache_clear()
    yield values
    settings_module._parameters.cache_clear()


def test_secrets_come_from_the_functions_own_ssm_path(parameters):
    pool = "ap-northeast-2_AbCdEfGhI"
    env = {"STAGE": "prod", "AWS_REGION": "ap-northeast-2", "SSM_PARAMETER_PATH": "/daycare/prod/reqsys/",
           "COGNITO_USERPOOL_ID": pool, "COGNITO_APP_CLIENT_ID": "client"}
    loaded = Settings.load("reqsys", env=env)
    assert loaded.secret_key == parameters["SECRET_KEY"]
    assert loaded.sync_secret == parameters["SYNC_SECRET"]
    assert loaded.database_url == parameters["DATABASE_URL"]  # its own, not childsys's
    loaded.check_production()  # starts: nothing unsafe

    overridden = Settings.load("reqsys", env={**env, "DATABASE_URL": "mysql+pymysql://explicit@db/x"})
    assert overridden.database_url == "mysql+pymysql://explicit@db/x"


def test_without_its_parameters_a_function_refuses_to_start(aws_endpoint):
    settings_module._parameters.cache_clear()
    env = {"STAGE": "prod", "AWS_REGION": "ap-northeast-2", "SSM_PARAMETER_PATH": "/daycare/nowhere/reqsys/",
           "COGNITO_USERPOOL_ID": "ap-northeast-2_X", "COGNITO_APP_CLIENT_ID": "client"}
    with pytest.raises(settings_module.UnsafeSettings, match="SECRET_KEY"):
        Settings.load("reqsys", env=env).check_production()
    settings_module._parameters.cache_clear()
