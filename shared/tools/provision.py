"""Every AWS resource the system needs, declared once and made to match: `python -m shared.tools.provision`.

Idempotent: each resource is looked up by name, created when missing, updated where it
differs from the spec, and otherwise left alone, so a second run reports no changes.
Plain boto3 rather than CloudFormation because moto's CloudFormation silently skips
Cognito, SES, Glue and Athena, and the same code must run on the emulator and in AWS.

The outputs (ids, URLs, ARNs) are written to `shared.platform.settings.outputs_path(stage)` under
the environment-variable names the apps read (see shared/platform/settings.py).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from shared.pipeline.stream import (
    EVENT_SOURCE,
    MAXIMUM_RECORD_AGE_SECONDS,
    MAXIMUM_RETRY_ATTEMPTS,
    failure_queue_name,
)
from shared.platform.aws import MAX_RECEIVES, client, region
from shared.platform.batch import PIPELINE_MAX_RECEIVES
from shared.platform.settings import outputs_path

LAMBDA_TIMEOUT = 30
GROUPS = ("parents", "staff", "admins", "employees")  # employees: agency staff, who use taskapp
APP_CLIENTS = ("reqsys", "childsys", "taskapp")


# --- the spec ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Queue:
    key: str  # output prefix, e.g. EMAIL -> EMAIL_QUEUE_URL
    name: str
    fifo: bool = False
    # receives before the DLQ: enough for the growing retry delays (shared.platform.batch) to ride out an
    # hour's outage; taskapp's jobs count their attempts against MAX_RECEIVES
    max_receives: int = PIPELINE_MAX_RECEIVES


@dataclass(frozen=True)
class Table:
    key: str  # output name, e.g. EVENTS_TABLE
    name: str
    hash_key: str
    range_key: str | None = None
    stream: bool = False
    ttl_attribute: str | None = None
    indexes: tuple[tuple[str, str, str | None], ...] = ()  # (index name, hash key, range key)


@dataclass(frozen=True)
class Rule:
    name: str
    detail_types: tuple[str, ...]
    target_queues: tuple[str, ...]  # Queue.key values


@dataclass(frozen=True)
class Bucket:
    key: str
    purpose: str
    browser_upload: bool = False
    public_read: bool = False  # the static files (fingerprinted, public by nature); nothing else


@dataclass
class Spec:
    prefix: str
    queues: list[Queue]
    tables: list[Table]
    bus: str
    rules: list[Rule]
    topic: str
    topic_queue: str  # Queue.key subscribed to the topic
    buckets: list[Bucket]
    user_pool: str
    ses_sender: str
    glue_database: str
    workgroup: str


def spec(stage: str, account_id: str) -> Spec:
    prefix = f"daycare-{stage}"
    return Spec(
        prefix=prefix,
        queues=[
            Queue("INTEGRATED_EVENTS", f"{prefix}-integrated-events", fifo=True),
            Queue("EMAIL", f"{prefix}-email"),
            Queue("TO_CHILDSYS", f"{prefix}-to-childsys"),
            Queue("TO_REQSYS", f"{prefix}-to-reqsys"),
            Queue("TASK_NOTIFICATIONS", f"{prefix}-task-notifications"),
            Queue("TASK_JOBS", f"{prefix}-task-jobs", max_receives=MAX_RECEIVES),
        ],
        tables=[
            Table("EVENTS_TABLE", f"{prefix}-events", "request_id", "event_id", stream=True),
            Table("IDEMPOTENCY_TABLE", f"{prefix}-idempotency", "id", ttl_attribute="expiration"),
            # browser sessions' records and sign-in failure counts (shared/platform/auth/sessions.py, throttle.py)
            Table("SESSIONS_TABLE", f"{prefix}-sessions", "id", ttl_attribute="expires"),
            # taskapp: key and index design in taskapp/services.py
            # (notifications and their outbox items expire by TTL)
            Table("TASKS_TABLE", f"{prefix}-tasks", "pk", "sk", ttl_attribute="expiration",
                  indexes=tuple((f"gsi{i}", f"gsi{i}pk", f"gsi{i}sk") for i in "1234")),
        ],
        bus=f"{prefix}-waitlist",
        # (the first two keep their original names so no stale rule is left behind)
        rules=[
            Rule("request-cancel", ("REQUEST", "CANCEL", "CONFIRM", "DECLINE", "EXPIRE", "WITHDRAW"),
                 ("EMAIL", "TO_CHILDSYS")),
            Rule("accept-reject", ("ACCEPT", "OFFER", "REJECT", "VERIFY"), ("EMAIL", "TO_REQSYS")),
            Rule("reminders", ("REMIND",), ("EMAIL",)),
            Rule("proofs", ("PROOF",), ("TO_CHILDSYS",)),
        ],
        topic=f"{prefix}-task-notifications",
        topic_queue="TASK_NOTIFICATIONS",
        buckets=[
            Bucket("UPLOADS_BUCKET", f"daycare-{stage}-{account_id}-uploads", browser_upload=True),
            Bucket("TASK_FILES_BUCKET", f"daycare-{stage}-{account_id}-task-files", browser_upload=True),
            Bucket("ANALYTICS_BUCKET", f"daycare-{stage}-{account_id}-analytics"),
            # stylesheets, fonts, scripts and icons: browsers fetch them here, not through a Lambda
            Bucket("STATIC_BUCKET", f"daycare-{stage}-{account_id}-static", public_read=True),
        ],
        user_pool=f"{prefix}-users",
        ses_sender=_env("SES_SENDER", "no-reply@daycare.example"),
        glue_database=f"daycare_{stage.replace('-', '_')}_analytics",
        workgroup=f"{prefix}-reports",
    )


def _env(name: str, default: str) -> str:
    import os

    return os.environ.get(name) or default


# --- applying it ----------------------------------------------------------------------------------


@dataclass
class Result:
    outputs: dict[str, str] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)

    def queues(self) -> list[tuple[str, str, str]]:
        """(key, queue URL, DLQ URL) for every queue, for monitoring pages."""
        keys = [k.removesuffix("_QUEUE_URL") for k in self.outputs if k.endswith("_QUEUE_URL")]
        return [(k, self.outputs[f"{k}_QUEUE_URL"], self.outputs[f"{k}_DLQ_URL"]) for k in keys]


def apply(stage: str) -> Result:
    account_id = client("sts").get_caller_identity()["Account"]
    s = spec(stage, account_id)
    result = Result(outputs={"STAGE": stage})
    for queue in s.queues:
        ensure_queue(queue, result)
    for table in s.tables:
        ensure_table(table, result)
    for table in s.tables:
        if table.stream:
            ensure_stream_failure_queue(table, result)
    ensure_bus_and_rules(s, result)
    ensure_topic(s, result)
    for bucket in s.buckets:
        ensure_bucket(bucket, result)
    publish_static(result)
    ensure_user_pool(s, result)
    ensure_ses_identity(s, result)
    ensure_analytics(s, result)
    ensure_sign_in_limit(s, result)
    path = outputs_path(stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.outputs, indent=2, sort_keys=True) + "\n")
    return result


def _queue_arn(url: str) -> str:
    return client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _same(current: str | None, wanted: str) -> bool:
    """SQS returns attributes as strings and policies as JSON text: compare by meaning."""
    if current is None:
        return False
    try:
        return json.loads(current) == json.loads(wanted)
    except (ValueError, TypeError):
        return current == wanted


def _ensure_sqs(name: str, attributes: dict[str, str], result: Result) -> str:
    sqs = client("sqs")
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        result.changes.append(f"created queue {name}")
        return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    settable = {k: v for k, v in attributes.items() if k not in ("FifoQueue",)}
    differing = {k: v for k, v in settable.items() if not _same(current.get(k), v)}
    if differing:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=differing)
        result.changes.append(f"updated queue {name}: {', '.join(sorted(differing))}")
    return url


def ensure_queue(queue: Queue, result: Result) -> None:
    suffix = ".fifo" if queue.fifo else ""
    fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "false"} if queue.fifo else {}
    dlq_url = _ensure_sqs(f"{queue.name}-dlq{suffix}", {**fifo, "MessageRetentionPeriod": "1209600"}, result)
    dlq_arn = _queue_arn(dlq_url)
    url = _ensure_sqs(
        f"{queue.name}{suffix}",
        {
            **fifo,
            # Lambda's advice: at least six times the function timeout
            "VisibilityTimeout": str(6 * LAMBDA_TIMEOUT),
            "MessageRetentionPeriod": "345600",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.max_receives}),
        },
        result,
    )
    arn = _queue_arn(url)
    result.outputs.update({
        f"{queue.key}_QUEUE_URL": url, f"{queue.key}_QUEUE_ARN": arn,
        f"{queue.key}_DLQ_URL": dlq_url, f"{queue.key}_DLQ_ARN": dlq_arn,
    })


def ensure_table(table: Table, result: Result) -> None:
    ddb = client("dynamodb")
    keys = [{"AttributeName": table.hash_key, "KeyType": "HASH"}]
    attributes = {table.hash_key}
    if table.range_key:
        keys.append({"AttributeName": table.range_key, "KeyType": "RANGE"})
        attributes.add(table.range_key)
    for _, hash_key, range_key in table.indexes:
        attributes |= {hash_key} | ({range_key} if range_key else set())
    definitions = [{"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)]
    indexes = [
        {
            "IndexName": name,
            "KeySchema": [{"AttributeName": h, "KeyType": "HASH"}]
            + ([{"AttributeName": r, "KeyType": "RANGE"}] if r else []),
            "Projection": {"ProjectionType": "ALL"},
        }
        for name, h, r in table.indexes
    ]
    stream = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"} if table.stream else None
    try:
        described = ddb.describe_table(TableName=table.name)["Table"]
    except ddb.exceptions.ResourceNotFoundException:
        kwargs = {"TableName": table.name, "KeySchema": keys, "AttributeDefinitions": definitions,
                  "BillingMode": "PAY_PER_REQUEST"}
        if indexes:
            kwargs["GlobalSecondaryIndexes"] = indexes
        if stream:
            kwargs["StreamSpecification"] = stream
        described = ddb.create_table(**kwargs)["TableDescription"]
        ddb.get_waiter("table_exists").wait(TableName=table.name)
        result.changes.append(f"created table {table.name}")
    else:
        current_stream = described.get("StreamSpecification") or {}
        if stream and not current_stream.get("StreamEnabled"):
            described = ddb.update_table(TableName=table.name, StreamSpecification=stream)["TableDescription"]
            result.changes.append(f"enabled stream on {table.name}")
        existing = {i["IndexName"] for i in described.get("GlobalSecondaryIndexes", [])}
        for index in indexes:
            if index["IndexName"] not in existing:
                ddb.update_table(TableName=table.name, AttributeDefinitions=definitions,
                                 GlobalSecondaryIndexUpdates=[{"Create": index}])
                result.changes.append(f"added index {index['IndexName']} to {table.name}")
    if table.ttl_attribute:
        ttl = ddb.describe_time_to_live(TableName=table.name)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            ddb.update_time_to_live(TableName=table.name, TimeToLiveSpecification={
                "Enabled": True, "AttributeName": table.ttl_attribute})
            result.changes.append(f"enabled TTL on {table.name}")
    result.outputs[table.key] = table.name
    if table.stream:
        result.outputs[f"{table.key}_STREAM_ARN"] = ddb.describe_table(TableName=table.name)["Table"][
            "LatestStreamArn"]


def _allow_send(queue_url: str, queue_arn: str, principal: str, source_arns: list[str], result: Result) -> None:
    """Queue policy: only the named service, and only from the named sources, may send."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllowSourcesToSend",
            "Effect": "Allow",
            "Principal": {"Service": principal},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": sorted(source_arns)}},
        }],
    }
    sqs = client("sqs")
    current = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["Policy"]).get("Attributes", {})
    if not _same(current.get("Policy"), json.dumps(policy)):
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
        result.changes.append(f"set send policy on {queue_arn.rsplit(':', 1)[-1]}")


def ensure_bus_and_rules(s: Spec, result: Result) -> None:
    events = client("events")
    try:
        bus_arn = events.describe_event_bus(Name=s.bus)["Arn"]
    except events.exceptions.ResourceNotFoundException:
        bus_arn = events.create_event_bus(Name=s.bus)["EventBusArn"]
        result.changes.append(f"created event bus {s.bus}")
    result.outputs.update({"EVENT_BUS_NAME": s.bus, "EVENT_BUS_ARN": bus_arn})

    senders: dict[str, list[str]] = {}
    for rule in s.rules:
        name = f"{s.prefix}-{rule.name}"
        pattern = json.dumps({"source": [EVENT_SOURCE], "detail-type": list(rule.detail_types)})
        try:
            current = events.describe_rule(Name=name, EventBusName=s.bus)
        except events.exceptions.ResourceNotFoundException:
            current = None
        if current is None or not _same(current.get("EventPattern"), pattern) or current.get("State") != "ENABLED":
            rule_arn = events.put_rule(Name=name, EventBusName=s.bus, EventPattern=pattern, State="ENABLED")["RuleArn"]
            result.changes.append(f"{'created' if current is None else 'updated'} rule {name}")
        else:
            rule_arn = current["Arn"]
        # SQS targets only: moto's put_events fails with Lambda/SNS targets, and a queue in
        # between gives retries and a dead-letter queue for free (DESIGN.md section 4).
        wanted = {key: result.outputs[f"{key}_QUEUE_ARN"] for key in rule.target_queues}
        existing = {t["Id"]: t["Arn"] for t in events.list_targets_by_rule(Rule=name, EventBusName=s.bus)["Targets"]}
        if existing != wanted:
            stale = [target_id for target_id in existing if target_id not in wanted]
            if stale:
                events.remove_targets(Rule=name, EventBusName=s.bus, Ids=stale)
            events.put_targets(Rule=name, EventBusName=s.bus,
                               Targets=[{"Id": key, "Arn": arn} for key, arn in wanted.items()])
            result.changes.append(f"set targets of rule {name}")
        for key in rule.target_queues:
            senders.setdefault(key, []).append(rule_arn)
    for key, rule_arns in senders.items():
        _allow_send(result.outputs[f"{key}_QUEUE_URL"], result.outputs[f"{key}_QUEUE_ARN"],
                    "events.amazonaws.com", rule_arns, result)


def ensure_topic(s: Spec, result: Result) -> None:
    sns = client("sns")
    topic_arn = next((t["TopicArn"] for page in sns.get_paginator("list_topics").paginate()
                      for t in page["Topics"] if t["TopicArn"].endswith(f":{s.topic}")), None)
    if topic_arn is None:
        topic_arn = sns.create_topic(Name=s.topic)["TopicArn"]
        result.changes.append(f"created topic {s.topic}")
    result.outputs["TASK_TOPIC_ARN"] = topic_arn
    queue_arn = result.outputs[f"{s.topic_queue}_QUEUE_ARN"]
    subscribed = any(sub["Endpoint"] == queue_arn
                     for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn)
                     for sub in page["Subscriptions"])
    if not subscribed:
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
                      Attributes={"RawMessageDelivery": "true"})
        result.changes.append(f"subscribed {s.topic_queue} queue to {s.topic}")
    _allow_send(result.outputs[f"{s.topic_queue}_QUEUE_URL"], queue_arn, "sns.amazonaws.com", [topic_arn], result)


BROWSER_CORS = {"CORSRules": [{
    "AllowedMethods": ["POST", "GET"], "AllowedOrigins": ["*"], "AllowedHeaders": ["*"], "MaxAgeSeconds": 3000,
}]}


def ensure_bucket(bucket: Bucket, result: Result) -> None:
    s3 = client("s3")
    name = bucket.purpose
    try:
        s3.head_bucket(Bucket=name)
    except s3.exceptions.ClientError:
        kwargs = {"Bucket": name}
        if region() != "us-east-1":  # us-east-1 refuses an explicit location constraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region()}
        s3.create_bucket(**kwargs)
        # ACLs stay blocked everywhere; only the static bucket may have a public (read-only) policy
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": not bucket.public_read,
            "RestrictPublicBuckets": not bucket.public_read})
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
        if bucket.browser_upload:
            s3.put_bucket_cors(Bucket=name, CORSConfiguration=BROWSER_CORS)
        if bucket.public_read:
            s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
                "Sid": "PublicReadStaticFiles", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{name}/*"}]}))
            s3.put_bucket_cors(Bucket=name, CORSConfiguration=STATIC_CORS)  # fonts are fetched with CORS
        result.changes.append(f"created bucket {name}")
    result.outputs[bucket.key] = name


STATIC_CORS = {"CORSRules": [{"AllowedMethods": ["GET", "HEAD"], "AllowedOrigins": ["*"], "MaxAgeSeconds": 86400}]}


def static_folders() -> dict[str, Path]:
    """The static folders the pages link (shared/platform/assets.py): the shell's and each app's own."""
    root = Path(__file__).resolve().parents[2]
    folders = {"ui": root / "shared" / "platform" / "static"}
    for app in ("reqsys", "childsys", "taskapp"):
        if (root / app / "static").is_dir():
            folders[app] = root / app / "static"
    return folders


def publish_static(result: Result) -> None:
    """Upload every static file under `<folder>/<content hash>/<path>`, the URL the pages use with STATIC_URL,
    cached for a year (a changed file gets a new hash, so a new key). Keys already there are left alone."""
    import mimetypes

    from shared.platform.assets import IMMUTABLE, folder_files, folder_hash

    s3, bucket = client("s3"), result.outputs["STATIC_BUCKET"]
    for name, folder in static_folders().items():
        prefix = f"{name}/{folder_hash(folder)}/"
        existing = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                    for o in page.get("Contents", [])}
        uploaded = 0
        for path in folder_files(folder):
            key = prefix + path.relative_to(folder).as_posix()
            if key in existing:
                continue
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if content_type.startswith("text/") or content_type in ("application/javascript", "image/svg+xml"):
                content_type += "; charset=utf-8"
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ContentType=content_type,
                          CacheControl=IMMUTABLE)
            uploaded += 1
        if uploaded:
            result.changes.append(f"published {uploaded} static files under {prefix}")


def ensure_user_pool(s: Spec, result: Result) -> None:
    idp = client("cognito-idp")
    pool_id = next((p["Id"] for page in idp.get_paginator("list_user_pools").paginate(MaxResults=60)
                    for p in page["UserPools"] if p["Name"] == s.user_pool), None)
    if pool_id is None:
        pool_id = idp.create_user_pool(
            PoolName=s.user_pool,
            UsernameAttributes=["email"],
            AutoVerifiedAttributes=["email"],
            Policies={"PasswordPolicy": {"MinimumLength": 8, "RequireUppercase": True, "RequireLowercase": True,
                                         "RequireNumbers": True, "RequireSymbols": True}},
            Schema=[{"Name": "daycare_id", "AttributeDataType": "String", "Mutable": True,
                     "StringAttributeConstraints": {"MinLength": "1", "MaxLength": "20"}}],
            AccountRecoverySetting={"RecoveryMechanisms": [{"Priority": 1, "Name": "verified_email"}]},
        )["UserPool"]["Id"]
        result.changes.append(f"created user pool {s.user_pool}")
    described = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    result.outputs.update({"COGNITO_USERPOOL_ID": pool_id, "COGNITO_USERPOOL_ARN": described["Arn"]})

    clients = {c["ClientName"]: c["ClientId"]
               for page in idp.get_paginator("list_user_pool_clients").paginate(UserPoolId=pool_id, MaxResults=60)
               for c in page["UserPoolClients"]}
    for app in APP_CLIENTS:
        if app not in clients:
            clients[app] = idp.create_user_pool_client(
                UserPoolId=pool_id,
                ClientName=app,
                GenerateSecret=False,
                ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
                PreventUserExistenceErrors="ENABLED",
                # tokens carry these; only administrators (not users) may write the daycare id
                ReadAttributes=["email", "email_verified", "name", "phone_number", "custom:daycare_id"],
                WriteAttributes=["email", "name", "phone_number"],
            )["UserPoolClient"]["ClientId"]
            result.changes.append(f"created app client {app}")
        result.outputs[f"COGNITO_CLIENT_ID_{app.upper()}"] = clients[app]

    for group in GROUPS:
        try:
            idp.get_group(GroupName=group, UserPoolId=pool_id)
        except idp.exceptions.ResourceNotFoundException:
            idp.create_group(GroupName=group, UserPoolId=pool_id)
            result.changes.append(f"created group {group}")


def ensure_ses_identity(s: Spec, result: Result) -> None:
    ses = client("ses")
    identities = ses.list_identities(IdentityType="EmailAddress")["Identities"]
    if s.ses_sender not in identities:
        ses.verify_email_identity(EmailAddress=s.ses_sender)
        result.changes.append(f"verified SES sender {s.ses_sender}")
    result.outputs["SES_SENDER"] = s.ses_sender


ANALYTICS_RESULTS_DAYS = 7  # Athena's own result files; reports keep their CSV under reports/


def _contains(current, wanted) -> bool:
    """Whether `current` (as AWS describes it) has every key and value of `wanted` (our spec)."""
    if isinstance(wanted, dict):
        return isinstance(current, dict) and all(_contains(current.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return (isinstance(current, list) and len(current) == len(wanted)
                and all(_contains(c, w) for c, w in zip(current, wanted, strict=True)))
    return current == wanted


def ensure_analytics(s: Spec, result: Result) -> None:
    """The Glue database and the exported tables (taskapp/analytics/catalog.py), the Athena
    workgroup with its result location and per-query scan limit, and expiry of raw results."""
    from taskapp.analytics.catalog import TABLES

    bucket = result.outputs["ANALYTICS_BUCKET"]
    glue = client("glue")
    try:
        glue.get_database(Name=s.glue_database)
    except glue.exceptions.EntityNotFoundException:
        glue.create_database(DatabaseInput={"Name": s.glue_database})
        result.changes.append(f"created Glue database {s.glue_database}")
    result.outputs["GLUE_DATABASE"] = s.glue_database
    for table in TABLES:
        wanted = table.glue_input(bucket)
        try:
            current = glue.get_table(DatabaseName=s.glue_database, Name=table.name)["Table"]
        except glue.exceptions.EntityNotFoundException:
            glue.create_table(DatabaseName=s.glue_database, TableInput=wanted)
            result.changes.append(f"created Glue table {table.name}")
            continue
        if not _contains(current, wanted):
            glue.update_table(DatabaseName=s.glue_database, TableInput=wanted)
            result.changes.append(f"updated Glue table {table.name}")

    athena = client("athena")
    configuration = {
        "ResultConfiguration": {"OutputLocation": f"s3://{bucket}/athena-results/"},
        "EnforceWorkGroupConfiguration": True,
        "BytesScannedCutoffPerQuery": 1024**3,  # 1 GiB: a runaway report costs cents, not dollars
        "PublishCloudWatchMetricsEnabled": True,
        "EngineVersion": {"SelectedEngineVersion": "Athena engine version 3"},  # Trino, as the report SQL
    }
    existing = {w["Name"] for w in athena.list_work_groups()["WorkGroups"]}  # a handful: one page
    if s.workgroup not in existing:
        athena.create_work_group(Name=s.workgroup, Configuration=configuration)
        result.changes.append(f"created Athena workgroup {s.workgroup}")
    else:
        current = athena.get_work_group(WorkGroup=s.workgroup)["WorkGroup"].get("Configuration", {})
        checked = {k: v for k, v in configuration.items() if k != "EngineVersion"}  # AWS reports it differently
        if not _contains(current, checked):
            athena.update_work_group(WorkGroup=s.workgroup, ConfigurationUpdates={
                "ResultConfigurationUpdates": configuration["ResultConfiguration"],
                **{k: configuration[k] for k in ("EnforceWorkGroupConfiguration", "BytesScannedCutoffPerQuery",
                                                 "PublishCloudWatchMetricsEnabled", "EngineVersion")}})
            result.changes.append(f"updated Athena workgroup {s.workgroup}")
    result.outputs["ATHENA_WORKGROUP"] = s.workgroup

    s3 = client("s3")
    rule = {"ID": "expire-athena-results", "Status": "Enabled", "Filter": {"Prefix": "athena-results/"},
            "Expiration": {"Days": ANALYTICS_RESULTS_DAYS}}
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except s3.exceptions.ClientError:
        rules = []
    if not any(_contains(r, rule) for r in rules):
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={
            "Rules": [r for r in rules if r.get("ID") != rule["ID"]] + [rule]})
        result.changes.append(f"set expiry of athena-results/ in {bucket}")


# --- throttling sign-in in front of API Gateway ---------------------------------------------------

SIGN_IN_PATHS = ("/auth/login", "/auth/token", "/auth/signup", "/auth/confirm", "/auth/forgot", "/auth/reset")
SIGN_IN_LIMIT = 100  # requests per address per 5 minutes to the paths above (the app locks one account sooner)


def _web_acl_rules() -> list[dict]:
    def path(text: str) -> dict:
        return {"ByteMatchStatement": {"SearchString": text.encode(), "FieldToMatch": {"UriPath": {}},
                                       "TextTransformations": [{"Priority": 0, "Type": "LOWERCASE"}],
                                       "PositionalConstraint": "CONTAINS"}}

    return [{
        "Name": "sign-in-rate", "Priority": 0, "Action": {"Block": {}},
        "Statement": {"RateBasedStatement": {
            "Limit": SIGN_IN_LIMIT, "EvaluationWindowSec": 300, "AggregateKeyType": "IP",
            "ScopeDownStatement": {"OrStatement": {"Statements": [path(p) for p in SIGN_IN_PATHS]}}}},
        "VisibilityConfig": {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True,
                             "MetricName": "sign-in-rate"},
    }]


def ensure_sign_in_limit(s: Spec, result: Result) -> None:
    """A regional WAF web ACL whose rate-based rule blocks an address sending more than SIGN_IN_LIMIT
    requests in 5 minutes to the sign-in and token routes; `protect_apis` puts it in front of each web
    app's API Gateway stage once Zappa has made it. Output: WEB_ACL_ARN."""
    waf = client("wafv2")
    name = f"{s.prefix}-sign-in"
    visibility = {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": name}
    existing = next((acl for acl in waf.list_web_acls(Scope="REGIONAL", Limit=100).get("WebACLs", [])
                     if acl["Name"] == name), None)
    if existing is None:
        acl = waf.create_web_acl(Name=name, Scope="REGIONAL", DefaultAction={"Allow": {}}, Rules=_web_acl_rules(),
                                 VisibilityConfig=visibility,
                                 Description="Rate limit on sign-in and token routes (shared/tools/provision.py)")
        arn = acl["Summary"]["ARN"]
        result.changes.append(f"created web ACL {name}")
    else:
        arn = existing["ARN"]
        current = waf.get_web_acl(Name=name, Scope="REGIONAL", Id=existing["Id"])
        if current["WebACL"].get("Rules") != _web_acl_rules():
            waf.update_web_acl(Name=name, Scope="REGIONAL", Id=existing["Id"], DefaultAction={"Allow": {}},
                               Rules=_web_acl_rules(), VisibilityConfig=visibility,
                               LockToken=current["LockToken"])
            result.changes.append(f"updated web ACL {name}")
    result.outputs["WEB_ACL_ARN"] = arn


def protect_apis(stage: str, web_acl_arn: str, apps=("reqsys", "childsys", "taskapp")) -> list[str]:
    """Associate the sign-in web ACL with each web app's API Gateway stage (`<app>_<stage>` of the REST
    API Zappa names after the function); run after `zappa deploy`. The changes made."""
    from shared.tools.deploy.stages import lambda_name

    apigateway, waf = client("apigateway"), client("wafv2")
    apis = {api["name"]: api["id"] for page in apigateway.get_paginator("get_rest_apis").paginate()
            for api in page["items"]}
    changes = []
    for app in apps:
        api_id = apis.get(lambda_name(app, stage))
        if api_id is None:
            continue  # not deployed yet: the next deploy associates it
        resource = f"arn:aws:apigateway:{region()}::/restapis/{api_id}/stages/{app}_{stage}"
        current = waf.get_web_acl_for_resource(ResourceArn=resource).get("WebACL") or {}
        if current.get("ARN") != web_acl_arn:
            waf.associate_web_acl(WebACLArn=web_acl_arn, ResourceArn=resource)
            changes.append(f"web ACL in front of {app}_{stage}")
    return changes


def ensure_stream_failure_queue(table: Table, result: Result) -> None:
    """The on-failure destination of the table's stream mapping (shared.pipeline.stream): a batch that keeps
    failing is described there instead of blocking the shard or vanishing. Output as a dead-letter queue
    (`<KEY>_STREAM_DLQ_URL`, e.g. EVENTS_STREAM_DLQ_URL), so the monitor counts it and replays it."""
    url = _ensure_sqs(failure_queue_name(table.name), {"MessageRetentionPeriod": "1209600"}, result)
    key = table.key.removesuffix("_TABLE") + "_STREAM"
    result.outputs.update({f"{key}_DLQ_URL": url, f"{key}_DLQ_ARN": _queue_arn(url)})


def stream_mapping_settings(table_name: str) -> dict:
    """What a stream mapping needs besides Zappa's: bisect on error, bounded retries, an on-failure queue."""
    url = client("sqs").get_queue_url(QueueName=failure_queue_name(table_name))["QueueUrl"]
    return {"BisectBatchOnFunctionError": True, "MaximumRetryAttempts": MAXIMUM_RETRY_ATTEMPTS,
            "MaximumRecordAgeInSeconds": MAXIMUM_RECORD_AGE_SECONDS,
            "DestinationConfig": {"OnFailure": {"Destination": _queue_arn(url)}}}


def _stream_mapping_drift(mapping: dict, wanted: dict) -> dict:
    return {key: value for key, value in wanted.items() if mapping.get(key) != value}


def wire_event_sources(stage: str, settings_path=None) -> list[str]:
    """After `zappa deploy/update`: make every queue and stream mapping what the handlers need.

    Zappa cannot create a DynamoDB stream mapping (it never sends StartingPosition) and
    has no setting for ReportBatchItemFailures, without which Lambda ignores the
    `batchItemFailures` our handlers return (DESIGN.md section 4). A stream mapping also gets
    `stream_mapping_settings` (bisect, bounded retries, the on-failure queue). Not for the emulator:
    there the local runner plays the mappings. Returns the changes made.
    """
    from shared.tools.runner import SqsSource, StreamSource, load_event_sources

    kwargs = {"env": stage} if settings_path is None else {"settings_path": settings_path, "env": stage}
    lam = client("lambda")
    changes = []
    for source in load_event_sources(**kwargs):
        if not isinstance(source, SqsSource | StreamSource):
            continue
        mappings = lam.list_event_source_mappings(
            FunctionName=source.lambda_name, EventSourceArn=source.arn)["EventSourceMappings"]
        stream = stream_mapping_settings(source.table) if isinstance(source, StreamSource) else {}
        if not mappings:
            extra = {"StartingPosition": source.starting_position, **stream} if stream else {}
            lam.create_event_source_mapping(
                FunctionName=source.lambda_name, EventSourceArn=source.arn, BatchSize=source.batch_size,
                FunctionResponseTypes=["ReportBatchItemFailures"], Enabled=True, **extra)
            changes.append(f"created mapping {source.arn} -> {source.lambda_name}")
        for mapping in mappings:
            if "ReportBatchItemFailures" not in (mapping.get("FunctionResponseTypes") or []):
                lam.update_event_source_mapping(UUID=mapping["UUID"], FunctionResponseTypes=["ReportBatchItemFailures"])
                changes.append(f"enabled ReportBatchItemFailures on {source.arn} -> {source.lambda_name}")
            drift = _stream_mapping_drift(mapping, stream)
            if drift:
                lam.update_event_source_mapping(UUID=mapping["UUID"], **drift)
                changes.append(f"set {', '.join(sorted(drift))} on {source.arn} -> {source.lambda_name}")
    return changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default=_env("STAGE", "local"))
    parser.add_argument("--wire", action="store_true",
                        help="after a Zappa deploy: fix the functions' event source mappings")
    args = parser.parse_args(argv)
    if args.wire:
        from shared.tools.deploy.stages import rendered_path

        changes = wire_event_sources(args.stage, settings_path=rendered_path(args.stage))
        print("\n".join(changes) or "mappings already as wanted")
        return 0
    result = apply(args.stage)
    print("\n".join(f"  {change}" for change in result.changes) or "  no changes")
    width = max(map(len, result.outputs))
    for key, value in sorted(result.outputs.items()):
        print(f"{key:<{width}}  {value}")
    print(f"written to {outputs_path(args.stage)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
