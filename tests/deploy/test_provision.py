"""Provisioning: every resource exists, a second run changes nothing, drift is put back."""

import json

import pytest

from shared.platform.aws import client
from shared.platform.settings import Settings
from shared.tools import provision


@pytest.fixture(scope="module")
def prov(aws_endpoint):
    """A stage of its own, so these tests may change things without disturbing `resources`."""
    return provision.apply("prov")


def test_second_run_changes_nothing_and_gives_the_same_outputs(prov):
    again = provision.apply("prov")
    assert again.changes == []
    assert again.outputs == prov.outputs


def test_every_output_exists(prov):
    out = prov.outputs
    sqs, ddb, idp, s3 = client("sqs"), client("dynamodb"), client("cognito-idp"), client("s3")
    for _key, url, dlq_url in prov.queues():
        assert sqs.get_queue_url(QueueName=url.rsplit("/", 1)[-1])["QueueUrl"] == url
        assert sqs.get_queue_url(QueueName=dlq_url.rsplit("/", 1)[-1])["QueueUrl"] == dlq_url
    assert len(prov.queues()) == 6
    assert out["INTEGRATED_EVENTS_QUEUE_URL"].endswith(".fifo")
    table = ddb.describe_table(TableName=out["EVENTS_TABLE"])["Table"]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["LatestStreamArn"] == out["EVENTS_TABLE_STREAM_ARN"]
    pool = idp.describe_user_pool(UserPoolId=out["COGNITO_USERPOOL_ID"])["UserPool"]
    assert pool["UsernameAttributes"] == ["email"]
    groups = {g["GroupName"] for g in idp.list_groups(UserPoolId=out["COGNITO_USERPOOL_ID"])["Groups"]}
    assert groups == {"parents", "staff", "admins", "employees"}
    client_ids = {out[f"COGNITO_CLIENT_ID_{app}"] for app in ("REQSYS", "CHILDSYS", "TASKAPP")}
    assert len(client_ids) == 3  # one client per app, so a token for one app is refused by the others
    for bucket in ("UPLOADS_BUCKET", "TASK_FILES_BUCKET", "ANALYTICS_BUCKET"):
        s3.head_bucket(Bucket=out[bucket])
    assert out["SES_SENDER"] in client("ses").list_identities()["Identities"]
    assert client("athena").get_work_group(WorkGroup=out["ATHENA_WORKGROUP"])["WorkGroup"]["Name"]
    assert client("glue").get_database(Name=out["GLUE_DATABASE"])["Database"]["Name"] == out["GLUE_DATABASE"]


def test_failed_messages_go_to_the_dead_letter_queue(prov):
    attributes = client("sqs").get_queue_attributes(
        QueueUrl=prov.outputs["INTEGRATED_EVENTS_QUEUE_URL"], AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == prov.outputs["INTEGRATED_EVENTS_DLQ_ARN"]
    assert int(redrive["maxReceiveCount"]) == provision.PIPELINE_MAX_RECEIVES
    jobs = client("sqs").get_queue_attributes(QueueUrl=prov.outputs["TASK_JOBS_QUEUE_URL"],
                                              AttributeNames=["RedrivePolicy"])["Attributes"]
    assert int(json.loads(jobs["RedrivePolicy"])["maxReceiveCount"]) == provision.MAX_RECEIVES


def test_the_retry_delays_outlast_an_hours_outage_before_the_dead_letter_queue():
    from shared.platform.batch import backoff_seconds

    hidden = sum(backoff_seconds(receive) for receive in range(1, provision.PIPELINE_MAX_RECEIVES))
    assert hidden > 3600 and backoff_seconds(provision.PIPELINE_MAX_RECEIVES) <= 900


def test_the_stream_has_a_failure_queue_and_records_expire_by_ttl(prov):
    out, ddb = prov.outputs, client("dynamodb")
    url = out["EVENTS_STREAM_DLQ_URL"]
    assert url.endswith(f"/{out['EVENTS_TABLE']}-stream-dlq")
    assert client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"] == out["EVENTS_STREAM_DLQ_ARN"]
    for table, attribute in (("IDEMPOTENCY_TABLE", "expiration"), ("TASKS_TABLE", "expiration")):
        ttl = ddb.describe_time_to_live(TableName=out[table])["TimeToLiveDescription"]
        assert ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING") and ttl["AttributeName"] == attribute


def test_drift_is_put_back_and_reported(prov):
    sqs = client("sqs")
    url = prov.outputs["EMAIL_QUEUE_URL"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "5"})

    result = provision.apply("prov")

    # (moto also drops the queue policy on any attribute change, so that is re-set too)
    assert "updated queue daycare-prov-email: VisibilityTimeout" in result.changes
    assert not [c for c in result.changes if "email" not in c]
    current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    assert current["VisibilityTimeout"] == str(6 * provision.LAMBDA_TIMEOUT)


def _drain(url):
    sqs = client("sqs")
    bodies = []
    for _ in range(3):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def test_eventbridge_rules_route_by_event_type_to_queues(prov):
    out = prov.outputs
    for key in ("EMAIL", "TO_CHILDSYS", "TO_REQSYS"):
        _drain(out[f"{key}_QUEUE_URL"])
    client("events").put_events(Entries=[{
        "EventBusName": out["EVENT_BUS_NAME"], "Source": provision.EVENT_SOURCE,
        "DetailType": "REQUEST", "Detail": json.dumps({"event_id": "e-1"}),
    }])

    email, childsys, reqsys = (_drain(out[f"{k}_QUEUE_URL"]) for k in ("EMAIL", "TO_CHILDSYS", "TO_REQSYS"))
    assert [m["detail"]["event_id"] for m in email] == ["e-1"]
    assert [m["detail-type"] for m in childsys] == ["REQUEST"]
    assert reqsys == []


def test_outputs_file_feeds_the_settings(prov, monkeypatch):
    monkeypatch.setenv("STAGE", "prov")
    settings = Settings.load("reqsys")
    assert settings.cognito_userpool_id == prov.outputs["COGNITO_USERPOOL_ID"]
    assert settings.cognito_client_id == prov.outputs["COGNITO_CLIENT_ID_REQSYS"]
    assert settings.resource("EMAIL_QUEUE_URL") == prov.outputs["EMAIL_QUEUE_URL"]


def test_wiring_creates_the_stream_mapping_and_report_batch_item_failures(own_emulator, tmp_path):
    """What Zappa cannot do: a stream mapping with a starting position, and partial batch responses."""
    import io
    import zipfile

    iam, lam, sqs = client("iam"), client("lambda"), client("sqs")
    role = iam.create_role(RoleName="wire-test", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    lam.create_function(FunctionName="daycare-pipeline-wire", Runtime="python3.13", Role=role,
                        Handler="handler.handler", Code={"ZipFile": package.getvalue()})
    queue = sqs.create_queue(QueueName="wire-test-queue")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    table = client("dynamodb").create_table(
        TableName="wire-test-table", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})["TableDescription"]
    from shared.pipeline.stream import failure_queue_name

    failures = sqs.create_queue(QueueName=failure_queue_name("wire-test-table"))["QueueUrl"]
    failures_arn = sqs.get_queue_attributes(QueueUrl=failures, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # as Zappa would leave it: an SQS mapping without partial batch responses
    lam.create_event_source_mapping(FunctionName="daycare-pipeline-wire", EventSourceArn=queue_arn, BatchSize=5)
    settings = tmp_path / "zappa_settings.json"
    settings.write_text(json.dumps({"pipeline_wire": {"project_name": "daycare", "events": [
        {"function": "shared.pipeline.forward.handler", "event_source": {"arn": queue_arn, "batch_size": 5}},
        {"function": "shared.pipeline.stream.handler",
         "event_source": {"arn": table["LatestStreamArn"], "starting_position": "TRIM_HORIZON"}},
    ]}}))

    changes = provision.wire_event_sources("wire", settings)

    assert len(changes) == 2
    mappings = lam.list_event_source_mappings(FunctionName="daycare-pipeline-wire")["EventSourceMappings"]
    assert {m["EventSourceArn"] for m in mappings} == {queue_arn, table["LatestStreamArn"]}
    assert all(m["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for m in mappings)
    stream_mapping = next(m for m in mappings if m["EventSourceArn"] == table["LatestStreamArn"])
    assert stream_mapping["StartingPosition"] == "TRIM_HORIZON"
    # a batch that keeps failing is split, retried a bounded number of times, then described in the failure queue
    assert stream_mapping["DestinationConfig"] == {"OnFailure": {"Destination": failures_arn}}
    assert stream_mapping["BisectBatchOnFunctionError"] is True
    assert stream_mapping["MaximumRetryAttempts"] == 10 and stream_mapping["MaximumRecordAgeInSeconds"] == 21600
    assert provision.wire_event_sources("wire", settings) == []
    # drift is put back
    lam.update_event_source_mapping(UUID=stream_mapping["UUID"], MaximumRetryAttempts=-1)
    assert provision.wire_event_sources("wire", settings) == [
        f"set MaximumRetryAttempts on {table['LatestStreamArn']} -> daycare-pipeline-wire"]


def test_static_files_are_published_under_their_content_hash_and_readable_by_anyone(prov):
    from shared.platform.assets import folder_hash

    s3, bucket = client("s3"), prov.outputs["STATIC_BUCKET"]
    folder = provision.static_folders()["ui"]
    key = f"ui/{folder_hash(folder)}/app.css"
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert head["ContentType"].startswith("text/css")
    font = s3.head_object(Bucket=bucket, Key=f"ui/{folder_hash(folder)}/krds/fonts/PretendardGOV-Regular.woff2")
    assert font["ContentType"] == "font/woff2"
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert policy["Statement"] == [{"Sid": "PublicReadStaticFiles", "Effect": "Allow", "Principal": "*",
                                    "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]
    blocks = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert blocks["BlockPublicAcls"] and blocks["IgnorePublicAcls"], "public ACLs stay blocked"
    uploads = s3.get_public_access_block(Bucket=prov.outputs["UPLOADS_BUCKET"])["PublicAccessBlockConfiguration"]
    assert all(uploads.values()), "no other bucket may be made public"
