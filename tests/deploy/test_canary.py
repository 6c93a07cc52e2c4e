"""Releases on the emulator: the operator's alarms and topic, CodeDeploy's application and groups, the `live`
alias that API Gateway, the mappings and the schedules use, a canary released, one rolled back on an alarm,
and `make rollback`. CodeDeploy's deployment execution, which moto lacks, is tests/codedeploy_helpers.py."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from shared.platform.aws import client
from shared.tools import provision
from shared.tools.deploy import canary, iam, release, stages
from shared.tools.deploy.prehook import checks, judge, target
from tests.codedeploy_helpers import CodeDeployStandIn

STAGE = "rel"


def _zip(answer: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", f"def lambda_handler(event, context):\n    return {answer!r}\n")
    return buffer.getvalue()


@pytest.fixture
def stage(own_emulator, tmp_path, monkeypatch):
    """A provisioned stage with its roles and release tier, the five functions as Zappa leaves them (code
    uploaded, a REST API for each web app pointing at the unqualified function), and its rendered settings."""
    monkeypatch.setattr(stages, "LOCAL_DIR", tmp_path)
    result = provision.apply(STAGE)
    iam.ensure_roles(STAGE, result)
    first = list(result.changes)
    canary.ensure_release_tier(STAGE, result, {"OPERATOR_EMAIL": "ops@agency.example"})
    path = stages.write(STAGE, account_id="123456789012", outputs=result.outputs, env={})
    lam, cloudformation, apigateway = client("lambda"), client("cloudformation"), client("apigateway")
    for app in canary.FUNCTIONS:
        name = stages.lambda_name(app, STAGE)
        lam.create_function(FunctionName=name, Runtime="python3.13", Role=result.outputs[f"{app.upper()}_ROLE_ARN"],
                            Handler="handler.lambda_handler", Code={"ZipFile": _zip("v1")}, Publish=True)
        if app in stages.WEB_APPS:
            template = {"Resources": {"Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": name}}}}
            cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
            api = release.api_id(app, STAGE)
            root = apigateway.get_resources(restApiId=api)["items"][0]["id"]
            proxy = apigateway.create_resource(restApiId=api, parentId=root, pathPart="{proxy+}")["id"]
            arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
            for resource in (root, proxy):
                apigateway.put_method(restApiId=api, resourceId=resource, httpMethod="ANY", authorizationType="NONE")
                apigateway.put_integration(
                    restApiId=api, resourceId=resource, httpMethod="ANY", type="AWS_PROXY",
                    integrationHttpMethod="POST",
                    uri=f"arn:aws:apigateway:ap-northeast-2:lambda:path/2015-03-31/functions/{arn}/invocations")
            apigateway.create_deployment(restApiId=api, stageName=f"{app}_{STAGE}")
    return {"result": result, "settings": json.loads(path.read_text()), "provisioned": first}


def test_the_release_tier_is_provisioned_once_with_alarms_to_the_operator(stage):
    result = stage["result"]
    changes = result.changes[len(stage["provisioned"]):]
    application = canary.application_name(STAGE)
    assert f"created topic daycare-{STAGE}-operator" in changes
    assert f"created CodeDeploy application {application}" in changes
    assert {f"created deployment group {application}/{app}" for app in canary.FUNCTIONS} <= set(changes)
    assert f"created function {canary.hook_name(STAGE)}" in changes

    # a second run changes nothing
    again = provision.Result(outputs=dict(result.outputs))
    canary.ensure_release_tier(STAGE, again, {"OPERATOR_EMAIL": "ops@agency.example"})
    assert again.changes == []

    # the operator's email is subscribed; every alarm tells the operator's topic, in ALARM and back to OK
    topic = result.outputs["OPERATOR_TOPIC_ARN"]
    subscriptions = client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", "ops@agency.example")]
    alarms = {a["AlarmName"]: a for a in client("cloudwatch").describe_alarms(MaxRecords=100)["MetricAlarms"]
              if a["AlarmName"].endswith(f"-{STAGE}") or f"-{STAGE}-" in a["AlarmName"]}
    # six queues (DLQ and oldest message), the events stream's failure queue, five functions, three APIs
    assert len(alarms) == 6 * 2 + 1 + 5 * 2 + 3 * 2
    assert f"daycare-{STAGE}-dlq-events_stream" in alarms, "a stream batch that failed every retry alarms too"
    assert all(a["AlarmActions"] == [topic] and a["OKActions"] == [topic] for a in alarms.values())
    # any message in any DLQ, and the oldest message's age, on each of the six queues
    dlq = alarms[f"daycare-{STAGE}-dlq-email"]
    assert (dlq["Namespace"], dlq["MetricName"], dlq["Threshold"]) == (
        "AWS/SQS", "ApproximateNumberOfMessagesVisible", 0)
    assert dlq["Dimensions"] == [{"Name": "QueueName", "Value": f"daycare-{STAGE}-email-dlq"}]
    assert len([n for n in alarms if "-dlq-" in n]) == 7 and len([n for n in alarms if "-oldest-" in n]) == 6
    # each function's errors and throttles on its alias; each API's 5xx rate and p99 latency
    errors = alarms[f"daycare-pipeline-{STAGE}-errors"]
    assert {d["Name"]: d["Value"] for d in errors["Dimensions"]} == {
        "FunctionName": f"daycare-pipeline-{STAGE}", "Resource": f"daycare-pipeline-{STAGE}:live"}
    assert f"daycare-analytics-{STAGE}-throttles" in alarms
    p99 = alarms[f"daycare-reqsys-{STAGE}-p99"]
    assert (p99["Namespace"], p99["MetricName"], p99["ExtendedStatistic"]) == ("AWS/ApiGateway", "Latency", "p99")
    assert alarms[f"daycare-taskapp-{STAGE}-5xx"]["MetricName"] == "5XXError"

    # each function's deployment group: the canary, automatic rollback, and that function's alarms
    codedeploy = client("codedeploy")
    group = codedeploy.get_deployment_group(applicationName=application, deploymentGroupName="reqsys")[
        "deploymentGroupInfo"]
    assert group["deploymentConfigName"] == "CodeDeployDefault.LambdaCanary10Percent5Minutes"
    assert group["autoRollbackConfiguration"] == {"enabled": True,
                                                  "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]}
    assert group["deploymentStyle"]["deploymentOption"] == "WITH_TRAFFIC_CONTROL"
    # (moto answers an empty alarmConfiguration: the group's spec, as sent, is what can be checked)
    spec = canary.deployment_group_spec(STAGE, "reqsys", group["serviceRoleArn"], [
        a["AlarmName"] for a in canary.alarm_specs(STAGE, result.outputs)["reqsys"]])
    assert [a["name"] for a in spec["alarmConfiguration"]["alarms"]] == [
        f"daycare-reqsys-{STAGE}-{kind}" for kind in ("errors", "throttles", "5xx", "p99")]
    assert all(name in alarms for name in (a["name"] for a in spec["alarmConfiguration"]["alarms"]))


def test_everything_reaches_the_functions_through_the_alias(stage):
    lam, apigateway, events = client("lambda"), client("apigateway"), client("events")
    settings = stage["settings"]
    changes = {app: canary.wire_alias(STAGE, app, settings[f"{app}_{STAGE}"]) for app in canary.FUNCTIONS}
    assert all(any(c.startswith(f"created alias daycare-{app}-{STAGE}:live -> ") for c in changes[app])
               for app in canary.FUNCTIONS)
    # a second run changes nothing
    assert {app: canary.wire_alias(STAGE, app, settings[f"{app}_{STAGE}"]) for app in canary.FUNCTIONS} == {
        app: [] for app in canary.FUNCTIONS}

    api = release.api_id("reqsys", STAGE)
    uris = [apigateway.get_integration(restApiId=api, resourceId=r["id"], httpMethod="ANY")["uri"]
            for r in apigateway.get_resources(restApiId=api)["items"]]
    assert len(uris) == 2 and all(uri.endswith(f"function:daycare-reqsys-{STAGE}:live/invocations") for uri in uris)
    # queue and stream mappings on the alias, with partial batch failures, none on the unqualified function
    assert release.mapping_failures(STAGE) == []
    mappings = lam.list_event_source_mappings(FunctionName=f"daycare-pipeline-{STAGE}:live")["EventSourceMappings"]
    assert len(mappings) == 5
    stream = next(m for m in mappings if ":dynamodb:" in m["EventSourceArn"])
    assert stream["StartingPosition"] == "TRIM_HORIZON"
    # schedules (Zappa's names, so its handler routes them) invoke the alias
    rule = f"daycare-reqsys-{STAGE}-reqsys.relay.handler"
    assert events.describe_rule(Name=rule)["ScheduleExpression"] == "rate(1 minute)"
    assert [t["Arn"] for t in events.list_targets_by_rule(Rule=rule)["Targets"]] == [
        lam.get_alias(FunctionName=f"daycare-reqsys-{STAGE}", Name="live")["AliasArn"]]

    # a mapping Zappa would make on the unqualified function is found, and the wiring removes it
    queue = settings[f"taskapp_{STAGE}"]["events"][0]["event_source"]["arn"]
    lam.create_event_source_mapping(FunctionName=f"daycare-taskapp-{STAGE}", EventSourceArn=queue, BatchSize=10)
    assert any("bypasses the alias" in failure for failure in release.mapping_failures(STAGE))
    assert any("(unqualified)" in c for c in canary.wire_alias(STAGE, "taskapp", settings[f"taskapp_{STAGE}"]))
    assert release.mapping_failures(STAGE) == []


def test_a_release_moves_the_alias_an_alarm_rolls_it_back_and_make_rollback_goes_back_one(stage):
    lam, cloudwatch = client("lambda"), client("cloudwatch")
    function = f"daycare-reqsys-{STAGE}"
    canary.wire_alias(STAGE, "reqsys", stage["settings"][f"reqsys_{STAGE}"])
    first = lam.get_alias(FunctionName=function, Name="live")["FunctionVersion"]
    checked = []
    standin = CodeDeployStandIn(STAGE, stage["result"].outputs, hook=lambda f, v: checked.append((f, v)) or [])

    def new_version(answer: str) -> str:
        lam.update_function_code(FunctionName=function, ZipFile=_zip(answer))
        return lam.publish_version(FunctionName=function)["Version"]

    second = new_version("v2")
    deployment = canary.release(STAGE, "reqsys", second, execute=standin)
    assert lam.get_alias(FunctionName=function, Name="live")["FunctionVersion"] == second
    assert checked == [(function, second)]  # the pre-traffic hook ran against the new version first
    assert any("10% -> " + second in step for step in standin.steps)  # the canary step
    spec = json.loads(client("codedeploy").get_deployment(deploymentId=deployment)["deploymentInfo"]["revision"][
        "appSpecContent"]["content"])
    assert spec["Hooks"] == [{"BeforeAllowTraffic": canary.hook_name(STAGE)}]
    assert canary.release(STAGE, "reqsys", second, execute=standin) is None  # nothing new: nothing deployed

    # an alarm of the function fires during the canary: CodeDeploy puts the alias back, the deploy fails
    cloudwatch.set_alarm_state(AlarmName=f"{function}-errors", StateValue="ALARM", StateReason="test")
    third = new_version("v3")
    with pytest.raises(SystemExit, match=f"{function}: deployment .* Stopped; CodeDeploy left live on {second}"):
        canary.release(STAGE, "reqsys", third, execute=standin)
    assert lam.get_alias(FunctionName=function, Name="live")["FunctionVersion"] == second
    assert lam.get_alias(FunctionName=function, Name="live").get("RoutingConfig", {}).get(
        "AdditionalVersionWeights", {}) == {}

    # make rollback: back one version (all at once, through CodeDeploy)
    cloudwatch.set_alarm_state(AlarmName=f"{function}-errors", StateValue="OK", StateReason="test")
    said = canary.rollback(STAGE, ("reqsys",), execute=standin, running=standin.running)
    assert said[0].startswith(f"{function}:live {second} -> {first}: Succeeded")
    assert lam.get_alias(FunctionName=function, Name="live")["FunctionVersion"] == first


def test_the_pre_traffic_checks_judge_what_the_new_version_answers():
    spec = canary.appspec("daycare-reqsys-dev", "4", "5", "daycare-dev-release-hook")
    assert target(spec) == ("daycare-reqsys-dev", "5")

    def healthy(path: str) -> dict:
        bodies = {"/healthz": (200, '{"status": "ok"}'), "/auth/login": (200, "<form>"),
                  "/api/nurseries": (200, '{"nurseries": []}'), "/enterwait": (401, '{"error": {}}')}
        status, body = bodies[path]
        return {"statusCode": status, "body": body}

    asked = []

    def invoke(function, qualifier, event):
        asked.append((function, qualifier, event["requestContext"]["stage"]))
        return healthy(event["path"])

    assert checks("daycare-reqsys-dev", "5", invoke) == []
    assert asked[0] == ("daycare-reqsys-dev", "5", "reqsys_dev")  # the version, never the alias
    broken = checks("daycare-reqsys-dev", "5", lambda f, q, e: {"statusCode": 500, "body": "Traceback"})
    assert len(broken) == 4 and "HTTP 500, expected 200" in broken[0]
    assert judge({"statusCode": 200, "body": '"ok" Traceback (most recent call last)'}, 200, '"ok"') == (
        "the answer shows internals")
    assert checks("daycare-pipeline-dev", "3", invoke) == []  # no HTTP: the hook checks its state only
