"""Each Lambda function's IAM policy (shared/tools/deploy/iam.py) against what its code calls (tests/aws_calls.py).

Both ways: every boto3 operation the code can call is granted (a new call without a grant fails here,
naming its call site), and every granted action is one the code calls, or one Lambda or Athena takes
with the role (logs, event sources, VPC, the function's own parameters, Athena's catalog reads).
"""

from __future__ import annotations

import re

import pytest

from shared.tools.deploy import iam
from shared.tools.deploy.stages import VPC_APPS, local_stages, role_name
from tests.aws_calls import ROOT, Call, Scan, module_path, scan_function

ACCOUNT, REGION = "123456789012", "ap-northeast-2"


@pytest.fixture(scope="module")
def policies(resources) -> dict[str, dict]:
    return {app: iam.policy(app, "test", account_id=ACCOUNT, region=REGION, outputs=resources) for app in iam.APPS}


def granted(document: dict) -> set[str]:
    return iam.actions(document)


def missing_grants(app: str, scan: Scan, document: dict) -> list[str]:
    """Call sites whose action the policy does not grant (and that are not known exceptions)."""
    allowed = granted(document) | iam.NO_IAM | {action for (a, action) in iam.NOT_RUN_HERE if a == app}
    return [f"{call.path}:{call.line} {call.service}.{call.operation} needs {action}"
            for action, calls in scan.actions().items() if action not in allowed for call in calls]


def lambda_actions(app: str) -> set[str]:
    """What Lambda and AWS services do with the role, not the code: decided here from the wiring list."""
    events = local_stages()[app].get("events") or []
    sources = [e["event_source"]["arn"] for e in events if "event_source" in e]
    found = set(iam.LOG_ACTIONS) | set(iam.PARAMETER_ACTIONS)
    if any(arn.startswith("arn:aws:sqs:") for arn in sources):
        found |= set(iam.SQS_SOURCE_ACTIONS)
    if any(arn.startswith("arn:aws:dynamodb:") for arn in sources):
        found |= set(iam.STREAM_SOURCE_ACTIONS)
    if app in VPC_APPS:
        found |= set(iam.VPC_ACTIONS)
    if "athena:StartQueryExecution" in scan_function(app).actions():
        found |= set(iam.ATHENA_CALLER_ACTIONS)
    return found


# --- the scanner -----------------------------------------------------------------------------------


def test_scanner_finds_known_call_sites_through_every_kind_of_indirection():
    taskapp, reqsys = scan_function("taskapp"), scan_function("reqsys")
    expected_taskapp = [
        ("taskapp/store.py", "get_item", ("dynamodb:GetItem",)),  # through the factory store.ddb()
        ("taskapp/jobs.py", "update_item", ("dynamodb:UpdateItem",)),  # `ddb = store.ddb()`
        # a client passed to a method, then its paginator
        ("taskapp/analytics/engines.py", "get_query_results", ("athena:GetQueryResults",)),
        ("taskapp/analytics/engines.py", "stop_query_execution", ("athena:StopQueryExecution",)),
        ("taskapp/notifications.py", "transact_write_items", ("dynamodb:PutItem", "dynamodb:UpdateItem")),
        ("taskapp/notifications.py", "publish_batch", ("sns:Publish",)),  # client("sns").publish_batch(...)
        ("shared/platform/uploads.py", "generate_presigned_post", ("s3:PutObject",)),
        # `s3, bucket = client("s3"), ...`
        ("shared/platform/uploads.py", "copy_object", ("s3:GetObject", "s3:PutObject")),
        ("taskapp/analytics/export.py", "scan", ("dynamodb:Scan",)),  # in a function nested in another
        ("shared/platform/settings.py", "get_parameters_by_path", ("ssm:GetParametersByPath",)),
    ]
    for path, operation, actions in expected_taskapp:
        assert any(c.path == path and c.operation == operation and c.actions == actions for c in taskapp.calls), \
            (path, operation)
    # getattr(client("cognito-idp"), operation) in shared/platform/auth/cognito.py `_call`: its callers' literals
    cognito = {c.operation for c in reqsys.calls if c.path == "shared/platform/auth/cognito.py"}
    assert {"initiate_auth", "sign_up", "admin_add_user_to_group", "admin_update_user_attributes"} <= cognito
    assert any(c.operation == "change_message_visibility_batch" and c.actions == ("sqs:ChangeMessageVisibility",)
               for c in reqsys.calls)


@pytest.mark.parametrize("app", iam.APPS)
def test_every_client_the_code_makes_is_followed(app):
    """Every `client("...")` written in the function's modules is one the scanner followed to its
    calls (a client kept somewhere it cannot follow, e.g. an attribute or a dict, fails here)."""
    scan = scan_function(app)
    written = set()
    for module in scan.modules:
        path = module_path(module)
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"""\bclient\(\s*["']""", line):
                written.add((str(path.relative_to(ROOT)), number))
    assert written, "no client in the function's modules: the scanner lost its way"
    assert written <= scan.clients_made, sorted(written - scan.clients_made)


@pytest.mark.parametrize("app", iam.APPS)
def test_scanner_leaves_nothing_unexplained(app):
    scan = scan_function(app)
    # shared.platform.db and shared.platform.outbox import the app package of the running function by name, which
    # is a root of that function already
    own_app = r"shared\.(db:\d+ import_module\(app_name\)|outbox:\d+ import_module\(f'\{app_name\}\.models'\))"
    for item in scan.unresolved:
        assert re.fullmatch(own_app, item), item
        assert app in ("reqsys", "childsys"), item
    # a module that never runs in Lambda may be imported only for its constants
    for importer, module, names in scan.skipped_imports:
        assert names and all(name.isupper() for name in names), (importer, module, names)
    assert not any(m.startswith("shared.tools") for m in scan.modules)


def test_a_new_call_without_a_grant_fails_naming_its_call_site(policies):
    scan = scan_function("childsys")
    assert missing_grants("childsys", scan, policies["childsys"]) == []
    extra = Scan(calls=[*scan.calls, Call("childsys/services.py", 42, "sqs", "purge_queue", ("sqs:PurgeQueue",))])
    assert missing_grants("childsys", extra, policies["childsys"]) == [
        "childsys/services.py:42 sqs.purge_queue needs sqs:PurgeQueue"]


# --- the policies against the code ---------------------------------------------------------------


@pytest.mark.parametrize("app", iam.APPS)
def test_every_call_the_code_makes_is_granted(app, policies):
    assert missing_grants(app, scan_function(app), policies[app]) == []


@pytest.mark.parametrize("app", iam.APPS)
def test_every_grant_is_called_by_the_code_or_used_by_lambda(app, policies):
    called = set(scan_function(app).actions())
    unused = granted(policies[app]) - called - lambda_actions(app)
    assert unused == set(), f"{app} is granted actions its code never calls: {sorted(unused)}"


def test_known_exceptions_are_still_needed(policies):
    """Each NOT_RUN_HERE entry names a call the scanner still finds and the policy still omits;
    the public Cognito operations are never granted."""
    for (app, action), reason in iam.NOT_RUN_HERE.items():
        assert action in scan_function(app).actions(), (app, action, "no longer called: drop the exception")
        assert action not in granted(policies[app]), (app, action)
        assert reason
    for app in iam.APPS:
        assert not granted(policies[app]) & iam.NO_IAM


def test_no_wildcard_actions_and_resource_star_only_for_vpc_interfaces(policies):
    for app, document in policies.items():
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            assert all("*" not in action for action in statement["Action"]), (app, statement)
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if "*" in resources:
                # ec2:Describe* have no resource-level permissions (AWSLambdaVPCAccessExecutionRole)
                assert app in VPC_APPS and set(statement["Action"]) == set(iam.VPC_ACTIONS), (app, statement)
            else:
                # every other grant names resources of this account (S3 ARNs have no account)
                assert all(f":{ACCOUNT}:" in r or r.startswith("arn:aws:s3:::daycare-test-")
                           for r in resources), (app, statement)


def test_policy_counts(policies, capsys):
    """Prints each function's action count and call sites (a figure for the report)."""
    with capsys.disabled():
        for app in iam.APPS:
            scan = scan_function(app)
            print(f"\n  {app:<9} {len(granted(policies[app])):>3} actions granted "
                  f"({len(scan.actions())} found in code at {len(scan.calls)} call sites, {len(scan.modules)} modules)")
    assert all(granted(policies[app]) for app in iam.APPS)


# --- the roles on the emulator ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def roles(resources):
    """ensure_roles run twice for a stage of its own (provisioning may already make the test stage's)."""
    from shared.platform.aws import client
    from shared.tools.provision import Result

    first = Result(outputs=dict(resources))
    iam.ensure_roles("iamtest", first)
    second = Result(outputs=dict(resources))
    iam.ensure_roles("iamtest", second)
    return first, second, client("iam")


def test_ensure_roles_creates_one_role_per_function_and_a_second_run_changes_nothing(roles, resources):
    first, second, client = roles
    assert sorted(c for c in first.changes if c.startswith("created role")) == sorted(
        f"created role {role_name(app, 'iamtest')}" for app in iam.APPS)
    assert second.changes == []
    for app in iam.APPS:
        name = role_name(app, "iamtest")
        role = client.get_role(RoleName=name)["Role"]
        assert first.outputs[f"{app.upper()}_ROLE_ARN"] == role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/{name}"
        assert role["AssumeRolePolicyDocument"]["Statement"] == [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
        assert client.list_role_policies(RoleName=name)["PolicyNames"] == [iam.POLICY_NAME]
        stored = client.get_role_policy(RoleName=name, PolicyName=iam.POLICY_NAME)["PolicyDocument"]
        assert stored == iam.policy(app, "iamtest", account_id=ACCOUNT, region=REGION, outputs=resources)


def test_ensure_roles_puts_back_a_role_changed_by_hand(roles, resources):
    from shared.tools.provision import Result

    _, _, client = roles
    name = role_name("pipeline", "iamtest")
    client.put_role_policy(RoleName=name, PolicyName=iam.POLICY_NAME, PolicyDocument=(
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'))
    client.put_role_policy(RoleName=name, PolicyName="extra", PolicyDocument=(
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}'))
    result = Result(outputs=dict(resources))
    iam.ensure_roles("iamtest", result)
    assert result.changes == [f"updated policy of role {name}", f"removed policy extra from role {name}"]
    assert client.list_role_policies(RoleName=name)["PolicyNames"] == [iam.POLICY_NAME]


def _decide(client, app: str, action: str, resource: str) -> str:
    """moto's IAM policy evaluator on the role's stored inline policy: PERMITTED or NEUTRAL (denied)."""
    import json

    from moto.iam.access_control import IAMPolicy

    stored = client.get_role_policy(RoleName=role_name(app, "iamtest"), PolicyName=iam.POLICY_NAME)["PolicyDocument"]
    return IAMPolicy(json.dumps(stored)).is_action_permitted(action, resource).name


def test_each_role_reads_only_its_own_parameters_and_resources(roles, resources):
    *_, client = roles
    parameter = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/daycare/iamtest"
    assert _decide(client, "reqsys", "ssm:GetParametersByPath", f"{parameter}/reqsys") == "PERMITTED"
    assert _decide(client, "reqsys", "ssm:GetParametersByPath", f"{parameter}/reqsys/SECRET_KEY") == "PERMITTED"
    assert _decide(client, "reqsys", "ssm:GetParametersByPath", f"{parameter}/childsys") == "NEUTRAL"
    assert _decide(client, "reqsys", "ssm:GetParametersByPath", f"{parameter}/childsys/SECRET_KEY") == "NEUTRAL"
    assert _decide(client, "reqsys", "ssm:GetParametersByPath", f"{parameter}") == "NEUTRAL"
    assert _decide(client, "childsys", "ssm:GetParametersByPath", f"{parameter}/reqsys") == "NEUTRAL"
    tasks = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{resources['TASKS_TABLE']}"
    assert _decide(client, "taskapp", "dynamodb:Query", f"{tasks}/index/gsi1") == "PERMITTED"
    assert _decide(client, "pipeline", "dynamodb:PutItem", tasks) == "NEUTRAL"
    events = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{resources['EVENTS_TABLE']}"
    assert _decide(client, "pipeline", "dynamodb:PutItem", events) == "PERMITTED"
    assert _decide(client, "reqsys", "dynamodb:PutItem", events) == "NEUTRAL"  # the monitor only reads
    # only reqsys's sign-up may put a user in a group (a group is a role: admins)
    pool = resources["COGNITO_USERPOOL_ARN"]
    assert _decide(client, "reqsys", "cognito-idp:AdminAddUserToGroup", pool) == "PERMITTED"
    assert _decide(client, "childsys", "cognito-idp:AdminAddUserToGroup", pool) == "NEUTRAL"
    # proofs are parents' documents: childsys downloads them, never writes; taskapp never sees them
    proof = f"arn:aws:s3:::{resources['UPLOADS_BUCKET']}/proofs/x.pdf"
    assert _decide(client, "childsys", "s3:GetObject", proof) == "PERMITTED"
    assert _decide(client, "childsys", "s3:PutObject", proof) == "NEUTRAL"
    assert _decide(client, "taskapp", "s3:GetObject", proof) == "NEUTRAL"
    # the monitor reads dead letters, never a live queue's messages
    assert _decide(client, "reqsys", "sqs:ReceiveMessage", resources["EMAIL_DLQ_ARN"]) == "PERMITTED"
    assert _decide(client, "reqsys", "sqs:ReceiveMessage", resources["EMAIL_QUEUE_ARN"]) == "NEUTRAL"
    # each function logs to its own group only
    logs = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/daycare-"
    assert _decide(client, "pipeline", "logs:PutLogEvents", f"{logs}pipeline-iamtest:log-stream:x") == "PERMITTED"
    assert _decide(client, "pipeline", "logs:PutLogEvents", f"{logs}reqsys-iamtest:log-stream:x") == "NEUTRAL"


def test_event_source_grants_follow_the_wiring_list(policies, resources):
    """Lambda reads each SQS source and the stream with the function's role: the queues of the
    function's events in zappa_settings.json, and no other."""
    def statement(app, sid):
        return next((s for s in policies[app]["Statement"] if s["Sid"] == sid), None)

    assert statement("taskapp", "EventSourceQueues")["Resource"] == sorted(
        [resources["TASK_NOTIFICATIONS_QUEUE_ARN"], resources["TASK_JOBS_QUEUE_ARN"]])
    assert statement("pipeline", "EventSourceQueues")["Resource"] == sorted(
        resources[f"{k}_QUEUE_ARN"] for k in ("INTEGRATED_EVENTS", "EMAIL", "TO_CHILDSYS", "TO_REQSYS"))
    stream = statement("pipeline", "EventSourceStream")
    assert stream["Resource"] == [resources["EVENTS_TABLE_STREAM_ARN"].split("/stream/")[0] + "/stream/*"]
    for app in ("reqsys", "childsys", "analytics"):
        assert statement(app, "EventSourceQueues") is None and statement(app, "EventSourceStream") is None
