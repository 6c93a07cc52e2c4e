"""A least-privilege IAM role per Lambda function: `policy(app, stage, ...)` and `ensure_roles(stage, result)`.

Each function (APPS, the stages of zappa_settings.json) gets its own role, `stages.role_name(app, stage)`,
trusted by lambda.amazonaws.com only, with one inline policy granting exactly:
  - the actions its code calls (tests/aws_calls.py finds them; tests/deploy/test_iam.py checks both ways),
    each on the resources that code uses, named from the provisioning outputs;
  - CloudWatch Logs on its own log group;
  - what Lambda itself does with the role: read and delete from the function's SQS event sources,
    read its DynamoDB stream, and (reqsys, childsys: RDS MySQL in a VPC) manage the VPC interfaces;
  - its own SSM parameters, /daycare/<stage>/<app>/ (secrets read at cold start by shared/platform/settings.py).
    SecureStrings use the account's aws/ssm key, whose key policy already lets the account's roles
    decrypt through SSM: no kms grant.

`Resource: "*"` appears once, where AWS requires it: the EC2 network-interface actions of VPC access
(ec2:Describe* have no resource-level permissions; it is what AWSLambdaVPCAccessExecutionRole grants).

Not granted, although the code contains the call (tests/deploy/test_iam.py keeps these lists current):
  - Cognito's public-client operations (NO_IAM): AWS does not evaluate IAM for them at all.
  - NOT_RUN_HERE: calls in a module the function imports, on a path that function never takes
    (the scanner works per module).
Zappa's keep_warm is off and its schedules are EventBridge rules invoking the function: no grant.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from shared.tools.deploy.stages import LOCAL, VPC_APPS, lambda_name, local_stages, parameter_path, role_name

APPS = ("reqsys", "childsys", "taskapp", "pipeline", "analytics")
POLICY_NAME = "least-privilege"
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}

# What Lambda's event source mappings do with the function's role.
SQS_SOURCE_ACTIONS = ("sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                      "sqs:ReceiveMessage")
STREAM_SOURCE_ACTIONS = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                         "dynamodb:ListStreams")
LOG_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
# AWSLambdaVPCAccessExecutionRole's actions: Lambda creates and removes the function's interfaces.
VPC_ACTIONS = ("ec2:AssignPrivateIpAddresses", "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface",
               "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:UnassignPrivateIpAddresses")
PARAMETER_ACTIONS = ("ssm:GetParametersByPath",)
# Athena runs a query with the caller's permissions on the Glue catalog and the S3 data and results.
ATHENA_CALLER_ACTIONS = ("glue:GetDatabase", "glue:GetPartitions", "glue:GetTable", "s3:GetBucketLocation")

# Cognito user-pool operations made with a public app client: "Amazon Cognito doesn't evaluate IAM
# policies in requests for this API operation" (API reference), so no policy can grant or deny them.
NO_IAM = {
    "cognito-idp:ConfirmForgotPassword", "cognito-idp:ConfirmSignUp", "cognito-idp:ForgotPassword",
    "cognito-idp:InitiateAuth", "cognito-idp:RevokeToken", "cognito-idp:SignUp",
}
# (app, action) -> why the function never makes a call its modules contain.
NOT_RUN_HERE: dict[tuple[str, str], str] = {
    ("childsys", "s3:PutObject"): "childsys takes only presigned_get from shared.platform.uploads (a proof's link)",
    ("childsys", "s3:DeleteObject"): "childsys takes only presigned_get from shared.platform.uploads (a proof's link)",
    ("childsys", "cognito-idp:AdminAddUserToGroup"): "only reqsys's sign-up puts new users in a group (parents)",
    ("taskapp", "cognito-idp:AdminAddUserToGroup"): "only reqsys's sign-up puts new users in a group (parents)",
    ("analytics", "lambda:InvokeFunction"): "taskapp.analytics.export.request_export runs in taskapp (the admin "
                                            "button); the analytics function runs only `handler`",
    **{("analytics", action): "the analytics function serves no pages: shared.platform.auth's browser sessions "
                              "(auth/sessions.py), which its modules import with Identity, never run there"
       for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem")},
    ("taskapp", "dynamodb:Scan"): "the export's table scan runs in taskapp only locally (request_export); in "
                                  "AWS taskapp invokes the analytics function",
}


def _account_arn(service: str, region: str, account_id: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{account_id}:{resource}"


def _statement(sid: str, actions, resources) -> dict:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(set(actions)),
            "Resource": resources if isinstance(resources, str) else sorted(set(resources))}


def _queue_arn(outputs: Mapping[str, str], key: str) -> str:
    return outputs[f"{key}_QUEUE_ARN"]


def _queue_keys(outputs: Mapping[str, str]) -> list[str]:
    return sorted(k.removesuffix("_QUEUE_ARN") for k in outputs if k.endswith("_QUEUE_ARN"))


def event_sources(app: str, outputs: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(SQS queue ARNs, DynamoDB stream ARN patterns) of the function's event sources: the local
    stage's wiring (the one list), each local resource found in the outputs by its name."""
    prefix = f"daycare-{outputs.get('STAGE', LOCAL)}-"  # the provisioned stage's resource names
    queues, streams = [], []
    for event in local_stages()[app].get("events") or []:
        source = (event.get("event_source") or {}).get("arn")
        if not source:
            continue
        name = source.split(":")[5].replace(f"daycare-{LOCAL}-", prefix)
        if source.startswith("arn:aws:sqs:"):
            found = [arn for key, arn in outputs.items() if key.endswith("_QUEUE_ARN") and arn.endswith(f":{name}")]
        else:
            table = name.split("/")[1]
            found = [arn.split("/stream/")[0] + "/stream/*" for key, arn in outputs.items()
                     if key.endswith("_STREAM_ARN") and arn.split("/")[1] == table]
        if not found:
            raise KeyError(f"{app}: no provisioning output for its event source {name}; provision first")
        (queues if source.startswith("arn:aws:sqs:") else streams).append(found[0])
    return queues, streams


def policy(app: str, stage: str, *, account_id: str, region: str, outputs: Mapping[str, str]) -> dict:
    """The function's policy document, on the resources named by the provisioning outputs."""
    if app not in APPS:
        raise ValueError(f"unknown function {app!r}; one of {', '.join(APPS)}")

    def arn(service: str, resource: str) -> str:
        return _account_arn(service, region, account_id, resource)

    def table(key: str, indexes: bool = False) -> list[str]:
        base = arn("dynamodb", f"table/{outputs[key]}")
        return [base, f"{base}/index/*"] if indexes else [base]

    def bucket(key: str) -> str:
        return f"arn:aws:s3:::{outputs[key]}"

    def objects(key: str) -> str:
        return f"arn:aws:s3:::{outputs[key]}/*"

    function = lambda_name(app, stage)
    log_group = arn("logs", f"log-group:/aws/lambda/{function}")
    path = parameter_path(app, stage).rstrip("/")
    statements = [
        _statement("Logs", LOG_ACTIONS, [log_group, f"{log_group}:*"]),
        _statement("OwnParameters", PARAMETER_ACTIONS, [arn("ssm", f"parameter{path}"),
                                                        arn("ssm", f"parameter{path}/*")]),
    ]
    queues, streams = event_sources(app, outputs)
    if queues:
        statements.append(_statement("EventSourceQueues", SQS_SOURCE_ACTIONS, queues))
    if streams:
        statements.append(_statement("EventSourceStream", STREAM_SOURCE_ACTIONS, streams))
    if app in VPC_APPS:
        statements.append(_statement("VpcNetworkInterfaces", VPC_ACTIONS, "*"))

    user_pool = outputs.get("COGNITO_USERPOOL_ARN") or arn("cognito-idp", f"userpool/{outputs['COGNITO_USERPOOL_ID']}")
    # the profile pages read and change the signed-in user; only reqsys's sign-up puts a new user in
    # a group (parents), so only reqsys may: elsewhere it would let a bug make someone an admin
    profile = ["cognito-idp:AdminGetUser", "cognito-idp:AdminUpdateUserAttributes"]
    if app in ("reqsys", "childsys", "taskapp"):
        signup = ["cognito-idp:AdminAddUserToGroup"] if app == "reqsys" else []
        statements.append(_statement("Users", profile + signup, [user_pool]))
        # browser sessions' records and sign-in failure counts (shared/platform/auth/sessions.py, throttle.py)
        statements.append(_statement("Sessions", ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                                                  "dynamodb:DeleteItem"], table("SESSIONS_TABLE")))
    if app in ("reqsys", "childsys"):
        # the outbox relay publishes the app's events (shared.platform.outbox -> shared.platform.events)
        statements.append(_statement("PublishEvents", ["sqs:SendMessage"], [_queue_arn(outputs, "INTEGRATED_EVENTS")]))
    if app == "reqsys":
        # proofs: presigned upload, copy to <key>.checked, check, delete (shared.platform.uploads)
        statements.append(_statement("Proofs", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                                     [objects("UPLOADS_BUCKET")]))
        # the admins' pipeline monitor (shared.pipeline.monitor): depths of every queue, dead letters read and
        # released, redriven to their source queue, and the events table's timelines
        all_queues = [_queue_arn(outputs, k) for k in _queue_keys(outputs)]
        dlqs = [outputs[f"{k}_DLQ_ARN"] for k in _queue_keys(outputs)]
        statements += [
            _statement("MonitorDepths", ["sqs:GetQueueAttributes"], all_queues + dlqs),
            _statement("MonitorDeadLetters", ["sqs:ReceiveMessage", "sqs:ChangeMessageVisibility",
                                              "sqs:DeleteMessage"], dlqs),
            _statement("MonitorRedrive", ["sqs:SendMessage"], all_queues),
            _statement("MonitorTimeline", ["dynamodb:Query"], table("EVENTS_TABLE")),
            # the confirmation code for an address a parent gave for notices (reqsys.services.contacts)
            _statement("ContactCode", ["ses:SendEmail"], [
                arn("ses", f"identity/{outputs['SES_SENDER']}"),
                arn("ses", f"identity/{outputs['SES_SENDER'].split('@')[-1]}")]),
        ]
        # the stream's on-failure queue: its batch descriptions are read, and replayed from the events table to
        # the bus; the last failure's reason of a dead letter is read from the idempotency table
        stream_dlqs = [arn for key, arn in outputs.items() if key.endswith("_STREAM_DLQ_ARN")]
        if stream_dlqs:
            statements += [
                _statement("MonitorStreamFailures", ["sqs:GetQueueAttributes", "sqs:ReceiveMessage",
                                                     "sqs:ChangeMessageVisibility", "sqs:DeleteMessage"], stream_dlqs),
                _statement("MonitorReplay", ["dynamodb:Scan"], table("EVENTS_TABLE")),
                _statement("MonitorReplayBus", ["events:PutEvents"], [
                    outputs.get("EVENT_BUS_ARN") or arn("events", f"event-bus/{outputs['EVENT_BUS_NAME']}")]),
            ]
        statements.append(_statement("MonitorFailureReasons", ["dynamodb:BatchGetItem"], table("IDEMPOTENCY_TABLE")))
    if app == "childsys":
        statements.append(_statement("ProofDownloads", ["s3:GetObject"], [objects("UPLOADS_BUCKET")]))
    if app == "taskapp":
        statements += [
            _statement("Tasks", ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                                 "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:BatchWriteItem"],
                       table("TASKS_TABLE", indexes=True)),
            _statement("Jobs", ["sqs:SendMessage"], [_queue_arn(outputs, "TASK_JOBS")]),
            _statement("Notifications", ["sns:Publish", "sns:Subscribe", "sns:Unsubscribe",
                                         "sns:GetSubscriptionAttributes"],
                       # subscriptions are named <topic ARN>:<id>
                       [outputs["TASK_TOPIC_ARN"], outputs["TASK_TOPIC_ARN"] + ":*"]),
            _statement("TaskFiles", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                       [objects("TASK_FILES_BUCKET")]),
            _statement("TaskFilesList", ["s3:ListBucket"], [bucket("TASK_FILES_BUCKET")]),
            # reports: Athena queries (their results and the exported data are in the analytics
            # bucket, read as the caller), the figures and CSV written next to them
            _statement("Reports", ["athena:StartQueryExecution", "athena:GetQueryExecution",
                                   "athena:GetQueryResults", "athena:StopQueryExecution"],
                       [arn("athena", f"workgroup/{outputs['ATHENA_WORKGROUP']}")]),
            _statement("ReportCatalog", [a for a in ATHENA_CALLER_ACTIONS if a.startswith("glue:")],
                       [arn("glue", "catalog"), arn("glue", f"database/{outputs['GLUE_DATABASE']}"),
                        arn("glue", f"table/{outputs['GLUE_DATABASE']}/*")]),
            _statement("ReportData", ["s3:GetObject", "s3:PutObject"], [objects("ANALYTICS_BUCKET")]),
            _statement("ReportDataList", ["s3:ListBucket", "s3:GetBucketLocation"], [bucket("ANALYTICS_BUCKET")]),
            _statement("StartExport", ["lambda:InvokeFunction"],
                       [arn("lambda", f"function:{lambda_name('analytics', stage)}")]),
        ]
    if app == "pipeline":
        # the stream mapping's on-failure destination: Lambda sends a failed batch's description as the function
        statements += [_statement("StreamFailures", ["sqs:SendMessage"],
                                  [arn for key, arn in outputs.items() if key.endswith("_STREAM_DLQ_ARN")])
                       ] if any(key.endswith("_STREAM_DLQ_ARN") for key in outputs) else []
        statements += [
            _statement("Ingest", ["dynamodb:PutItem"], table("EVENTS_TABLE")),
            _statement("Route", ["events:PutEvents"], [outputs.get("EVENT_BUS_ARN")
                                                       or arn("events", f"event-bus/{outputs['EVENT_BUS_NAME']}")]),
            # claims (shared.platform.idempotency) and the last failure's reason of a message (shared.platform.batch)
            _statement("EffectsOnce", ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                                       "dynamodb:DeleteItem"], table("IDEMPOTENCY_TABLE")),
            # SES authorises the sending identity: the address, or its domain if that is what is verified
            _statement("Email", ["ses:SendRawEmail"], [arn("ses", f"identity/{outputs['SES_SENDER']}"),
                                                       arn("ses", f"identity/{outputs['SES_SENDER'].split('@')[-1]}")]),
        ]
    if app == "analytics":
        statements += [
            _statement("ReadTasks", ["dynamodb:Scan"], table("TASKS_TABLE")),
            _statement("WritePartitions", ["s3:PutObject", "s3:DeleteObject"], [objects("ANALYTICS_BUCKET")]),
            _statement("ListPartitions", ["s3:ListBucket"], [bucket("ANALYTICS_BUCKET")]),
        ]
    return {"Version": "2012-10-17", "Statement": statements}


def actions(document: Mapping) -> set[str]:
    return {action for statement in document["Statement"] for action in statement["Action"]}


def _same_document(current, wanted: dict) -> bool:
    """IAM returns documents URL-decoded into dicts (boto3) or as JSON text: compare by meaning."""
    if isinstance(current, str):
        current = json.loads(current)
    return current == wanted


def ensure_roles(stage: str, result, *, account_id: str | None = None, region: str | None = None) -> None:
    """Create or update every function's role and inline policy, idempotently (a second run changes
    nothing); records changes in `result` (a shared.tools.provision.Result) and outputs `<APP>_ROLE_ARN`."""
    from shared.platform.aws import client
    from shared.platform.aws import region as default_region

    iam = client("iam")
    account_id = account_id or client("sts").get_caller_identity()["Account"]
    region = region or default_region()
    for app in APPS:
        name = role_name(app, stage)
        try:
            role = iam.get_role(RoleName=name)["Role"]
        except iam.exceptions.NoSuchEntityException:
            role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
                                   Description=f"Lambda function {lambda_name(app, stage)} (shared/tools/deploy/iam.py)",  # noqa: E501
                                   Tags=[{"Key": "project", "Value": "daycare"},
                                         {"Key": "stage", "Value": stage}])["Role"]
            result.changes.append(f"created role {name}")
        else:
            if not _same_document(role.get("AssumeRolePolicyDocument"), TRUST_POLICY):
                iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(TRUST_POLICY))
                result.changes.append(f"updated trust policy of role {name}")
        wanted = policy(app, stage, account_id=account_id, region=region, outputs=result.outputs)
        try:
            current = iam.get_role_policy(RoleName=name, PolicyName=POLICY_NAME)["PolicyDocument"]
        except iam.exceptions.NoSuchEntityException:
            current = None
        if current is None or not _same_document(current, wanted):
            iam.put_role_policy(RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(wanted))
            result.changes.append(f"{'set' if current is None else 'updated'} policy of role {name}")
        # nothing else may widen the role: inline policies and managed ones we did not put there go
        for other in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            if other != POLICY_NAME:
                iam.delete_role_policy(RoleName=name, PolicyName=other)
                result.changes.append(f"removed policy {other} from role {name}")
        for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
            result.changes.append(f"detached {attached['PolicyName']} from role {name}")
        result.outputs[f"{app.upper()}_ROLE_ARN"] = role["Arn"]
