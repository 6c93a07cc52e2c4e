"""The AWS-only CI/CD path: a CodePipeline per stage, `make deploy STAGE=… PIPELINE=1` (or
`python -m shared.tools.deploy pipeline --stage STAGE`).

    Source (GitHub through a CodeStar connection) → Build (CodeBuild: lint, test, package)
        → Approval (prod only: a manual approval action) → Deploy (CodeBuild: make deploy)

Both CodeBuild actions run the one project `daycare-<stage>-build` with .ci/buildspec.yml; each action sets
PIPELINE_STEP (build or deploy), so the tests that passed are those of the commit that deploys. Idempotent
like shared/tools/provision.py: each resource is looked up by name, created when missing, updated where it differs,
and every change is recorded in `Result.changes`; a second run changes nothing.

CI variables:
    PIPELINE_CONNECTION_ARN   a CodeStar (CodeConnections) connection to GitHub, made once in the console
                              (the GitHub app's authorisation cannot be done through the API)
    PIPELINE_REPOSITORY       "owner/name" of the repository
    PIPELINE_BRANCH           the branch that deploys (default main)
and the deploy settings the project passes on to `make deploy`: ZAPPA_BUCKET, VPC_SUBNET_IDS,
VPC_SECURITY_GROUP_IDS, SES_SENDER, KEEP_WARM (those set when this runs).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shared.platform.aws import client, region
from shared.tools.deploy.stages import MissingVariable
from shared.tools.provision import Bucket, Result, _contains, ensure_bucket

BUILD_IMAGE = "aws/codebuild/standard:7.0"  # Ubuntu 22.04 with Python 3.11 (.ci/buildspec.yml)
BUILD_COMPUTE = "BUILD_GENERAL1_MEDIUM"  # 4 vCPU, 7 GB: the test suite with MariaDB and Chromium
BUILD_TIMEOUT_MINUTES = 60
BUILDSPEC = ".ci/buildspec.yml"
ARTIFACT_DAYS = 30  # pipeline artifacts (source zips, packages) are only needed while a run is under way
DEPLOY_SETTINGS = ("ZAPPA_BUCKET", "VPC_SUBNET_IDS", "VPC_SECURITY_GROUP_IDS", "SES_SENDER", "KEEP_WARM",
                   "OPERATOR_EMAIL", "DATABASE_TIER", "DB_INSTANCE_IDENTIFIER")
APPROVAL_STAGES = ("prod",)
POLICY_NAME = "least-privilege"


@dataclass(frozen=True)
class Names:
    pipeline: str
    project: str
    bucket: str
    build_role: str
    pipeline_role: str


def names(stage: str, account_id: str) -> Names:
    # The roles do not end in -lambda: the deploy role may manage daycare-<stage>-*-lambda roles, never these.
    return Names(pipeline=f"daycare-{stage}", project=f"daycare-{stage}-build",
                 bucket=f"daycare-{stage}-{account_id}-pipeline", build_role=f"daycare-{stage}-codebuild",
                 pipeline_role=f"daycare-{stage}-codepipeline")


# --- policies ---------------------------------------------------------------------------------------


def _allow(sid: str, actions: list[str], resources: list[str], condition: dict | None = None) -> dict:
    statement = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def trust_policy(service: str, account_id: str) -> dict:
    """Only `service`, acting for this account (no confused deputy), may assume the role."""
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
    }]}


def build_policy(stage: str, account_id: str, region_name: str, n: Names, zappa_bucket: str | None = None) -> dict:
    """The CodeBuild project's role: its logs, its reports, the artifact bucket, and what `make deploy` does.

    The deploy part is scoped by name to the stage's resources (daycare-<stage>-*, the functions and stacks
    daycare-<app>-<stage>, /daycare/<stage>/ parameters). Where AWS picks the id (API Gateway, the Cognito
    pool, event source mappings, SES identities), the actions are granted on every resource of that kind
    in the account. IAM writes reach only the functions' roles (daycare-<stage>-*-lambda), not this role.
    """
    arn = f"arn:aws:{{}}:{region_name}:{account_id}:{{}}"
    prefix = f"daycare-{stage}-"
    function = arn.format("lambda", f"function:daycare-*-{stage}")
    buckets = [f"arn:aws:s3:::{prefix}*", f"arn:aws:s3:::{prefix}*/*"]
    if zappa_bucket and not zappa_bucket.startswith(prefix):
        buckets += [f"arn:aws:s3:::{zappa_bucket}", f"arn:aws:s3:::{zappa_bucket}/*"]
    glue_database = f"daycare_{stage}_analytics"
    function_roles = f"arn:aws:iam::{account_id}:role/{prefix}*-lambda"
    log_group = arn.format("logs", f"log-group:/aws/codebuild/{n.project}")
    api_stages = f"arn:aws:apigateway:{region_name}::/restapis/*/stages/*"
    release_roles = [f"arn:aws:iam::{account_id}:role/{prefix}{name}" for name in ("codedeploy", "release-hook",
                                                                                   "db-proxy")]
    hook = arn.format("lambda", f"function:{prefix}release-hook")
    return {"Version": "2012-10-17", "Statement": [
        # the build itself
        _allow("Logs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
               [log_group, f"{log_group}:*"]),
        _allow("Reports", ["codebuild:CreateReportGroup", "codebuild:CreateReport", "codebuild:UpdateReport",
                           "codebuild:BatchPutTestCases"], [arn.format("codebuild", f"report-group/{n.project}-*")]),
        _allow("Artifacts", ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"], [f"arn:aws:s3:::{n.bucket}/*"]),
        _allow("ArtifactBucket", ["s3:GetBucketAcl", "s3:GetBucketLocation"], [f"arn:aws:s3:::{n.bucket}"]),
        # make deploy: provisioning (shared/tools/provision.py), by name
        _allow("Queues", ["sqs:*"], [arn.format("sqs", f"{prefix}*")]),
        _allow("Tables", ["dynamodb:*"], [arn.format("dynamodb", f"table/{prefix}*"),
                                          arn.format("dynamodb", f"table/{prefix}*/*")]),
        _allow("Topics", ["sns:*"], [arn.format("sns", f"{prefix}*")]),
        _allow("Events", ["events:*"], [arn.format("events", f"event-bus/{prefix}*"),
                                        arn.format("events", f"rule/{prefix}*/*"),
                                        # Zappa's schedule and keep-warm rules: <function name>-…
                                        arn.format("events", f"rule/daycare-*-{stage}-*")]),
        _allow("Buckets", ["s3:*"], buckets),
        _allow("Analytics", ["glue:*"], [arn.format("glue", "catalog"), arn.format("glue", f"database/{glue_database}"),
                                         arn.format("glue", f"table/{glue_database}/*")]),
        _allow("Workgroup", ["athena:*"], [arn.format("athena", f"workgroup/{prefix}*")]),
        # secrets in SSM (SecureStrings under the AWS managed key: no KMS grant needed)
        _allow("Parameters", ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath", "ssm:PutParameter"],
               [arn.format("ssm", f"parameter/daycare/{stage}/*")]),
        # the functions' own roles (shared/tools/deploy/iam.py), handed only to Lambda
        _allow("FunctionRoles", ["iam:GetRole", "iam:CreateRole", "iam:UpdateAssumeRolePolicy", "iam:TagRole",
                                 "iam:GetRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy",
                                 "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:DetachRolePolicy"],
               [function_roles]),
        _allow("PassFunctionRoles", ["iam:PassRole"], [function_roles],
               {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}),
        # the release tier (shared/tools/deploy/canary.py) and the database tier (database.py): their roles,
        # each handed only to its service
        _allow("ReleaseRoles", ["iam:GetRole", "iam:CreateRole", "iam:GetRolePolicy", "iam:PutRolePolicy"],
               release_roles),
        *(_allow(f"Pass{sid}", ["iam:PassRole"], [role], {"StringEquals": {"iam:PassedToService": service}})
          for sid, role, service in zip(("CodeDeployRole", "HookRole", "ProxyRole"), release_roles,
                                        ("codedeploy.amazonaws.com", "lambda.amazonaws.com", "rds.amazonaws.com"),
                                        strict=True)),
        _allow("Alarms", ["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"],
               [arn.format("cloudwatch", f"alarm:{prefix}*"), arn.format("cloudwatch", f"alarm:daycare-*-{stage}-*")]),
        _allow("Releases", ["codedeploy:*"], [arn.format("codedeploy", f"application:daycare-{stage}"),
                                              arn.format("codedeploy", f"deploymentgroup:daycare-{stage}/*"),
                                              arn.format("codedeploy", "deploymentconfig:*")]),
        _allow("DatabaseLogins", ["secretsmanager:*"], [arn.format("secretsmanager", f"secret:daycare/{stage}/db/*")]),
        _allow("Database", ["rds:*"], [arn.format("rds", f"db:{prefix}*"), arn.format("rds", f"subgrp:{prefix}*"),
                                       arn.format("rds", f"pg:{prefix}*")]),
        # the proxy's ids (prx-…) and an adopted instance's name are not ours to choose
        _allow("DatabaseProxy", ["rds:CreateDBProxy", "rds:ModifyDBProxy", "rds:ModifyDBProxyTargetGroup",
                                 "rds:RegisterDBProxyTargets", "rds:AddTagsToResource"],
               [arn.format("rds", "db-proxy:*"), arn.format("rds", "target-group:*"), arn.format("rds", "db:*")]),
        # zappa deploy / update: the functions, their CloudFormation stacks (API Gateway), their layers; the hook
        _allow("Functions", ["lambda:*"], [function, f"{function}:*", hook, f"{hook}:*"]),
        _allow("Stacks", ["cloudformation:*"], [arn.format("cloudformation", f"stack/daycare-*-{stage}/*")]),
        _allow("Layers", ["lambda:GetLayerVersion"], [f"arn:aws:lambda:{region_name}:*:layer:*:*"]),
        # ids chosen by AWS, so not scoped by name
        _allow("Apis", ["apigateway:GET", "apigateway:POST", "apigateway:PUT", "apigateway:PATCH",
                        "apigateway:DELETE"], [f"arn:aws:apigateway:{region_name}::/*"]),
        _allow("UserPool", ["cognito-idp:*"], [arn.format("cognito-idp", "userpool/*")]),
        # the sign-in rate limit (shared/tools/provision.py ensure_sign_in_limit, protect_apis): the stage's web
        # ACL, put in front of the web apps' API Gateway stages
        _allow("SignInLimit", ["wafv2:CreateWebACL", "wafv2:GetWebACL", "wafv2:UpdateWebACL", "wafv2:AssociateWebACL",
                               "wafv2:GetWebACLForResource"],
               [arn.format("wafv2", f"regional/webacl/{prefix}sign-in/*"), api_stages]),
        _allow("SignInLimitStages", ["apigateway:SetWebACL"], [api_stages]),
        _allow("Listings", ["cognito-idp:ListUserPools", "wafv2:ListWebACLs", "sns:ListTopics", "athena:ListWorkGroups",
                            "events:ListRuleNamesByTarget", "ses:ListIdentities", "ses:VerifyEmailIdentity",
                            "ses:GetIdentityVerificationAttributes",
                            # the wiring Zappa cannot do (shared/tools/provision.py wire_event_sources)
                            "lambda:CreateEventSourceMapping", "lambda:ListEventSourceMappings",
                            "lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping",
                            "lambda:DeleteEventSourceMapping",
                            # the release and database tiers: calls without resource-level permissions
                            "cloudwatch:DescribeAlarms", "codedeploy:GetDeployment", "rds:Describe*",
                            "secretsmanager:CreateSecret",
                            # Lambda checks these of the caller for a function in the VPC (reqsys, childsys)
                            "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs"], ["*"]),
    ]}


def pipeline_policy(account_id: str, region_name: str, n: Names, connection_arn: str) -> dict:
    """The pipeline's role: the artifact bucket, starting its CodeBuild project, using the GitHub connection."""
    return {"Version": "2012-10-17", "Statement": [
        _allow("Artifacts", ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"], [f"arn:aws:s3:::{n.bucket}/*"]),
        _allow("ArtifactBucket", ["s3:GetBucketVersioning", "s3:GetBucketLocation", "s3:ListBucket"],
               [f"arn:aws:s3:::{n.bucket}"]),
        _allow("Build", ["codebuild:StartBuild", "codebuild:BatchGetBuilds", "codebuild:StopBuild"],
               [f"arn:aws:codebuild:{region_name}:{account_id}:project/{n.project}"]),
        # the service was renamed CodeConnections; connections made before answer to either prefix
        _allow("Source", ["codestar-connections:UseConnection", "codeconnections:UseConnection"], [connection_arn]),
    ]}


# --- resources ----------------------------------------------------------------------------------------


def _ensure_role(name: str, service: str, account_id: str, policy: dict, result: Result) -> tuple[str, bool]:
    """The role `name`, assumable by `service` only, with exactly `policy` inline. (ARN, whether created)."""
    iam = client("iam")
    trust = trust_policy(service, account_id)
    created = False
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                               Description=f"{service.split('.')[0]} for the daycare pipeline")["Role"]
        result.changes.append(f"created role {name}")
        created = True
    else:
        if _document(role["AssumeRolePolicyDocument"]) != trust:
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
            result.changes.append(f"updated trust of role {name}")
    try:
        current = _document(iam.get_role_policy(RoleName=name, PolicyName=POLICY_NAME)["PolicyDocument"])
    except iam.exceptions.NoSuchEntityException:
        current = None
    if current != policy:
        iam.put_role_policy(RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy))
        result.changes.append(f"{'set' if current is None else 'updated'} policy of role {name}")
    return role["Arn"], created


def _document(value) -> dict:
    """IAM hands policies back as a dict or as (URL-encoded) JSON text, depending on the path."""
    if isinstance(value, str):
        from urllib.parse import unquote

        return json.loads(unquote(value))
    return value


def _when_role_ready(call: Callable[[], None], fresh_role: bool, attempts: int = 12, pause: float = 5.0) -> None:
    """A role created a moment ago is not yet assumable everywhere (IAM is eventually consistent): the
    service refuses it at first. Retry such a refusal for about a minute, and only for a new role."""
    from botocore.exceptions import ClientError

    for attempt in range(attempts):
        try:
            return call()
        except ClientError as error:
            refused = "assume" in str(error).lower() or "not authorized" in str(error).lower()
            if not (fresh_role and refused) or attempt == attempts - 1:
                raise
            time.sleep(pause)


def _ensure_artifact_bucket(n: Names, result: Result) -> None:
    ensure_bucket(Bucket("PIPELINE_ARTIFACT_STORE", n.bucket), result)  # private, encrypted
    s3 = client("s3")
    rule = {"ID": "expire-pipeline-artifacts", "Status": "Enabled", "Filter": {"Prefix": ""},
            "Expiration": {"Days": ARTIFACT_DAYS}}
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=n.bucket)["Rules"]
    except s3.exceptions.ClientError:
        rules = []
    if not any(_contains(r, rule) for r in rules):
        s3.put_bucket_lifecycle_configuration(Bucket=n.bucket, LifecycleConfiguration={
            "Rules": [r for r in rules if r.get("ID") != rule["ID"]] + [rule]})
        result.changes.append(f"set expiry of artifacts in {n.bucket}")


def project_spec(stage: str, n: Names, role_arn: str, repository: str, env: Mapping[str, str]) -> dict:
    variables = [{"name": "STAGE", "value": stage, "type": "PLAINTEXT"},
                 {"name": "PIPELINE_STEP", "value": "all", "type": "PLAINTEXT"}]
    variables += [{"name": k, "value": env[k], "type": "PLAINTEXT"} for k in DEPLOY_SETTINGS if env.get(k)]
    return {
        "name": n.project,
        "description": f"daycare {stage}: lint, test and package, or deploy (PIPELINE_STEP; {BUILDSPEC})",
        # CodePipeline hands over the source and takes the artifacts; it ignores these locations, which
        # only say where they come from and go to
        "source": {"type": "CODEPIPELINE", "buildspec": BUILDSPEC, "location": f"https://github.com/{repository}"},
        "artifacts": {"type": "CODEPIPELINE", "location": n.bucket},
        "environment": {"type": "LINUX_CONTAINER", "image": BUILD_IMAGE, "computeType": BUILD_COMPUTE,
                        "privilegedMode": False, "imagePullCredentialsType": "CODEBUILD",
                        "environmentVariables": variables},
        "serviceRole": role_arn,
        "timeoutInMinutes": BUILD_TIMEOUT_MINUTES,
        "logsConfig": {"cloudWatchLogs": {"status": "ENABLED"}},
    }


def _ensure_project(spec: dict, fresh_role: bool, result: Result) -> None:
    codebuild = client("codebuild")
    found = codebuild.batch_get_projects(names=[spec["name"]])["projects"]
    if not found:
        _when_role_ready(lambda: codebuild.create_project(**spec), fresh_role)
        result.changes.append(f"created CodeBuild project {spec['name']}")
    elif not _contains(found[0], spec):
        _when_role_ready(lambda: codebuild.update_project(**spec), fresh_role)
        result.changes.append(f"updated CodeBuild project {spec['name']}")


def _codebuild_action(name: str, n: Names, step: str, inputs: list[str], outputs: list[str]) -> dict:
    return {
        "name": name,
        "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
        "runOrder": 1,
        "configuration": {"ProjectName": n.project, "EnvironmentVariables": json.dumps(
            [{"name": "PIPELINE_STEP", "value": step, "type": "PLAINTEXT"}])},
        "inputArtifacts": [{"name": i} for i in inputs],
        "outputArtifacts": [{"name": o} for o in outputs],
    }


def pipeline_spec(stage: str, n: Names, role_arn: str, connection_arn: str, repository: str, branch: str) -> dict:
    stages = [
        {"name": "Source", "actions": [{
            "name": "GitHub",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection",
                             "version": "1"},
            "runOrder": 1,
            "configuration": {"ConnectionArn": connection_arn, "FullRepositoryId": repository,
                              "BranchName": branch, "OutputArtifactFormat": "CODE_ZIP", "DetectChanges": "true"},
            "inputArtifacts": [],
            "outputArtifacts": [{"name": "Source"}],
        }]},
        {"name": "Build", "actions": [_codebuild_action("Test-and-package", n, "build", ["Source"], ["Packages"])]},
    ]
    if stage in APPROVAL_STAGES:
        stages.append({"name": "Approval", "actions": [{
            "name": "Approve",
            "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
            "runOrder": 1,
            "configuration": {"CustomData": f"Tests and packages passed: deploy this commit to {stage}?"},
            "inputArtifacts": [],
            "outputArtifacts": [],
        }]})
    # the deploy packages again from the same source: the zips carry the account's rendered settings
    stages.append({"name": "Deploy", "actions": [_codebuild_action("Deploy", n, "deploy", ["Source"], [])]})
    return {"name": n.pipeline, "roleArn": role_arn, "artifactStore": {"type": "S3", "location": n.bucket},
            "stages": stages}


def _ensure_codepipeline(spec: dict, fresh_role: bool, result: Result) -> None:
    codepipeline = client("codepipeline")
    try:
        current = codepipeline.get_pipeline(name=spec["name"])["pipeline"]
    except codepipeline.exceptions.PipelineNotFoundException:
        _when_role_ready(lambda: codepipeline.create_pipeline(pipeline=spec), fresh_role)
        result.changes.append(f"created pipeline {spec['name']}")
        return
    if not _contains(current, spec):
        _when_role_ready(lambda: codepipeline.update_pipeline(pipeline={**spec, "version": current["version"]}),
                         fresh_role)
        result.changes.append(f"updated pipeline {spec['name']}")


def ensure_pipeline(stage: str, result: Result, env: Mapping[str, str] | None = None) -> None:
    """The stage's artifact bucket, CodeBuild project, CodePipeline and their two roles."""
    env = os.environ if env is None else env
    connection_arn, repository = env.get("PIPELINE_CONNECTION_ARN"), env.get("PIPELINE_REPOSITORY")
    if not connection_arn or not repository or repository.count("/") != 1:
        raise MissingVariable("the pipeline needs PIPELINE_CONNECTION_ARN and PIPELINE_REPOSITORY (owner/name)")
    branch = env.get("PIPELINE_BRANCH") or "main"
    account_id = client("sts").get_caller_identity()["Account"]
    n = names(stage, account_id)
    _ensure_artifact_bucket(n, result)
    build_role, fresh_build_role = _ensure_role(
        n.build_role, "codebuild.amazonaws.com", account_id,
        build_policy(stage, account_id, region(), n, env.get("ZAPPA_BUCKET")), result)
    pipeline_role, fresh_pipeline_role = _ensure_role(
        n.pipeline_role, "codepipeline.amazonaws.com", account_id,
        pipeline_policy(account_id, region(), n, connection_arn), result)
    _ensure_project(project_spec(stage, n, build_role, repository, env), fresh_build_role, result)
    _ensure_codepipeline(pipeline_spec(stage, n, pipeline_role, connection_arn, repository, branch),
                         fresh_pipeline_role, result)
    result.outputs.update({"PIPELINE_NAME": n.pipeline, "PIPELINE_PROJECT": n.project})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.tools.deploy pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    args = parser.parse_args(argv)
    result = Result()
    try:
        ensure_pipeline(args.stage, result)
    except MissingVariable as error:
        parser.error(str(error))
    print("\n".join(f"  {change}" for change in result.changes) or "  no changes")
    for key in ("PIPELINE_NAME", "PIPELINE_PROJECT", "PIPELINE_ARTIFACT_STORE"):
        print(f"{key}  {result.outputs[key]}")
    return 0
