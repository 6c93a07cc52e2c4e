"""CodeDeploy's BeforeAllowTraffic hook: the smoke checks run against the new version before any user reaches it.

Deployed by shared/tools/deploy/canary.py as its own small function (`daycare-<stage>-release-hook`, this file
alone in its zip, standard library and Lambda's boto3 only). CodeDeploy invokes it with the deployment id and
the hook execution id; it reads the deployment's AppSpec (the function and its target version), invokes that
version directly (never the `live` alias, which users reach) with the same kinds of events API Gateway sends,
and reports Succeeded or Failed. A failure stops the deployment before any traffic moves: the alias stays.
"""

from __future__ import annotations

import json
import uuid

# (path, expected status, what the body must contain): a subset of release.SMOKE_CHECKS that needs no
# network and no user, answered by the function itself
WEB_CHECKS = {
    "reqsys": (("/healthz", 200, '"ok"'), ("/auth/login", 200, "<form"), ("/api/nurseries", 200, '"nurseries"'),
               ("/enterwait", 401, '"error"')),
    "childsys": (("/healthz", 200, '"ok"'), ("/auth/login", 200, "<form"), ("/enterwait/request", 405, "")),
    "taskapp": (("/healthz", 200, '"ok"'), ("/auth/login", 200, "<form"), ("/api/tasks", 401, '"error"')),
}


def api_event(path: str, api_stage: str) -> dict:
    """An API Gateway REST (v1) proxy event for GET `path`, as Zappa's handler expects."""
    headers = {"Host": "release-hook.invalid", "Accept": "text/html,application/json", "User-Agent": "release-hook",
               "X-Forwarded-Proto": "https", "X-Forwarded-Port": "443", "X-Forwarded-For": "203.0.113.1"}
    return {"resource": "/{proxy+}", "path": path, "httpMethod": "GET", "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()}, "queryStringParameters": None,
            "multiValueQueryStringParameters": None, "pathParameters": {"proxy": path.lstrip("/")},
            "stageVariables": None, "body": None, "isBase64Encoded": False,
            "requestContext": {"resourcePath": "/{proxy+}", "httpMethod": "GET", "path": f"/{api_stage}{path}",
                               "stage": api_stage, "requestId": str(uuid.uuid4()),
                               "identity": {"sourceIp": "203.0.113.1", "userAgent": "release-hook"}}}


def judge(answer, status: int, needle: str) -> str | None:
    """What is wrong with one answer of the new version (None when it is right)."""
    if not isinstance(answer, dict) or answer.get("statusCode") != status:
        got = answer.get("statusCode") if isinstance(answer, dict) else type(answer).__name__
        return f"HTTP {got}, expected {status}"
    body = answer.get("body") or ""
    if needle not in body:
        return f"the body lacks {needle!r}"
    if "Traceback" in body or "sqlalchemy" in body.lower():
        return "the answer shows internals"
    return None


def target(appspec: dict) -> tuple[str, str]:
    """(function name, target version) from a Lambda AppSpec."""
    for resource in appspec["Resources"]:
        for properties in (body["Properties"] for body in resource.values()):
            return properties["Name"], str(properties["TargetVersion"])
    raise ValueError("the AppSpec names no function")


def app_of(function_name: str) -> str:
    """daycare-<app>-<stage> -> <app>"""
    return function_name.split("-")[1]


def checks(function_name: str, version: str, invoke) -> list[str]:
    """Run the checks through `invoke(function, qualifier, event) -> answer`; returns the failures."""
    app = app_of(function_name)
    api_stage = f"{app}_{function_name.rsplit('-', 1)[-1]}"
    failures = []
    for path, status, needle in WEB_CHECKS.get(app, ()):
        problem = judge(invoke(function_name, version, api_event(path, api_stage)), status, needle)
        if problem:
            failures.append(f"{function_name}:{version} GET {path}: {problem}")
    return failures


def handler(event, context):  # pragma: no cover - runs in Lambda (the rehearsal checks `checks` itself)
    import boto3

    codedeploy, lam = boto3.client("codedeploy"), boto3.client("lambda")
    deployment = codedeploy.get_deployment(deploymentId=event["DeploymentId"])["deploymentInfo"]
    content = deployment["revision"]["appSpecContent"]["content"]
    function_name, version = target(json.loads(content))

    def invoke(name: str, qualifier: str, payload: dict):
        answer = lam.invoke(FunctionName=name, Qualifier=qualifier, Payload=json.dumps(payload).encode())
        return json.loads(answer["Payload"].read() or b"null")

    try:
        state = lam.get_function_configuration(FunctionName=function_name, Qualifier=version)
        failures = [] if state.get("State", "Active") == "Active" else [
            f"{function_name}:{version} is {state['State']}"]
        failures += checks(function_name, version, invoke)
    except Exception as error:  # noqa: BLE001 - any error is a failed check, reported to CodeDeploy
        failures = [f"{type(error).__name__}: {error}"]
    for failure in failures:
        print(json.dumps({"level": "ERROR", "message": "pre-traffic check failed", "failure": failure}))
    codedeploy.put_lifecycle_event_hook_execution_status(
        deploymentId=event["DeploymentId"], lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
        status="Failed" if failures else "Succeeded")
    return {"failures": failures}
