"""Effects once under concurrent delivery: the email claim (in progress, then done, lapsing after a crash),
and the consumers' other guarantees when the same message arrives twice at the same moment."""

from __future__ import annotations

import threading
import time

from shared.pipeline import email as email_handler
from shared.pipeline import ingest
from shared.pipeline.mailbox import sent_emails
from shared.platform import aws, idempotency
from tests.pipeline_helpers import bridge_event, envelope, queue_arn, sqs_record


def at_once(count: int, fn):
    """Run fn(i) in `count` threads released together; returns their results in order."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_the_same_email_message_in_two_threads_at_once_is_sent_once(resources, monkeypatch):
    env = envelope("CANCEL", child_name="박하늘")
    record = sqs_record(bridge_event(env), queue_arn(resources["EMAIL_QUEUE_URL"]))
    render = email_handler.render

    def slow_render(envelope):  # widen the window between deciding to send and sending
        time.sleep(0.5)
        return render(envelope)

    monkeypatch.setattr(email_handler, "render", slow_render)
    results = at_once(2, lambda _i: email_handler.handler({"Records": [dict(record)]}, None))

    assert len(sent_emails(to=env.application["parent_email"])) == 1
    # the loser saw the claim in progress and asked for a retry (it did not count the message as done)
    assert sorted(len(r["batchItemFailures"]) for r in results) == [0, 1]
    # the retry, once the winner is done, finds the email sent and sends nothing
    assert email_handler.handler({"Records": [dict(record)]}, None) == {"batchItemFailures": []}
    assert len(sent_emails(to=env.application["parent_email"])) == 1
    done = idempotency.record_status(resources["IDEMPOTENCY_TABLE"], f"email#{env.event_id}")
    assert done["status"] == "COMPLETED" and done["message_id"] and int(done["expiration"]) > time.time() + 86400


def test_a_crashed_claim_lapses_and_the_email_is_then_sent(resources):
    env = envelope("REQUEST")
    table = resources["IDEMPOTENCY_TABLE"]
    # a delivery that claimed the event and died before sending (no release, no completion)
    idempotency.claim(table, f"email#{env.event_id}", in_progress_seconds=1)
    record = sqs_record(bridge_event(env), queue_arn(resources["EMAIL_QUEUE_URL"]))
    assert len(email_handler.handler({"Records": [record]}, None)["batchItemFailures"]) == 1
    assert sent_emails(to=env.application["parent_email"]) == []
    time.sleep(2.1)  # the claim lapses
    assert email_handler.handler({"Records": [record]}, None) == {"batchItemFailures": []}
    assert len(sent_emails(to=env.application["parent_email"])) == 1


def test_a_failed_send_releases_the_claim_for_an_immediate_retry(resources, monkeypatch):
    env = envelope("REQUEST")
    record = sqs_record(bridge_event(env), queue_arn(resources["EMAIL_QUEUE_URL"]))
    monkeypatch.setenv("SES_SENDER", "unverified@nowhere.example")  # SES refuses it
    assert len(email_handler.handler({"Records": [record]}, None)["batchItemFailures"]) == 1
    assert idempotency.record_status(resources["IDEMPOTENCY_TABLE"], f"email#{env.event_id}") is None
    monkeypatch.delenv("SES_SENDER")
    assert email_handler.handler({"Records": [record]}, None) == {"batchItemFailures": []}
    assert len(sent_emails(to=env.application["parent_email"])) == 1


def test_the_same_ingest_message_in_threads_at_once_stores_one_event(resources):
    env = envelope("REQUEST")
    record = sqs_record(env.to_json(), queue_arn(resources["INTEGRATED_EVENTS_QUEUE_URL"]), group=env.request_id)
    results = at_once(4, lambda _i: ingest.handler({"Records": [dict(record)]}, None))
    assert all(r == {"batchItemFailures": []} for r in results)
    items = aws.client("dynamodb").query(
        TableName=resources["EVENTS_TABLE"], KeyConditionExpression="request_id = :r",
        ExpressionAttributeValues={":r": {"S": env.request_id}}, ConsistentRead=True)["Items"]
    assert [i["event_id"]["S"] for i in items] == [env.event_id]


def test_the_same_job_message_in_two_threads_at_once_runs_the_job_once(api, alice, monkeypatch):
    from pydantic import BaseModel

    from shared.platform.auth import Identity
    from taskapp import jobs

    runs = []

    class Nothing(BaseModel):
        pass

    @jobs.job_kind("test_slow_once", Nothing, title="Slow")
    def slow(job, params):
        runs.append(job.job_id)
        time.sleep(0.5)
        return {}

    try:
        with api.application.app_context():
            owner = Identity(sub=alice.sub, email=alice.email, name=alice.name, groups=(), daycare_id=None,
                             expires_at=0)
            job = jobs.enqueue(owner, "test_slow_once", {})
        record = {"messageId": "same", "body": f'{{"job_id": "{job["job_id"]}"}}', "eventSourceARN": "x",
                  "attributes": {"ApproximateReceiveCount": "1"}}
        results = at_once(2, lambda _i: jobs.handler({"Records": [dict(record)]}, None))
        assert runs == [job["job_id"]], "run once"
        # the other delivery was asked back (not deleted), and then finds the job finished
        assert sorted(len(r["batchItemFailures"]) for r in results) == [0, 1]
        assert jobs.handler({"Records": [dict(record)]}, None) == {"batchItemFailures": []}
        assert runs == [job["job_id"]]
    finally:
        jobs._KINDS.pop("test_slow_once", None)
