"""The AWS-only pipeline (shared/tools/deploy/pipeline.py) on the emulator: created once, then left alone."""

from __future__ import annotations

import fnmatch
import json
import uuid

import pytest

from shared.platform import aws
from shared.platform.settings import ROOT
from shared.tools.deploy import pipeline
from shared.tools.deploy.stages import MissingVariable
from shared.tools.provision import Result

CONNECTION = "arn:aws:codestar-connections:ap-northeast-2:123456789012:connection/0b3e7d1c-1111-2222-3333-444455556666"
ENV = {"PIPELINE_CONNECTION_ARN": CONNECTION, "PIPELINE_REPOSITORY": "agency/daycare",
       "VPC_SUBNET_IDS": "subnet-1,subnet-2", "VPC_SECURITY_GROUP_IDS": "sg-1", "SES_SENDER": "no-reply@agency.example"}


def new_stage() -> str:
    return f"p{uuid.uuid4().hex[:7]}"


def ensure(stage: str, env: dict | None = None) -> Result:
    result = Result()
    pipeline.ensure_pipeline(stage, result, env=ENV if env is None else env)
    return result


def names(stage: str) -> pipeline.Names:
    return pipeline.names(stage, aws.client("sts").get_caller_identity()["Account"])


def test_creates_everything_and_a_second_run_changes_nothing(aws_endpoint):
    stage = new_stage()
    n = names(stage)
    first = ensure(stage)
    assert first.changes == [
        f"created bucket {n.bucket}",
        f"set expiry of artifacts in {n.bucket}",
        f"created role {n.build_role}", f"set policy of role {n.build_role}",
        f"created role {n.pipeline_role}", f"set policy of role {n.pipeline_role}",
        f"created CodeBuild project {n.project}",
        f"created pipeline {n.pipeline}",
    ]
    assert first.outputs == {"PIPELINE_ARTIFACT_STORE": n.bucket, "PIPELINE_NAME": n.pipeline,
                             "PIPELINE_PROJECT": n.project}
    assert ensure(stage).changes == []

    s3 = aws.client("s3")
    assert s3.get_public_access_block(Bucket=n.bucket)["PublicAccessBlockConfiguration"]["BlockPublicPolicy"]
    rules = s3.get_bucket_lifecycle_configuration(Bucket=n.bucket)["Rules"]
    assert [r["Expiration"]["Days"] for r in rules] == [pipeline.ARTIFACT_DAYS]


def test_dev_goes_source_build_deploy_and_prod_waits_for_an_approval(aws_endpoint):
    dev = new_stage()
    ensure(dev)
    ensure("prod")
    codepipeline = aws.client("codepipeline")
    for stage, expected in ((dev, ["Source", "Build", "Deploy"]), ("prod", ["Source", "Build", "Approval", "Deploy"])):
        described = codepipeline.get_pipeline(name=names(stage).pipeline)["pipeline"]
        assert [s["name"] for s in described["stages"]] == expected
        actions = {s["name"]: s["actions"][0] for s in described["stages"]}
        assert actions["Source"]["actionTypeId"]["provider"] == "CodeStarSourceConnection"
        assert actions["Source"]["configuration"].items() >= {
            "ConnectionArn": CONNECTION, "FullRepositoryId": "agency/daycare", "BranchName": "main"}.items()
        for stage_name, step in (("Build", "build"), ("Deploy", "deploy")):
            action = actions[stage_name]
            assert action["actionTypeId"]["provider"] == "CodeBuild"
            assert action["configuration"]["ProjectName"] == names(stage).project
            assert json.loads(action["configuration"]["EnvironmentVariables"]) == [
                {"name": "PIPELINE_STEP", "value": step, "type": "PLAINTEXT"}]
            assert action["inputArtifacts"] == [{"name": "Source"}]  # the commit the Source stage fetched
        if "Approval" in actions:
            assert actions["Approval"]["actionTypeId"] == {"category": "Approval", "owner": "AWS",
                                                           "provider": "Manual", "version": "1"}
        assert described["artifactStore"] == {"type": "S3", "location": names(stage).bucket}


def test_the_project_runs_the_repositorys_buildspec_for_its_stage(aws_endpoint):
    stage = new_stage()
    ensure(stage)
    n = names(stage)
    project = aws.client("codebuild").batch_get_projects(names=[n.project])["projects"][0]
    assert project["source"]["type"] == "CODEPIPELINE"
    assert (ROOT / project["source"]["buildspec"]).is_file()
    assert project["environment"]["image"] == pipeline.BUILD_IMAGE
    assert project["environment"]["privilegedMode"] is False
    variables = {v["name"]: v["value"] for v in project["environment"]["environmentVariables"]}
    assert variables == {"STAGE": stage, "PIPELINE_STEP": "all", "VPC_SUBNET_IDS": "subnet-1,subnet-2",
                         "VPC_SECURITY_GROUP_IDS": "sg-1", "SES_SENDER": "no-reply@agency.example"}
    assert "PIPELINE_CONNECTION_ARN" not in variables and "DATABASE_URL_REQSYS" not in variables


def test_each_role_is_assumable_by_its_service_only(aws_endpoint):
    stage = new_stage()
    ensure(stage)
    n = names(stage)
    iam = aws.client("iam")
    account = aws.client("sts").get_caller_identity()["Account"]
    roles = ((n.build_role, "codebuild.amazonaws.com"), (n.pipeline_role, "codepipeline.amazonaws.com"))
    for role_name, service in roles:
        trust = pipeline._document(iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"])
        assert [(s["Principal"], s["Action"], s["Condition"]) for s in trust["Statement"]] == [
            ({"Service": service}, "sts:AssumeRole", {"StringEquals": {"aws:SourceAccount": account}})]
    project = aws.client("codebuild").batch_get_projects(names=[n.project])["projects"][0]
    assert project["serviceRole"] == iam.get_role(RoleName=n.build_role)["Role"]["Arn"]
    described = aws.client("codepipeline").get_pipeline(name=n.pipeline)["pipeline"]
    assert described["roleArn"] == iam.get_role(RoleName=n.pipeline_role)["Role"]["Arn"]
    policy = pipeline._document(iam.get_role_policy(RoleName=n.pipeline_role, PolicyName="least-privilege")[
        "PolicyDocument"])
    allowed = {action: statement["Resource"] for statement in policy["Statement"] for action in statement["Action"]}
    assert allowed["codestar-connections:UseConnection"] == [CONNECTION]
    assert allowed["codebuild:StartBuild"] == [project["arn"]]


def test_drift_is_put_back(aws_endpoint):
    stage = new_stage()
    ensure(stage)
    n = names(stage)
    iam = aws.client("iam")
    iam.update_assume_role_policy(RoleName=n.pipeline_role, PolicyDocument=json.dumps(
        pipeline.trust_policy("ec2.amazonaws.com", "123456789012")))
    iam.delete_role_policy(RoleName=n.build_role, PolicyName="least-privilege")
    moved = ensure(stage, {**ENV, "PIPELINE_BRANCH": "release"})
    assert moved.changes == [f"set policy of role {n.build_role}", f"updated trust of role {n.pipeline_role}",
                             f"updated pipeline {n.pipeline}"]
    described = aws.client("codepipeline").get_pipeline(name=n.pipeline)["pipeline"]
    assert described["stages"][0]["actions"][0]["configuration"]["BranchName"] == "release"
    assert ensure(stage, {**ENV, "PIPELINE_BRANCH": "release"}).changes == []


def test_without_the_ci_variables_nothing_is_made(aws_endpoint):
    stage = new_stage()
    for env in ({}, {"PIPELINE_CONNECTION_ARN": CONNECTION}, {**ENV, "PIPELINE_REPOSITORY": "daycare"}):
        result = Result()
        with pytest.raises(MissingVariable, match="PIPELINE_REPOSITORY"):
            pipeline.ensure_pipeline(stage, result, env=env)
        assert result.changes == []
    assert aws.client("codebuild").batch_get_projects(names=[names(stage).project])["projects"] == []


def test_command_line(aws_endpoint, monkeypatch, capsys):
    stage = new_stage()
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    assert pipeline.main(["--stage", stage]) == 0
    out = capsys.readouterr().out
    assert f"created pipeline {names(stage).pipeline}" in out and f"PIPELINE_NAME  {names(stage).pipeline}" in out
    assert pipeline.main(["--stage", stage]) == 0
    assert "no changes" in capsys.readouterr().out
    monkeypatch.delenv("PIPELINE_CONNECTION_ARN")
    with pytest.raises(SystemExit) as exit_:
        pipeline.main(["--stage", stage])
    assert exit_.value.code == 2


# --- the CodeBuild role's policy ------------------------------------------------------------------


def _allows_action(policy: dict, action: str) -> bool:
    """Whether some Allow statement names the action (whatever the resource)."""
    allowed = [pattern for statement in policy["Statement"] if statement["Effect"] == "Allow"
               for pattern in statement["Action"]]
    return any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in allowed)


def _permitted(policy: dict, action: str, resource: str, conditions: dict | None = None) -> bool:
    """moto's IAM policy evaluator: the action on that resource (with those request conditions). Statement by
    statement: moto reads an Allow whose condition does not match as a Deny, where AWS reads it as no opinion
    (these policies have no Deny)."""
    from moto.iam.access_control import IAMPolicy

    assert all(statement["Effect"] == "Allow" for statement in policy["Statement"])
    return any(IAMPolicy(json.dumps({"Version": policy["Version"], "Statement": [statement]})).is_action_permitted(
        action, resource, None, conditions).name == "PERMITTED" for statement in policy["Statement"])


def test_the_deploy_role_may_make_every_call_provisioning_makes(aws_endpoint, monkeypatch):
    """Every AWS operation `make deploy`'s provisioning and secrets steps perform (recorded on the emulator)
    is an action the CodeBuild role allows: a new kind of resource in shared/tools/provision.py fails here first."""
    from botocore.client import BaseClient

    from shared.tools import provision
    from shared.tools.deploy import release

    calls: set[str] = set()
    original = BaseClient._make_api_call

    def record(self, operation, params):
        calls.add(f"{self.meta.service_model.signing_name}:{operation}")
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    stage = new_stage()
    provision.apply(stage)
    release.ensure_secrets(stage, {f"DATABASE_URL_{app}": f"mysql+pymysql://app:pw@db.internal/{app.lower()}"
                                   for app in ("REQSYS", "CHILDSYS")})
    assert release.api_url("reqsys", stage) is None  # not deployed: the lookup is made all the same
    assert {call.split(":")[0] for call in calls} >= {"sqs", "dynamodb", "events", "sns", "s3", "cognito-idp",
                                                       "ssm", "cloudformation"}
    account = aws.client("sts").get_caller_identity()["Account"]
    policy = pipeline.build_policy(stage, account, aws.region(), names(stage))
    free = {"sts:GetCallerIdentity"}  # needs no permission
    assert sorted(call for call in calls - free if not _allows_action(policy, call)) == []


def test_the_deploy_role_cannot_change_its_own_permissions():
    account, region = "111122223333", "ap-northeast-2"
    n = pipeline.names("prod", account)
    policy = pipeline.build_policy("prod", account, region, n)
    lambda_service = {"iam:PassedToService": "lambda.amazonaws.com"}
    for role in (n.build_role, n.pipeline_role, "daycare-dev-reqsys-lambda"):
        arn = f"arn:aws:iam::{account}:role/{role}"
        for action in ("iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:CreateRole"):
            assert not _permitted(policy, action, arn), (action, role)
        assert not _permitted(policy, "iam:PassRole", arn, lambda_service), role
    mine = f"arn:aws:iam::{account}:role/daycare-prod-reqsys-lambda"
    assert _permitted(policy, "iam:PutRolePolicy", mine)
    assert _permitted(policy, "iam:PassRole", mine, lambda_service)
    assert not _permitted(policy, "iam:PassRole", mine, {"iam:PassedToService": "ec2.amazonaws.com"})
    # another stage's resources are out of reach
    stage_resources = {
        "sqs:SendMessage": "arn:aws:sqs:{r}:{a}:daycare-{s}-email",
        "lambda:UpdateFunctionCode": "arn:aws:lambda:{r}:{a}:function:daycare-reqsys-{s}",
        "ssm:PutParameter": "arn:aws:ssm:{r}:{a}:parameter/daycare/{s}/reqsys/DATABASE_URL",
        "s3:PutObject": "arn:aws:s3:::daycare-{s}-{a}-uploads/x",
        "cloudformation:UpdateStack": "arn:aws:cloudformation:{r}:{a}:stack/daycare-pipeline-{s}/1",
    }
    for action, resource in stage_resources.items():
        assert _permitted(policy, action, resource.format(r=region, a=account, s="prod")), action
        assert not _permitted(policy, action, resource.format(r=region, a=account, s="dev")), action


def test_the_deploy_role_may_make_every_call_of_the_release_and_database_tiers(own_emulator, monkeypatch, tmp_path):
    """The same for the tiers this deploy adds: alarms, topic, CodeDeploy, the hook, RDS, its secrets and proxy,
    and the alias wiring (on a function of the stage, as Zappa leaves it). Its own emulator: a Lambda function."""
    import io
    import zipfile

    from botocore.client import BaseClient

    from shared.tools import provision
    from shared.tools.deploy import canary, database, iam, stages

    calls: set[str] = set()
    original = BaseClient._make_api_call

    def record(self, operation, params):
        calls.add(f"{self.meta.service_model.signing_name}:{operation}")
        return original(self, operation, params)

    ec2 = aws.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.30.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)]
    group = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc_id)["GroupId"]
    stage = new_stage()
    monkeypatch.setattr(stages, "LOCAL_DIR", tmp_path)
    result = provision.apply(stage)
    iam.ensure_roles(stage, result)
    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    database.ensure_database_tier(stage, {"VPC_SUBNET_IDS": ",".join(subnets), "VPC_SECURITY_GROUP_IDS": group},
                                  result)
    canary.ensure_release_tier(stage, result, {"OPERATOR_EMAIL": "ops@agency.example"})
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return None\n")
    aws.client("lambda").create_function(
        FunctionName=stages.lambda_name("pipeline", stage), Runtime="python3.13", Handler="handler.lambda_handler",
        Role=result.outputs["PIPELINE_ROLE_ARN"], Code={"ZipFile": package.getvalue()})
    path = stages.write(stage, account_id="123456789012", outputs=result.outputs, env={})
    canary.wire_alias(stage, "pipeline", json.loads(path.read_text())[f"pipeline_{stage}"])
    assert {call.split(":")[0] for call in calls} >= {"rds", "secretsmanager", "monitoring", "codedeploy", "lambda",
                                                       "iam", "sns"}
    account = aws.client("sts").get_caller_identity()["Account"]
    policy = pipeline.build_policy(stage, account, aws.region(), names(stage))
    # CloudWatch signs as "monitoring"; IAM's actions are cloudwatch:*
    wanted = {call.replace("monitoring:", "cloudwatch:") for call in calls} - {"sts:GetCallerIdentity"}
    assert sorted(call for call in wanted if not _allows_action(policy, call)) == []


def test_the_release_roles_go_only_to_their_service():
    account, region = "111122223333", "ap-northeast-2"
    policy = pipeline.build_policy("prod", account, region, pipeline.names("prod", account))
    for role, service in (("codedeploy", "codedeploy"), ("db-proxy", "rds"), ("release-hook", "lambda")):
        arn = f"arn:aws:iam::{account}:role/daycare-prod-{role}"
        assert _permitted(policy, "iam:PassRole", arn, {"iam:PassedToService": f"{service}.amazonaws.com"}), role
        assert not _permitted(policy, "iam:PassRole", arn, {"iam:PassedToService": "ec2.amazonaws.com"}), role
        assert not _permitted(policy, "iam:PutRolePolicy", arn.replace("prod", "dev")), role
    assert not _permitted(policy, "iam:PassRole", f"arn:aws:iam::{account}:role/daycare-prod-codedeploy",
                          {"iam:PassedToService": "lambda.amazonaws.com"})
