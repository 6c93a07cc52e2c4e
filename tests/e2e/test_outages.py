"""Outages heal: childsys down for an hour (time compressed), EventBridge refusing puts for a while; and the
operator sees why a message failed, and redrives or replays by the JSON API."""

from __future__ import annotations

import json

import pytest

from shared.pipeline import monitor
from shared.pipeline.mailbox import sent_emails
from shared.platform import aws, batch
from shared.platform.events import publish
from shared.tools.runner import Runner, SqsSource, load_event_sources
from tests.pipeline_helpers import StandIn, bridge_event, drain, envelope, pipeline_settings, queue_arn, run_until

HOUR = 3600


@pytest.fixture
def childsys(monkeypatch):
    """A stand-in for both apps' sync endpoints (answers `status`, records every call)."""
    with StandIn() as server:
        monkeypatch.setenv("CHILDSYS_URL", server.url)
        monkeypatch.setenv("REQSYS_URL", server.url)
        yield server


def test_childsys_down_for_an_hour_gets_every_event_after_it_returns_and_none_in_a_dlq(
        resources, tmp_path, childsys, monkeypatch):
    sqs = aws.client("sqs")
    url, dlq_url = resources["TO_CHILDSYS_QUEUE_URL"], resources["TO_CHILDSYS_DLQ_URL"]
    drain(url)
    drain(dlq_url)
    sources = [s for s in load_event_sources(pipeline_settings(resources, tmp_path), "test")
               if isinstance(s, SqsSource) and s.arn == queue_arn(url)]
    runner = Runner(sources)  # as Lambda: a failed message comes back when the handler's delay says

    # compressed time: each retry delay the handler asks for is counted in full, but waited as 1 s
    real_backoff, waited, back = batch.backoff_seconds, {}, []

    def compressed(receives: int) -> int:
        waited[receives] = real_backoff(receives)
        if sum(waited.values()) >= HOUR and not back:
            back.append(len(childsys.received))  # back after an hour of (simulated) retries
            childsys.status = 200
        return 1

    monkeypatch.setattr(batch, "backoff_seconds", compressed)
    events = [envelope(kind) for kind in ("REQUEST", "CANCEL", "REQUEST")]
    for env in events:
        sqs.send_message(QueueUrl=url, MessageBody=bridge_event(env))
    childsys.status = 503

    def after_return(env) -> list[dict]:
        return [call for call in childsys.received[back[0]:] if json.loads(call["body"])["event_id"] == env.event_id]

    run_until(runner, lambda: bool(back) and all(after_return(env) for env in events), seconds=120)

    assert sum(waited.values()) >= HOUR, "the target was down for a (simulated) hour"
    assert list(waited.values()) == sorted(waited.values()) and len(set(waited.values())) > 3, "the delays grew"
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
                        ["Attributes"]["RedrivePolicy"])
    for env in events:
        calls = childsys.bodies_for(env.event_id)
        assert len(calls) <= len(waited) + 1 < int(policy["maxReceiveCount"]), "caught up before the DLQ"
        assert len(after_return(env)) == 1 and all(call["signed"] for call in calls)
    run_until(runner, lambda: monitor.depth(url)["ApproximateNumberOfMessagesNotVisible"] == 0, seconds=10)
    assert drain(url) == [] and drain(dlq_url) == []


def test_a_dead_lettered_message_says_why_and_is_redriven_by_the_json_api(
        resources, tmp_path, childsys, monkeypatch, make_app, account):
    sqs = aws.client("sqs")
    url, dlq_url = resources["TO_CHILDSYS_QUEUE_URL"], resources["TO_CHILDSYS_DLQ_URL"]
    drain(url)
    drain(dlq_url)
    sources = [s for s in load_event_sources(pipeline_settings(resources, tmp_path), "test")
               if isinstance(s, SqsSource) and s.arn == queue_arn(url)]
    runner = Runner(sources, failed_visibility=0)
    env = envelope("CANCEL")
    sqs.send_message(QueueUrl=url, MessageBody=bridge_event(env))
    childsys.status = 409
    run_until(runner, lambda: monitor.depth(dlq_url)["ApproximateNumberOfMessages"] == 1, seconds=60)

    client, admin = make_app("reqsys").test_client(), account("admins")
    listed = client.get("/api/admin/queues/to-childsys/messages", headers=admin.headers)
    assert listed.status_code == 200, listed.get_data(as_text=True)
    [message] = listed.get_json()["messages"]
    assert message["event_id"] == env.event_id
    assert message["failure"].startswith("HTTP 409") and "/enterwait/cancel" in message["failure"]
    assert client.post("/api/admin/queues/to-childsys/redrive", json={"message_id": "bad id!"},
                       headers=admin.headers).status_code == 400
    assert client.post("/api/admin/queues/to-childsys/redrive", headers=account("parents").headers).status_code == 403

    childsys.status = 200  # fixed: the admin redrives it
    tries = len(childsys.bodies_for(env.event_id))
    redriven = client.post("/api/admin/queues/to-childsys/redrive", json={}, headers=admin.headers)
    assert redriven.status_code == 200 and redriven.get_json()["moved"] == 1 and redriven.get_json()["remaining"] == 0
    run_until(runner, lambda: len(childsys.bodies_for(env.event_id)) == tries + 1, seconds=30)
    assert drain(dlq_url) == []


@pytest.fixture
def refusing_bus(resources, monkeypatch):
    """EventBridge refusing PutEvents: the stream handler pointed at a bus that does not exist (yet)."""
    monkeypatch.setenv("EVENT_BUS_NAME", f"{resources['EVENT_BUS_NAME']}-missing")

    def accept() -> None:
        monkeypatch.setenv("EVENT_BUS_NAME", resources["EVENT_BUS_NAME"])

    return accept


def arrived(childsys, events) -> bool:
    return all(childsys.bodies_for(env.event_id) and sent_emails(to=env.application["parent_email"])
               for env in events)


def test_eventbridge_refusing_for_a_while_then_every_event_arrives(resources, tmp_path, childsys,
                                                                    refusing_bus):
    runner = Runner(load_event_sources(pipeline_settings(resources, tmp_path), "test"), failed_visibility=0,
                    stream_retry_delay=0)
    events = [envelope("REQUEST") for _ in range(4)]
    for env in events:
        publish(resources["INTEGRATED_EVENTS_QUEUE_URL"], env)
    for _ in range(4):
        runner.run_once()
    assert not any(childsys.bodies_for(env.event_id) for env in events), "nothing gets through meanwhile"
    refusing_bus()
    run_until(runner, lambda: arrived(childsys, events), seconds=60)
    for env in events:
        assert len(childsys.bodies_for(env.event_id)) == 1
        assert len(sent_emails(to=env.application["parent_email"])) == 1
    assert monitor.depth(resources["EVENTS_STREAM_DLQ_URL"])["ApproximateNumberOfMessages"] == 0


def test_eventbridge_refusing_too_long_leaves_the_batch_visible_and_a_replay_delivers_it(
        resources, tmp_path, childsys, refusing_bus):
    failures = resources["EVENTS_STREAM_DLQ_URL"]
    drain(failures)
    runner = Runner(load_event_sources(pipeline_settings(resources, tmp_path), "test"), failed_visibility=0,
                    max_stream_attempts=2, stream_retry_delay=0)
    events = [envelope("REQUEST") for _ in range(3)]
    for env in events:
        publish(resources["INTEGRATED_EVENTS_QUEUE_URL"], env)
    run_until(runner, lambda: monitor.depth(failures)["ApproximateNumberOfMessages"] > 0, seconds=60)

    # the operator sees it on the monitor, as a dead-letter queue holding messages, with what failed
    outputs = {k: v for k, v in resources.items() if k.endswith(("_QUEUE_URL", "_DLQ_URL"))}
    [row] = [row for row in monitor.queue_depths(outputs) if row.url == failures]
    assert row.stuck and row.slug == "events-stream"
    letters = monitor.peek(failures)
    assert letters and all(letter.stream_batch and "RetryAttemptsExhausted" in letter.failure for letter in letters)
    for _ in range(3):
        runner.run_once()
    assert not any(childsys.bodies_for(env.event_id) for env in events), "lost to nobody, delivered to nobody yet"

    refusing_bus()
    result = monitor.replay_stream_failures(failures, resources["EVENTS_TABLE"], resources["EVENT_BUS_NAME"])
    assert result.moved == len(letters) and result.replayed >= len(events) and not result.errors
    run_until(runner, lambda: arrived(childsys, events), seconds=60)
    for env in events:
        assert len(childsys.bodies_for(env.event_id)) == 1
        assert len(sent_emails(to=env.application["parent_email"])) == 1
    assert monitor.depth(failures)["ApproximateNumberOfMessages"] == 0
