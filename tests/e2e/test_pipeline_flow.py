"""The pipeline as wired in zappa_settings.json, driven by the local event-source runner:
dead-lettering and redrive of a failing forward, and a REQUEST end to end."""

from __future__ import annotations

import json
import time

import pytest

from shared.pipeline.mailbox import sent_emails
from shared.platform import aws
from shared.platform.events import publish
from shared.platform.settings import ROOT
from shared.tools.runner import Runner, SqsSource, StreamSource, load_event_sources
from tests.pipeline_helpers import StandIn, bridge_event, deployed_stages, drain, envelope, pipeline_settings, queue_arn


def test_zappa_settings_wire_every_handler_and_keep_the_stages():
    stages = deployed_stages()
    for name in ("reqsys", "childsys", "taskapp"):
        for env in ("dev", "prod"):
            assert stages[f"{name}_{env}"]["app_function"] == f"{name}.app"
    for env in ("dev", "prod", "local"):
        pipeline = stages[f"pipeline_{env}"]
        assert pipeline["apigateway_enabled"] is False and pipeline["app_function"] == "shared.pipeline.app"
        assert pipeline["environment_variables"]["STAGE"] == env
    for name in ("reqsys", "childsys"):
        for env in ("dev", "prod", "local"):
            stage = stages[f"{name}_{env}"]
            assert {"function": f"{name}.relay.handler", "expression": "rate(1 minute)"} in stage["events"]
            assert stage["environment_variables"]["STAGE"] == env
    for env in ("dev", "prod", "local"):  # reqsys owns the offers' deadlines: its schedule expires and reminds
        assert {"function": "reqsys.schedule.handler", "expression": "rate(10 minutes)"} in stages[
            f"reqsys_{env}"]["events"]
    [schedule] = [s for s in load_event_sources(ROOT / "zappa_settings.json", "local")
                  if s.function == "reqsys.schedule.handler"]
    assert schedule.interval == 600 and schedule.lambda_name == "daycare-reqsys-local"
    sources = [s for s in load_event_sources(ROOT / "zappa_settings.json", "local")
               if s.lambda_name.endswith("pipeline-local")]
    by_function = {}
    for source in sources:
        by_function.setdefault(source.function, []).append(source)
    handlers = ("ingest", "stream", "email", "forward")
    assert sorted(by_function) == sorted(f"shared.pipeline.{name}.handler" for name in handlers)
    assert [s.arn.rsplit(":", 1)[-1] for s in by_function["shared.pipeline.forward.handler"]] == [
        "daycare-local-to-childsys", "daycare-local-to-reqsys"]
    [stream_source] = by_function["shared.pipeline.stream.handler"]
    assert isinstance(stream_source, StreamSource) and stream_source.starting_position == "TRIM_HORIZON"
    assert stream_source.table == "daycare-local-events"
    assert by_function["shared.pipeline.ingest.handler"][0].arn.endswith(":daycare-local-integrated-events.fifo")


def test_the_pipeline_app_function_is_a_wsgi_app_that_needs_no_configuration():
    from werkzeug.test import Client

    from shared.pipeline import app

    response = Client(app).get("/")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def run_until(runner: Runner, done, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "the pipeline did not get there in time"
        if not runner.run_once():
            time.sleep(0.1)


@pytest.fixture
def childsys(monkeypatch):
    with StandIn() as server:
        monkeypatch.setenv("CHILDSYS_URL", server.url)
        monkeypatch.setenv("REQSYS_URL", server.url)
        yield server


def test_a_failing_forward_ends_in_the_dlq_and_is_delivered_after_redrive(resources, tmp_path, childsys):
    sqs = aws.client("sqs")
    url, dlq_url = resources["TO_CHILDSYS_QUEUE_URL"], resources["TO_CHILDSYS_DLQ_URL"]
    drain(url)
    drain(dlq_url)
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
                        ["Attributes"]["RedrivePolicy"])
    assert policy["deadLetterTargetArn"] == queue_arn(dlq_url)
    max_receives = int(policy["maxReceiveCount"])
    sources = [s for s in load_event_sources(pipeline_settings(resources, tmp_path), "test")
               if isinstance(s, SqsSource) and s.arn == queue_arn(url)]
    assert [s.function for s in sources] == ["shared.pipeline.forward.handler"]
    runner = Runner(sources, failed_visibility=0)  # retry at once instead of after the visibility timeout

    env = envelope("REQUEST")
    sqs.send_message(QueueUrl=url, MessageBody=bridge_event(env))
    childsys.status = 503
    for _ in range(max_receives + 1):  # the receive after the last allowed one moves it to the DLQ
        runner.run_once()
    assert len(childsys.bodies_for(env.event_id)) == max_receives
    dead = drain(dlq_url)
    assert [json.loads(m["Body"])["detail"]["event_id"] for m in dead] == [env.event_id]
    assert drain(url) == []

    # the admin redrives it once childsys is back
    childsys.status = 200
    for message in dead:
        sqs.send_message(QueueUrl=url, MessageBody=message["Body"])
    run_until(runner, lambda: childsys.status == 200 and len(childsys.bodies_for(env.event_id)) == max_receives + 1)
    assert runner.run_once() == 0  # deleted after success: nothing left
    assert drain(url) == [] and drain(dlq_url) == []
    assert all(call["signed"] for call in childsys.bodies_for(env.event_id))


def test_a_request_goes_end_to_end(resources, tmp_path, childsys):
    runner = Runner(load_event_sources(pipeline_settings(resources, tmp_path), "test"), failed_visibility=0)
    env = envelope("REQUEST", child_name="최하늘")
    publish(resources["INTEGRATED_EVENTS_QUEUE_URL"], env)
    parent = env.application["parent_email"]
    dynamodb = aws.client("dynamodb")

    def arrived() -> bool:
        stored = dynamodb.get_item(TableName=resources["EVENTS_TABLE"], ConsistentRead=True, Key={
            "request_id": {"S": env.request_id}, "event_id": {"S": env.event_id}}).get("Item")
        return bool(stored) and bool(sent_emails(to=parent)) and bool(childsys.bodies_for(env.event_id))

    run_until(runner, arrived)

    [mail] = sent_emails(to=parent)
    assert "접수" in mail["subject"] and "최하늘" in mail["text"] and "최하늘" in mail["html"]
    [call] = childsys.bodies_for(env.event_id)
    assert call["path"] == "/enterwait/request" and call["signed"]
    assert json.loads(call["body"]) == json.loads(env.to_json())
    # nothing for reqsys, and nothing more to do
    assert not [c for c in childsys.received if c["path"].startswith("/request/")
                and json.loads(c["body"])["event_id"] == env.event_id]
    for _ in range(3):
        runner.run_once()
    assert len(sent_emails(to=parent)) == 1 and len(childsys.bodies_for(env.event_id)) == 1
