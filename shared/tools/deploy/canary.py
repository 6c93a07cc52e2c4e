"""Releases through CodeDeploy: the `live` alias, the operator's alarms, canaries that roll themselves back.

Zappa builds and uploads: `zappa deploy|update` publishes a new version of each function and nothing else
(release.py hands it settings without events and without keep-warm, so Zappa makes no mapping and no
schedule on the unqualified function). This module does what Zappa cannot (DESIGN.md section 4):

- `ensure_release_tier(stage, result)` (with provisioning): the operator's SNS topic (email from the CI
  variable OPERATOR_EMAIL), CloudWatch alarms on AWS's standard metrics (any message in a DLQ, the oldest
  message's age, each function's errors and throttles on its `live` alias, each API's 5xx rate and p99
  latency), the CodeDeploy service role, one CodeDeploy application per stage with one deployment group per
  function (canary configuration, the function's alarms, automatic rollback on failure and on alarm), and
  the pre-traffic hook function (shared/tools/deploy/prehook.py).
- `wire_alias(stage, app, settings)`: after Zappa, every way in goes through the alias `live`: API
  Gateway's integrations (and the permission to invoke the alias), every SQS/stream mapping (created on the
  alias; a mapping on the unqualified function is removed, or it would run unreleased code), and every
  schedule (EventBridge rules targeting the alias, named as Zappa names them so its handler routes them).
- `release(stage, app, version)`: a CodeDeploy deployment shifts `live` from its version to `version`
  (10 % for 5 minutes, then all), after the hook's checks; an alarm firing meanwhile rolls it back.
- `rollback(stage)`: `make rollback STAGE=…` stops a deployment in progress (CodeDeploy rolls it back), or
  else shifts each function's alias back to its previous version through CodeDeploy, all at once.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import time
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

from shared.platform.aws import client, region
from shared.tools.deploy.stages import LIVE_ALIAS, WEB_APPS, lambda_name, runtime

ALIAS = LIVE_ALIAS
FUNCTIONS = ("reqsys", "childsys", "taskapp", "pipeline", "analytics")
CANARY = "CodeDeployDefault.LambdaCanary10Percent5Minutes"
ALL_AT_ONCE = "CodeDeployDefault.LambdaAllAtOnce"  # rollback: the previous version is the known good one
ROLLBACK_EVENTS = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]
OLDEST_MESSAGE_SECONDS = 900  # a message waiting 15 minutes: a hop is down or too slow
P99_LATENCY_MS = 3000
SERVER_ERROR_RATE = 0.05  # 5 % of an API's requests over 5 minutes
SPEC_TAG = "daycare-spec"  # a deployment group's wanted configuration, hashed: drift is put back
HOOK_SOURCE = Path(__file__).with_name("prehook.py")
DONE = ("Succeeded", "Failed", "Stopped")


def application_name(stage: str) -> str:
    return f"daycare-{stage}"


def hook_name(stage: str) -> str:
    return f"daycare-{stage}-release-hook"


def operator_topic_name(stage: str) -> str:
    return f"daycare-{stage}-operator"


def codedeploy_role_name(stage: str) -> str:
    return f"daycare-{stage}-codedeploy"


def hook_role_name(stage: str) -> str:
    return f"daycare-{stage}-release-hook"


# --- the alarms ----------------------------------------------------------------------------------


def _alarm(name: str, namespace: str, metric: str, dimensions: Mapping[str, str], *, threshold: float,
           statistic: str = "Sum", period: int = 60, periods: int = 1, description: str) -> dict:
    kwargs = {"AlarmName": name, "AlarmDescription": description, "Namespace": namespace, "MetricName": metric,
              "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()], "Period": period,
              "EvaluationPeriods": periods, "Threshold": threshold, "ComparisonOperator": "GreaterThanThreshold",
              "TreatMissingData": "notBreaching"}
    kwargs["ExtendedStatistic" if statistic.startswith("p") else "Statistic"] = statistic
    return kwargs


def alarm_specs(stage: str, outputs: Mapping[str, str]) -> dict[str, list[dict]]:
    """Owner -> its alarms' put_metric_alarm arguments; owners are the functions and "queues"."""
    prefix = f"daycare-{stage}"
    specs: dict[str, list[dict]] = {"queues": []}
    for key in sorted(k.removesuffix("_DLQ_URL") for k in outputs if k.endswith("_DLQ_URL")):
        dlq = outputs[f"{key}_DLQ_URL"].rsplit("/", 1)[-1]
        specs["queues"].append(
            _alarm(f"{prefix}-dlq-{key.lower()}", "AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": dlq},
                   threshold=0, statistic="Maximum", period=300,
                   description=f"A message is in {dlq}: a delivery failed every retry (monitor page: redrive)"))
        if f"{key}_QUEUE_URL" not in outputs:  # a stream's failure queue: no source queue of its own
            continue
        queue = outputs[f"{key}_QUEUE_URL"].rsplit("/", 1)[-1]
        specs["queues"].append(
            _alarm(f"{prefix}-oldest-{key.lower()}", "AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": queue},
                   threshold=OLDEST_MESSAGE_SECONDS, statistic="Maximum", period=300,
                   description=f"A message has waited over {OLDEST_MESSAGE_SECONDS} s in {queue}"))
    for app in FUNCTIONS:
        function = lambda_name(app, stage)
        alias = {"FunctionName": function, "Resource": f"{function}:{ALIAS}"}
        specs[app] = [
            _alarm(f"{function}-errors", "AWS/Lambda", "Errors", alias, threshold=0,
                   description=f"{function}:{ALIAS} raised errors (a CodeDeploy canary rolls back on this)"),
            _alarm(f"{function}-throttles", "AWS/Lambda", "Throttles", alias, threshold=0,
                   description=f"{function}:{ALIAS} was throttled (concurrency exhausted)"),
        ]
        if app in WEB_APPS:
            api = {"ApiName": function, "Stage": f"{app}_{stage}"}  # Zappa names the REST API after the function
            specs[app] += [
                _alarm(f"{function}-5xx", "AWS/ApiGateway", "5XXError", api, threshold=SERVER_ERROR_RATE,
                       statistic="Average", period=300,
                       description=f"Over {SERVER_ERROR_RATE:.0%} of {app}'s requests answered 5xx"),
                _alarm(f"{function}-p99", "AWS/ApiGateway", "Latency", api, threshold=P99_LATENCY_MS,
                       statistic="p99", period=300,
                       description=f"{app}'s p99 latency is over {P99_LATENCY_MS} ms"),
            ]
    return specs


def _same_alarm(current: dict, wanted: dict, topic_arn: str) -> bool:
    for key, value in wanted.items():
        if key == "Dimensions":
            if sorted((d["Name"], d["Value"]) for d in current.get(key, [])) != sorted(
                    (d["Name"], d["Value"]) for d in value):
                return False
        elif current.get(key) != value:
            return False
    return current.get("AlarmActions") == [topic_arn] and current.get("OKActions") == [topic_arn]


def ensure_alarms(stage: str, outputs: Mapping[str, str], topic_arn: str, result) -> dict[str, list[str]]:
    """Every alarm, sending ALARM and OK to the operator's topic; owner -> alarm names."""
    cloudwatch = client("cloudwatch")
    specs = alarm_specs(stage, outputs)
    wanted_names = [a["AlarmName"] for alarms in specs.values() for a in alarms]
    current = {a["AlarmName"]: a for i in range(0, len(wanted_names), 100)
               for a in cloudwatch.describe_alarms(AlarmNames=wanted_names[i:i + 100], MaxRecords=100)["MetricAlarms"]}
    names: dict[str, list[str]] = {}
    for owner, alarms in specs.items():
        for wanted in alarms:
            name = wanted["AlarmName"]
            names.setdefault(owner, []).append(name)
            if name in current and _same_alarm(current[name], wanted, topic_arn):
                continue
            cloudwatch.put_metric_alarm(**wanted, AlarmActions=[topic_arn], OKActions=[topic_arn])
            result.changes.append(f"{'updated' if name in current else 'created'} alarm {name}")
    return names


def ensure_operator_topic(stage: str, email: str | None, result) -> str:
    """The topic the alarms notify, with the operator's address subscribed (AWS asks them to confirm)."""
    sns = client("sns")
    name = operator_topic_name(stage)
    topic_arn = next((t["TopicArn"] for page in sns.get_paginator("list_topics").paginate()
                      for t in page["Topics"] if t["TopicArn"].endswith(f":{name}")), None)
    if topic_arn is None:
        topic_arn = sns.create_topic(Name=name)["TopicArn"]
        result.changes.append(f"created topic {name}")
    if email:
        endpoints = {s["Endpoint"] for page in sns.get_paginator("list_subscriptions_by_topic").paginate(
            TopicArn=topic_arn) for s in page["Subscriptions"] if s["Protocol"] == "email"}
        if email not in endpoints:
            sns.subscribe(TopicArn=topic_arn, Protocol="email", Endpoint=email)
            result.changes.append(f"subscribed {email} to {name} (to be confirmed from the email)")
    result.outputs["OPERATOR_TOPIC_ARN"] = topic_arn
    return topic_arn


# --- roles ---------------------------------------------------------------------------------------


def _ensure_role(name: str, service: str, policy: dict, result) -> str:
    iam = client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": service},
                                                     "Action": "sts:AssumeRole"}]}
    try:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                              Description=f"{service} for daycare releases (shared/tools/deploy/canary.py)")["Role"][
            "Arn"]
        result.changes.append(f"created role {name}")
    try:
        current = iam.get_role_policy(RoleName=name, PolicyName="least-privilege")["PolicyDocument"]
        current = json.loads(current) if isinstance(current, str) else current
    except iam.exceptions.NoSuchEntityException:
        current = None
    if current != policy:
        iam.put_role_policy(RoleName=name, PolicyName="least-privilege", PolicyDocument=json.dumps(policy))
        result.changes.append(f"{'set' if current is None else 'updated'} policy of role {name}")
    return arn


def _functions_arn(stage: str, account_id: str) -> list[str]:
    base = f"arn:aws:lambda:{region()}:{account_id}:function:daycare-*-{stage}"
    return [base, f"{base}:*"]


def codedeploy_policy(stage: str, account_id: str) -> dict:
    """What CodeDeploy does for a Lambda deployment (AWSCodeDeployRoleForLambda), on this stage only."""
    hook = f"arn:aws:lambda:{region()}:{account_id}:function:{hook_name(stage)}"
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "ShiftAlias", "Effect": "Allow", "Action": ["lambda:GetAlias", "lambda:UpdateAlias",
                                                           "lambda:GetProvisionedConcurrencyConfig"],
         "Resource": _functions_arn(stage, account_id)},
        {"Sid": "RunHook", "Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": [hook]},
        {"Sid": "WatchAlarms", "Effect": "Allow", "Action": ["cloudwatch:DescribeAlarms"], "Resource": ["*"]},
    ]}


def hook_policy(stage: str, account_id: str) -> dict:
    function = _functions_arn(stage, account_id)
    log_group = f"arn:aws:logs:{region()}:{account_id}:log-group:/aws/lambda/{hook_name(stage)}"
    application = f"arn:aws:codedeploy:{region()}:{account_id}:deploymentgroup:{application_name(stage)}/*"
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "Logs", "Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream",
                                                     "logs:PutLogEvents"], "Resource": [log_group, f"{log_group}:*"]},
        {"Sid": "CheckNewVersion", "Effect": "Allow", "Action": ["lambda:InvokeFunction",
                                                                "lambda:GetFunctionConfiguration"],
         "Resource": function},
        {"Sid": "ReadDeployment", "Effect": "Allow", "Action": ["codedeploy:GetDeployment"], "Resource": [application]},
        # CodeDeploy's API takes no resource for this call
        {"Sid": "Report", "Effect": "Allow", "Action": ["codedeploy:PutLifecycleEventHookExecutionStatus"],
         "Resource": ["*"]},
    ]}


# --- the hook function ---------------------------------------------------------------------------


def hook_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("prehook.py", date_time=(2020, 1, 1, 0, 0, 0))  # same bytes, same hash
        info.external_attr = 0o644 << 16
        archive.writestr(info, HOOK_SOURCE.read_bytes())
    return buffer.getvalue()


def ensure_hook(stage: str, role_arn: str, result) -> str:
    lam = client("lambda")
    name, code = hook_name(stage), hook_zip()
    import base64

    digest = base64.b64encode(hashlib.sha256(code).digest()).decode()
    try:
        current = lam.get_function(FunctionName=name)["Configuration"]
    except lam.exceptions.ResourceNotFoundException:
        from shared.tools.deploy.pipeline import _when_role_ready

        _when_role_ready(lambda: lam.create_function(
            FunctionName=name, Runtime=runtime(), Role=role_arn, Handler="prehook.handler", Timeout=120,
            MemorySize=256, Code={"ZipFile": code}, Description="CodeDeploy BeforeAllowTraffic: smoke checks"),
            fresh_role=True)
        result.changes.append(f"created function {name}")
        return name
    if current.get("CodeSha256") != digest:
        lam.update_function_code(FunctionName=name, ZipFile=code)
        result.changes.append(f"updated function {name}")
    return name


# --- CodeDeploy ----------------------------------------------------------------------------------


def deployment_group_spec(stage: str, app: str, role_arn: str, alarms: list[str]) -> dict:
    return {
        "applicationName": application_name(stage), "deploymentGroupName": app,
        "deploymentConfigName": CANARY, "serviceRoleArn": role_arn,
        "alarmConfiguration": {"enabled": True, "ignorePollAlarmFailure": False,
                               "alarms": [{"name": name} for name in alarms]},
        "autoRollbackConfiguration": {"enabled": True, "events": ROLLBACK_EVENTS},
        "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
    }


def _digest(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def ensure_codedeploy(stage: str, role_arn: str, alarms: Mapping[str, list[str]], result, account_id: str) -> None:
    codedeploy = client("codedeploy")
    application = application_name(stage)
    try:
        codedeploy.get_application(applicationName=application)
    except codedeploy.exceptions.ApplicationDoesNotExistException:
        codedeploy.create_application(applicationName=application, computePlatform="Lambda",
                                      tags=[{"Key": "stage", "Value": stage}])
        result.changes.append(f"created CodeDeploy application {application}")
    existing = set(codedeploy.list_deployment_groups(applicationName=application).get("deploymentGroups", []))
    for app in FUNCTIONS:
        spec = deployment_group_spec(stage, app, role_arn, alarms[app])
        arn = f"arn:aws:codedeploy:{region()}:{account_id}:deploymentgroup:{application}/{app}"
        tag = [{"Key": SPEC_TAG, "Value": _digest(spec)}]
        if app not in existing:
            codedeploy.create_deployment_group(**spec, tags=tag)
            result.changes.append(f"created deployment group {application}/{app}")
            continue
        # the group's alarms are compared through the tag: describe answers them only in AWS
        tags = codedeploy.list_tags_for_resource(ResourceArn=arn).get("Tags", [])
        if tags != tag and {t["Key"]: t["Value"] for t in tags}.get(SPEC_TAG) != tag[0]["Value"]:
            codedeploy.update_deployment_group(**{k: v for k, v in spec.items() if k != "deploymentGroupName"},
                                               currentDeploymentGroupName=app)
            codedeploy.tag_resource(ResourceArn=arn, Tags=tag)
            result.changes.append(f"updated deployment group {application}/{app}")
    result.outputs["CODEDEPLOY_APPLICATION"] = application


def ensure_release_tier(stage: str, result, env: Mapping[str, str] | None = None) -> None:
    """Provisioning's part for releases: operator topic, alarms, CodeDeploy, the hook (idempotent)."""
    import os

    env = os.environ if env is None else env
    account_id = client("sts").get_caller_identity()["Account"]
    topic_arn = ensure_operator_topic(stage, env.get("OPERATOR_EMAIL"), result)
    alarms = ensure_alarms(stage, result.outputs, topic_arn, result)
    role_arn = _ensure_role(codedeploy_role_name(stage), "codedeploy.amazonaws.com",
                            codedeploy_policy(stage, account_id), result)
    hook_role = _ensure_role(hook_role_name(stage), "lambda.amazonaws.com", hook_policy(stage, account_id), result)
    result.outputs["RELEASE_HOOK_FUNCTION"] = ensure_hook(stage, hook_role, result)
    ensure_codedeploy(stage, role_arn, alarms, result, account_id)


# --- the alias and everything that reaches the function through it -------------------------------


def ensure_alias(function: str, changes: list[str]) -> str:
    """`live` on the function; the first time, on a version published from what Zappa uploaded."""
    lam = client("lambda")
    try:
        return lam.get_alias(FunctionName=function, Name=ALIAS)["FunctionVersion"]
    except lam.exceptions.ResourceNotFoundException:
        version = lam.publish_version(FunctionName=function)["Version"]
        lam.create_alias(FunctionName=function, Name=ALIAS, FunctionVersion=version,
                         Description="what users reach; moved only by CodeDeploy (shared/tools/deploy/canary.py)")
        changes.append(f"created alias {function}:{ALIAS} -> {version}")
        return version


def _allow(function: str, sid: str, principal: str, source_arn: str, changes: list[str]) -> None:
    lam = client("lambda")
    try:
        policy = json.loads(lam.get_policy(FunctionName=function, Qualifier=ALIAS)["Policy"])
        sids = {s["Sid"] for s in policy["Statement"]}
    except lam.exceptions.ResourceNotFoundException:
        sids = set()
    if sid not in sids:
        lam.add_permission(FunctionName=function, Qualifier=ALIAS, StatementId=sid, Action="lambda:InvokeFunction",
                           Principal=principal, SourceArn=source_arn)
        changes.append(f"allowed {principal} to invoke {function}:{ALIAS}")


def api_id(app: str, stage: str) -> str | None:
    """The id of the REST API Zappa made for `<app>_<stage>` (its CloudFormation stack's `Api`)."""
    cloudformation = client("cloudformation")
    try:
        resource = cloudformation.describe_stack_resource(
            StackName=lambda_name(app, stage), LogicalResourceId="Api")["StackResourceDetail"]
    except cloudformation.exceptions.ClientError:
        return None
    return resource["PhysicalResourceId"]


def wire_api(app: str, stage: str, changes: list[str]) -> None:
    """Point the app's REST API (made by Zappa's CloudFormation stack) at the alias, and redeploy it."""
    rest_api = api_id(app, stage)
    if rest_api is None:
        return
    apigateway, lam = client("apigateway"), client("lambda")
    function_arn = lam.get_function(FunctionName=lambda_name(app, stage))["Configuration"]["FunctionArn"]
    alias_arn = f"{function_arn}:{ALIAS}"
    uri = f"arn:aws:apigateway:{region()}:lambda:path/2015-03-31/functions/{alias_arn}/invocations"
    moved = 0
    for resource in apigateway.get_resources(restApiId=rest_api, limit=500)["items"]:
        for method in resource.get("resourceMethods") or {}:
            integration = apigateway.get_integration(restApiId=rest_api, resourceId=resource["id"], httpMethod=method)
            if integration.get("type") == "AWS_PROXY" and integration.get("uri") != uri:
                kept = {k: integration[k] for k in ("passthroughBehavior", "contentHandling", "timeoutInMillis",
                                                     "cacheNamespace", "cacheKeyParameters", "requestParameters")
                        if integration.get(k)}
                apigateway.put_integration(restApiId=rest_api, resourceId=resource["id"], httpMethod=method,
                                           type="AWS_PROXY", integrationHttpMethod="POST", uri=uri, **kept)
                moved += 1
    account_id = function_arn.split(":")[4]
    _allow(lambda_name(app, stage), "api-gateway-live", "apigateway.amazonaws.com",
           f"arn:aws:execute-api:{region()}:{account_id}:{rest_api}/*", changes)
    if moved:
        apigateway.create_deployment(restApiId=rest_api, stageName=f"{app}_{stage}",
                                     description=f"integrations on {ALIAS}")
        changes.append(f"pointed {moved} integration(s) of {app}_{stage} at {ALIAS}")


def wire_sources(app: str, stage: str, settings: Mapping, changes: list[str]) -> None:
    """The function's queue and stream mappings on the alias; none left on the unqualified function."""
    lam = client("lambda")
    function = lambda_name(app, stage)
    qualified = f"{function}:{ALIAS}"
    for event in settings.get("events") or []:
        source = event.get("event_source")
        if not source:
            continue
        arn = source["arn"]
        for mapping in lam.list_event_source_mappings(FunctionName=function, EventSourceArn=arn)[
                "EventSourceMappings"]:
            if mapping["FunctionArn"].endswith(f":function:{function}"):  # no qualifier: $LATEST
                lam.delete_event_source_mapping(UUID=mapping["UUID"])
                changes.append(f"removed mapping {arn} -> {function} (unqualified)")
        mappings = lam.list_event_source_mappings(FunctionName=qualified, EventSourceArn=arn)["EventSourceMappings"]
        if not mappings:
            extra = {"StartingPosition": source["starting_position"]} if ":dynamodb:" in arn else {}
            lam.create_event_source_mapping(FunctionName=qualified, EventSourceArn=arn,
                                            BatchSize=source.get("batch_size", 10), Enabled=True,
                                            FunctionResponseTypes=["ReportBatchItemFailures"], **extra)
            changes.append(f"created mapping {arn} -> {qualified}")
        for mapping in mappings:
            if "ReportBatchItemFailures" not in (mapping.get("FunctionResponseTypes") or []):
                lam.update_event_source_mapping(UUID=mapping["UUID"], FunctionResponseTypes=["ReportBatchItemFailures"])
                changes.append(f"enabled ReportBatchItemFailures on {arn} -> {qualified}")


def schedules(app: str, stage: str, settings: Mapping) -> dict[str, str]:
    """rule name -> schedule expression: the settings' `expression` events and, when on, keep-warm. Named as
    Zappa names them (`<function>-<handler path>`): its handler routes a scheduled event by the rule's name."""
    function = lambda_name(app, stage)
    rules = {f"{function}-{e['function']}": e["expression"] for e in settings.get("events") or []
             if e.get("expression")}
    if settings.get("keep_warm"):
        rules[f"{function}-zappa-keep-warm-handler.keep_warm_callback"] = settings.get("keep_warm_expression",
                                                                                       "rate(4 minutes)")
    return rules


def wire_schedules(app: str, stage: str, settings: Mapping, changes: list[str]) -> None:
    events, lam = client("events"), client("lambda")
    function = lambda_name(app, stage)
    alias_arn = lam.get_function(FunctionName=function)["Configuration"]["FunctionArn"] + f":{ALIAS}"
    for name, expression in schedules(app, stage, settings).items():
        name = name[:64]
        try:
            current = events.describe_rule(Name=name)
        except events.exceptions.ResourceNotFoundException:
            current = None
        if current is None or current.get("ScheduleExpression") != expression or current.get("State") != "ENABLED":
            rule_arn = events.put_rule(Name=name, ScheduleExpression=expression, State="ENABLED",
                                       Description=f"{function}:{ALIAS} on schedule")["RuleArn"]
            changes.append(f"{'created' if current is None else 'updated'} schedule {name}")
        else:
            rule_arn = current["Arn"]
        targets = events.list_targets_by_rule(Rule=name)["Targets"]
        if [t["Arn"] for t in targets] != [alias_arn]:
            stale = [t["Id"] for t in targets if t["Arn"] != alias_arn]
            if stale:
                events.remove_targets(Rule=name, Ids=stale)
            events.put_targets(Rule=name, Targets=[{"Id": "live", "Arn": alias_arn}])
            changes.append(f"schedule {name} -> {function}:{ALIAS}")
        _allow(function, f"schedule-{hashlib.sha256(name.encode()).hexdigest()[:12]}", "events.amazonaws.com",
               rule_arn, changes)


def wire_alias(stage: str, app: str, settings: Mapping) -> list[str]:
    """Everything that reaches `app` goes through `live` (idempotent); returns the changes."""
    changes: list[str] = []
    ensure_alias(lambda_name(app, stage), changes)
    if app in WEB_APPS:
        wire_api(app, stage, changes)
    wire_sources(app, stage, settings, changes)
    wire_schedules(app, stage, settings, changes)
    return changes


def deploy_settings(rendered: Mapping[str, dict]) -> dict[str, dict]:
    """What Zappa deploys with: the rendered stages without events and keep-warm (this module wires those on
    the alias), so `zappa deploy|update` uploads and publishes and nothing reaches the new code unreleased."""
    return {name: {**stage, "events": [], "keep_warm": False} for name, stage in rendered.items()}


# --- releasing -----------------------------------------------------------------------------------


def appspec(function: str, current: str, target: str, hook: str | None) -> dict:
    spec = {"version": 0.0, "Resources": [{"function": {"Type": "AWS::Lambda::Function", "Properties": {
        "Name": function, "Alias": ALIAS, "CurrentVersion": current, "TargetVersion": target}}}]}
    if hook:
        spec["Hooks"] = [{"BeforeAllowTraffic": hook}]
    return spec


def wait_for_deployment(deployment_id: str, timeout: float = 1800, pause: float = 15) -> str:
    """Poll CodeDeploy until the deployment ends; its final status."""
    codedeploy = client("codedeploy")
    deadline = time.monotonic() + timeout
    while True:
        info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        if info["status"] in DONE:
            return info["status"]
        if time.monotonic() > deadline:
            raise SystemExit(f"deployment {deployment_id} still {info['status']} after {timeout:.0f} s")
        time.sleep(pause)


Executor = Callable[[str], str]  # deployment id -> final status


def start(stage: str, app: str, current: str, target: str, config: str | None = None,
          hook: bool = True) -> str:
    spec = appspec(lambda_name(app, stage), current, target, hook_name(stage) if hook else None)
    return client("codedeploy").create_deployment(
        applicationName=application_name(stage), deploymentGroupName=app,
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(spec)}},
        description=f"{app} {current} -> {target}", **({"deploymentConfigName": config} if config else {}),
    )["deploymentId"]


def release_all(stage: str, targets: Mapping[str, str], execute: Executor = wait_for_deployment) -> dict[str, str]:
    """Shift each function's `live` to its target through a CodeDeploy canary, all at once (each deployment
    watches its own function's alarms); app -> deployment id. Raises SystemExit naming the ones rolled back."""
    lam = client("lambda")
    started: dict[str, tuple[str, str, str]] = {}
    for app, target in targets.items():
        function = lambda_name(app, stage)
        current = lam.get_alias(FunctionName=function, Name=ALIAS)["FunctionVersion"]
        if current == target:
            print(f"  {function}:{ALIAS} already on {target}", flush=True)
            continue
        started[app] = (start(stage, app, current, target), current, target)
        print(f"  {function}:{ALIAS} {current} -> {target}: CodeDeploy {started[app][0]} ({CANARY})", flush=True)
    failed = []
    for app, (deployment_id, current, _target) in started.items():
        status = execute(deployment_id)
        print(f"  {lambda_name(app, stage)}: {status}", flush=True)
        if status != "Succeeded":
            failed.append(f"{lambda_name(app, stage)}: deployment {deployment_id} {status}; CodeDeploy left {ALIAS} "
                          f"on {current} (its alarms or the pre-traffic checks)")
    if failed:
        raise SystemExit("not released:\n  " + "\n  ".join(failed))
    return {app: deployment_id for app, (deployment_id, _, _) in started.items()}


def release(stage: str, app: str, target: str, execute: Executor = wait_for_deployment) -> str | None:
    """One function's release (release_all of one); its deployment id, or None when already there."""
    return release_all(stage, {app: target}, execute).get(app)


def previous_version(function: str, current: str) -> str | None:
    lam = client("lambda")
    versions = [int(v["Version"]) for page in lam.get_paginator("list_versions_by_function").paginate(
        FunctionName=function) for v in page["Versions"] if v["Version"].isdigit()]
    older = [v for v in versions if v < int(current)]
    return str(max(older)) if older else None


def in_progress(stage: str, app: str) -> list[str]:
    """The function's deployments CodeDeploy is still running."""
    return client("codedeploy").list_deployments(
        applicationName=application_name(stage), deploymentGroupName=app,
        includeOnlyStatuses=["Created", "Queued", "InProgress", "Ready"]).get("deployments", [])


def rollback(stage: str, apps=FUNCTIONS, execute: Executor = wait_for_deployment,
             running: Callable[[str, str], list[str]] = in_progress) -> list[str]:
    """Stop what is deploying (CodeDeploy rolls it back), or move each alias back one version."""
    codedeploy, lam = client("codedeploy"), client("lambda")
    said = []
    for app in apps:
        function = lambda_name(app, stage)
        deploying = running(stage, app)
        for deployment_id in deploying:
            codedeploy.stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=True)
            said.append(f"stopped {deployment_id} of {function}; CodeDeploy rolls it back")
        if deploying:
            continue
        current = lam.get_alias(FunctionName=function, Name=ALIAS)["FunctionVersion"]
        previous = previous_version(function, current)
        if previous is None:
            said.append(f"{function}: {ALIAS} is on its first version {current}; nothing to roll back to")
            continue
        deployment_id = start(stage, app, current, previous, config=ALL_AT_ONCE, hook=False)
        status = execute(deployment_id)
        said.append(f"{function}:{ALIAS} {current} -> {previous}: {status} ({deployment_id})")
    return said


def rollback_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.tools.deploy rollback",
                                     description="Move each function's `live` alias back to its previous version.")
    parser.add_argument("--stage", required=True)
    parser.add_argument("--app", action="append", choices=FUNCTIONS, help="only this function (repeatable)")
    args = parser.parse_args(argv)
    for line in rollback(args.stage, tuple(args.app or FUNCTIONS)):
        print(f"  {line}")
    return 0
