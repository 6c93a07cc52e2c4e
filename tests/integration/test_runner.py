"""The local event-source runner drives the handlers named in zappa settings as Lambda would."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from shared.platform import aws
from shared.tools.runner import Runner, ScheduleSource, SqsSource, StreamSource, load_event_sources
from tests import handlers


@pytest.fixture(autouse=True)
def _reset_handlers():
    handlers.reset()
    yield
    handlers.reset()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def write_settings(tmp_path, events: list[dict]) -> str:
    settings = {
        "base": {"project_name": "daycare", "aws_region": "ap-northeast-2", "timeout_seconds": 30},
        "worker_local": {"extends": "base", "events": events},
    }
    path = tmp_path / "zappa_settings.json"
    path.write_text(json.dumps(settings))
    return str(path)


def queue_arn(sqs, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def make_queue(sqs, *, max_receives: int | None = None, visibility: int = 30) -> tuple[str, str, str | None]:
    """A queue (with a DLQ when max_receives is given): (url, arn, dlq url)."""
    attributes = {"VisibilityTimeout": str(visibility)}
    dlq_url = None
    if max_receives:
        dlq_url = sqs.create_queue(QueueName=unique("dlq"))["QueueUrl"]
        policy = {"deadLetterTargetArn": queue_arn(sqs, dlq_url), "maxReceiveCount": max_receives}
        attributes["RedrivePolicy"] = json.dumps(policy)
    url = sqs.create_queue(QueueName=unique("q"), Attributes=attributes)["QueueUrl"]
    return url, queue_arn(sqs, url), dlq_url


def counts(sqs, url: str) -> tuple[int, int]:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def bodies(event: dict) -> list[str]:
    return sorted(record["body"] for record in event["Records"])


def test_partial_batch_failure_deletes_the_rest_and_dead_letters_the_failed_one(sqs, tmp_path):
    url, arn, dlq_url = make_queue(sqs, max_receives=2)
    settings = write_settings(tmp_path, [{"function": "tests.handlers.fail_marked", "event_source": {"arn": arn}}])
    for body in ("ok-1", "fail", "ok-2"):
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes={
            "type": {"DataType": "String", "StringValue": "REQUEST"}})
    runner = Runner(load_event_sources(settings), failed_visibility=0)

    assert runner.run_once() == 3
    first = handlers.received[0]["Records"]
    assert sorted(r["body"] for r in first) == ["fail", "ok-1", "ok-2"]
    record = first[0]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == arn
    assert record["awsRegion"] == "ap-northeast-2"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["type"] == {
        "stringValue": "REQUEST", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
    assert handlers.contexts[0].function_name == "daycare-worker-local"
    assert 0 < handlers.contexts[0].get_remaining_time_in_millis() <= 30_000
    time.sleep(0.01)

    # only the failed message comes back, counted as a second receive
    assert runner.run_once() == 1
    again = handlers.received[1]["Records"]
    assert [r["body"] for r in again] == ["fail"]
    assert again[0]["attributes"]["ApproximateReceiveCount"] == "2"
    time.sleep(0.01)

    # maxReceiveCount reached: SQS moves it to the DLQ on the next receive, the handler is not called
    assert runner.run_once() == 0
    assert len(handlers.received) == 2
    delivered = [body for event in handlers.received for body in bodies(event)]
    assert delivered.count("ok-1") == 1 and delivered.count("ok-2") == 1  # processed exactly once
    assert counts(sqs, url) == (0, 0)
    dead = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages", [])
    assert [m["Body"] for m in dead] == ["fail"]


def test_unknown_failure_identifier_keeps_the_whole_batch(sqs):
    url, arn, _ = make_queue(sqs)
    sources = [SqsSource(function="tests.handlers.bad_identifier", arn=arn, lambda_name="x", region="ap-northeast-2")]
    sqs.send_message(QueueUrl=url, MessageBody="a")
    sqs.send_message(QueueUrl=url, MessageBody="b")

    assert Runner(sources).run_once() == 2
    assert counts(sqs, url) == (0, 2)  # nothing deleted: both come back after the visibility timeout


def test_a_raising_handler_gets_the_whole_batch_back_and_does_not_stop_the_runner(sqs, tmp_path):
    bad_url, bad_arn, _ = make_queue(sqs, visibility=1)
    good_url, good_arn, _ = make_queue(sqs)
    settings = write_settings(tmp_path, [
        {"function": "tests.handlers.explode", "event_source": {"arn": bad_arn, "batch_size": 10}},
        {"function": "tests.handlers.ok", "event_source": {"arn": good_arn}},
    ])
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=bad_url, MessageBody=body)
    sqs.send_message(QueueUrl=good_url, MessageBody="fine")
    runner = Runner(load_event_sources(settings))

    assert runner.run_once() == 4
    assert [bodies(e) for e in handlers.received] == [["a", "b", "c"], ["fine"]]
    assert counts(sqs, bad_url) == (0, 3)  # nothing deleted, all in flight
    assert counts(sqs, good_url) == (0, 0)  # the other source was still served

    assert runner.run_once() == 0  # the runner leaves the visibility timeout alone
    time.sleep(1.1)
    assert runner.run_once() == 3
    assert bodies(handlers.received[-1]) == ["a", "b", "c"]
    assert {r["attributes"]["ApproximateReceiveCount"] for r in handlers.received[-1]["Records"]} == {"2"}


def test_dynamodb_stream_records_are_lambda_shaped_and_retried_from_the_failed_record(aws_endpoint, tmp_path):
    dynamodb = aws.client("dynamodb")
    table = unique("events")
    dynamodb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    # a stale label, as when the table was recreated after the settings were written
    arn = f"arn:aws:dynamodb:ap-northeast-2:123456789012:table/{table}/stream/2020-01-01T00:00:00.000"
    settings = write_settings(tmp_path, [{"function": "tests.handlers.stream_fail_b_once",
                                          "event_source": {"arn": arn, "starting_position": "TRIM_HORIZON"}}])
    for pk in ("a", "b", "c"):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": pk}, "blob": {"B": b"\x00\x01"}})
    runner = Runner(load_event_sources(settings), stream_retry_delay=0)

    assert runner.run_once() == 3
    first = handlers.received[0]["Records"]
    json.dumps(handlers.received[0])  # Lambda's JSON: no datetimes or bytes left
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in first] == ["a", "b", "c"]
    record = first[0]
    assert record["eventName"] == "INSERT" and record["eventSource"] == "aws:dynamodb"
    assert record["eventSourceARN"] == arn and record["awsRegion"] == "ap-northeast-2"
    assert record["dynamodb"]["NewImage"] == {"pk": {"S": "a"}, "blob": {"B": "AAE="}}
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
    assert record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"

    assert runner.run_once() == 2  # restarts at the failed record, not at the start of the batch
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in handlers.received[1]["Records"]] == ["b", "c"]
    assert runner.run_once() == 0

    dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "n": {"N": "2"}})
    assert runner.run_once() == 1
    modify = handlers.received[2]["Records"][0]
    assert modify["eventName"] == "MODIFY" and modify["dynamodb"]["NewImage"]["n"] == {"N": "2"}
    assert modify["dynamodb"]["OldImage"]["pk"] == {"S": "a"}


def stream_table(dynamodb) -> tuple[str, str]:
    table = unique("events")
    dynamodb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    return table, dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]


def test_a_stream_batch_that_keeps_failing_goes_to_the_failure_queue_after_the_attempts(aws_endpoint, sqs, caplog):
    from shared.pipeline.stream import failure_queue_name

    dynamodb = aws.client("dynamodb")
    table, arn = stream_table(dynamodb)
    failures = sqs.create_queue(QueueName=failure_queue_name(table))["QueueUrl"]
    source = StreamSource(function="tests.handlers.explode", arn=arn, lambda_name="x", region="ap-northeast-2")
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "poison"}})
    now = [0.0]
    runner = Runner([source], max_stream_attempts=3, stream_retry_delay=1.0, clock=lambda: now[0])

    assert runner.run_once() == 1
    assert runner.run_once() == 0  # backing off
    now[0] += 1
    assert runner.run_once() == 1  # retried after 1 s
    now[0] += 1
    assert runner.run_once() == 0  # then after 2 s
    now[0] += 1
    assert "GAVE UP" not in caplog.text
    assert runner.run_once() == 1
    assert "GAVE UP" in caplog.text
    assert len(handlers.received) == 3
    # not dropped: described in the failure queue as Lambda's on-failure destination does
    [message] = sqs.receive_message(QueueUrl=failures, MaxNumberOfMessages=10).get("Messages", [])
    info = json.loads(message["Body"])
    assert info["requestContext"]["condition"] == "RetryAttemptsExhausted"
    batch = info["DDBStreamBatchInfo"]
    assert batch["batchSize"] == 1 and batch["startSequenceNumber"] == batch["endSequenceNumber"]
    assert batch["streamArn"] == arn
    assert runner.run_once() == 0  # then skipped
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "next"}})
    assert runner.run_once() == 1
    assert handlers.received[-1]["Records"][0]["dynamodb"]["Keys"]["pk"] == {"S": "next"}


def test_without_a_failure_queue_a_failing_stream_batch_blocks_its_shard_and_is_never_dropped(aws_endpoint, caplog):
    dynamodb = aws.client("dynamodb")
    table, arn = stream_table(dynamodb)
    source = StreamSource(function="tests.handlers.explode", arn=arn, lambda_name="x", region="ap-northeast-2")
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "poison"}})
    runner = Runner([source], max_stream_attempts=2, stream_retry_delay=0)
    for _ in range(5):
        runner.run_once()
    assert len(handlers.received) == 5, "retried again and again"
    assert "shard stays blocked" in caplog.text and "GAVE UP" not in caplog.text


def test_a_raising_handler_gets_its_stream_batch_in_halves(aws_endpoint, sqs):
    from shared.pipeline.stream import failure_queue_name

    dynamodb = aws.client("dynamodb")
    table, arn = stream_table(dynamodb)
    sqs.create_queue(QueueName=failure_queue_name(table))
    source = StreamSource(function="tests.handlers.explode_on_poison", arn=arn, lambda_name="x",
                          region="ap-northeast-2")
    for pk in ("a", "b", "poison", "c"):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": pk}})
    runner = Runner([source], max_stream_attempts=2, stream_retry_delay=0)
    for _ in range(12):
        runner.run_once()
    sizes = [len(event["Records"]) for event in handlers.received]
    # [a b poison c] raises -> [a b] done -> [poison c] raises -> [poison] alone, retried, handed over -> [c]
    assert sizes[:4] == [4, 2, 2, 1], "split in two until the failing record is alone"
    keys = [r["dynamodb"]["Keys"]["pk"]["S"] for event in handlers.received for r in event["Records"]]
    assert {"a", "b", "c"} <= set(keys)


def test_rate_schedule_runs_first_pass_then_when_due(tmp_path):
    settings = write_settings(tmp_path, [{"function": "tests.handlers.ok", "expression": "rate(1 minute)"}])
    now = [1000.0]
    runner = Runner(load_event_sources(settings), clock=lambda: now[0])

    assert runner.run_once() == 1
    assert runner.run_once() == 0
    assert len(handlers.received) == 1
    event = handlers.received[0]
    assert event["source"] == "aws.events" and event["detail-type"] == "Scheduled Event"
    assert event["detail"] == {} and event["resources"][0].endswith("-tests.handlers.ok")
    now[0] += 61
    assert runner.run_once() == 1
    assert len(handlers.received) == 2


def test_load_event_sources_resolves_extends_and_picks_only_the_env_stages(tmp_path):
    sqs_arn = "arn:aws:sqs:ap-northeast-2:123456789012:integrated-events"
    stream_arn = "arn:aws:dynamodb:ap-northeast-2:123456789012:table/events/stream/label"
    settings = {
        "base": {"project_name": "daycare", "aws_region": "ap-northeast-2", "timeout_seconds": 20,
                 "events": [{"function": "pkg.inherited", "event_source": {"arn": sqs_arn, "batch_size": 5}}]},
        "reqsys_local": {"extends": "base"},
        "childsys_local": {"extends": "base", "events": [  # replaces base's events (a shallow merge)
            {"function": "pkg.off", "event_source": {"arn": sqs_arn, "enabled": False}},
            {"function": "pkg.stream", "event_source": {"arn": stream_arn, "starting_position": "LATEST"}},
            {"function": "pkg.tick", "expression": "rate(5 minutes)"},
            {"function": "pkg.nightly", "expressions": ["rate(1 hour)", "cron(0 3 * * ? *)"]},
        ]},
        "reqsys_dev": {"extends": "base", "events": [{"function": "pkg.dev", "expression": "rate(1 minute)"}]},
        "local": {"events": [{"function": "pkg.not_a_stage_suffix", "expression": "rate(1 minute)"}]},
    }
    path = tmp_path / "zappa_settings.json"
    path.write_text(json.dumps(settings))

    sources = load_event_sources(path, env="local")

    common = {"region": "ap-northeast-2", "timeout": 20, "memory_size": 512}
    assert sources == [
        SqsSource(function="pkg.inherited", arn=sqs_arn, batch_size=5, lambda_name="daycare-reqsys-local", **common),
        StreamSource(function="pkg.stream", arn=stream_arn, batch_size=100, starting_position="LATEST",
                     lambda_name="daycare-childsys-local", **common),
        ScheduleSource(function="pkg.tick", expression="rate(5 minutes)", interval=300,
                       lambda_name="daycare-childsys-local", **common),
        ScheduleSource(function="pkg.nightly", expression="rate(1 hour)", interval=3600,
                       lambda_name="daycare-childsys-local", **common),
        ScheduleSource(function="pkg.nightly", expression="cron(0 3 * * ? *)", interval=None,
                       lambda_name="daycare-childsys-local", **common),
    ]
    assert [s.function for s in load_event_sources(path, env="dev")] == ["pkg.dev"]


def test_extends_cycle_is_refused(tmp_path):
    path = tmp_path / "zappa_settings.json"
    path.write_text(json.dumps({"a_local": {"extends": "b_local"}, "b_local": {"extends": "a_local"}}))
    with pytest.raises(ValueError, match="circular"):
        load_event_sources(path)
