"""The pipeline's handlers one by one, against the provisioned emulator (real queues, table, bus, SES)."""

from __future__ import annotations

import json
import re
import socket

import pytest

from shared.pipeline import email as email_handler
from shared.pipeline import forward, ingest, stream
from shared.pipeline.mailbox import sent_emails
from shared.pipeline.stream import EVENT_SOURCE
from shared.platform import aws
from shared.platform.batch import MalformedMessage, process_sqs_batch
from shared.platform.events import Envelope
from tests.pipeline_helpers import (
    StandIn,
    bridge_event,
    drain,
    email_record,
    envelope,
    event_ids,
    queue_arn,
    sqs_record,
)


def table_items(table: str, request_id: str) -> list[dict]:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    items = aws.client("dynamodb").query(
        TableName=table, KeyConditionExpression="request_id = :r",
        ExpressionAttributeValues={":r": {"S": request_id}}, ConsistentRead=True)["Items"]
    return [{k: deserializer.deserialize(v) for k, v in item.items()} for item in items]


# --- the shared batch helper -------------------------------------------------------------------------

def test_process_sqs_batch_reports_only_the_failed_records():
    arn = f"arn:aws:sqs:{'ap-northeast-2'}:123456789012:plain"
    records = [sqs_record(body, arn) for body in ("ok", "boom", "bad", "ok")]

    def fn(record):
        if record["body"] == "boom":
            raise RuntimeError("transient")
        if record["body"] == "bad":
            raise MalformedMessage("never succeeds")

    result = process_sqs_batch({"Records": records}, fn)
    assert result == {"batchItemFailures": [{"itemIdentifier": records[1]["messageId"]},
                                            {"itemIdentifier": records[2]["messageId"]}]}
    assert process_sqs_batch({"Records": []}, fn) == {"batchItemFailures": []}


def test_process_sqs_batch_keeps_fifo_group_order():
    arn = "arn:aws:sqs:ap-northeast-2:123456789012:q.fifo"
    records = [sqs_record("fail", arn, "g1"), sqs_record("ok", arn, "g1"), sqs_record("ok", arn, "g2")]
    seen = []

    def fn(record):
        seen.append(record["messageId"])
        if record["body"] == "fail":
            raise RuntimeError("transient")

    result = process_sqs_batch({"Records": records}, fn)
    # the later g1 record is not processed (it would overtake the failed one) but reported; g2 goes on
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [r["messageId"] for r in records[:2]]
    assert seen == [records[0]["messageId"], records[2]["messageId"]]


# --- ingest ------------------------------------------------------------------------------------------

def test_ingest_stores_an_event_once_and_reports_a_malformed_body(resources, caplog):
    arn = queue_arn(resources["INTEGRATED_EVENTS_QUEUE_URL"])
    env = envelope("REQUEST", version=3, note=1.5)
    valid = sqs_record(env.to_json(), arn, env.request_id)
    duplicate = sqs_record(env.to_json(), arn, env.request_id)
    secret_content = '{"type": "REQUEST", "application": {"parent_tel": "010-9999-0000"}'  # truncated JSON
    malformed = sqs_record(secret_content, arn, "other-group")
    not_an_envelope = sqs_record(json.dumps({"type": "PAY", "application": {}}), arn, "third-group")

    result = ingest.handler({"Records": [valid, duplicate, malformed, not_an_envelope]}, None)

    assert result == {"batchItemFailures": [{"itemIdentifier": malformed["messageId"]},
                                            {"itemIdentifier": not_an_envelope["messageId"]}]}
    items = table_items(resources["EVENTS_TABLE"], env.request_id)
    assert len(items) == 1
    item = items[0]
    assert item["event_id"] == env.event_id and item["type"] == "REQUEST" and item["version"] == 3
    assert item["occurred_at"] == env.occurred_at.isoformat() and item["ingested_at"]
    assert item["application"]["parent_email"] == env.application["parent_email"]  # a map, not a string
    assert float(item["application"]["note"]) == 1.5
    assert malformed["messageId"] in caplog.text and "malformed" in caplog.text
    assert "010-9999-0000" not in caplog.text  # ids and reasons only, no content

    # delivered again (SQS is at least once): not a failure, and the item is untouched (an overwrite
    # would be a MODIFY on the stream and a new ingested_at)
    assert ingest.handler({"Records": [sqs_record(env.to_json(), arn, env.request_id)]}, None) == {
        "batchItemFailures": []}
    assert table_items(resources["EVENTS_TABLE"], env.request_id) == items


def test_ingest_reports_a_record_it_could_not_store(resources, monkeypatch):
    monkeypatch.setenv("EVENTS_TABLE", "no-such-table")
    env = envelope()
    record = sqs_record(env.to_json(), "arn:aws:sqs:ap-northeast-2:123456789012:x")
    result = ingest.handler({"Records": [record]}, None)
    assert result == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}


# --- stream ------------------------------------------------------------------------------------------

def stream_record(env, event_name: str = "INSERT", sequence: str = "100") -> dict:
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    image = {k: serializer.serialize(v) for k, v in ingest.to_item(env).items()}
    data = {"Keys": {"request_id": image["request_id"], "event_id": image["event_id"]}, "SequenceNumber": sequence,
            "SizeBytes": 100, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if event_name in ("INSERT", "MODIFY"):
        data["NewImage"] = image
    if event_name in ("MODIFY", "REMOVE"):
        data["OldImage"] = image
    return {"eventID": sequence, "eventName": event_name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "ap-northeast-2", "dynamodb": data,
            "eventSourceARN": "arn:aws:dynamodb:ap-northeast-2:123456789012:table/t/stream/x"}


@pytest.fixture
def routed_queues(resources):
    """The three queues the bus's rules feed, emptied before and after."""
    urls = {name: resources[f"{name}_QUEUE_URL"] for name in ("EMAIL", "TO_CHILDSYS", "TO_REQSYS")}
    for url in urls.values():
        drain(url)
    yield urls
    for url in urls.values():
        drain(url)


def test_stream_publishes_inserts_through_the_real_rules(resources, routed_queues):
    request, accept, modified = envelope("REQUEST"), envelope("ACCEPT", version=2), envelope("CANCEL")
    records = [stream_record(request, sequence="1"), stream_record(modified, "MODIFY", "2"),
               stream_record(modified, "REMOVE", "3"), stream_record(accept, sequence="4")]

    assert stream.handler({"Records": records}, None) == {"batchItemFailures": []}

    email = drain(routed_queues["EMAIL"])
    to_childsys = drain(routed_queues["TO_CHILDSYS"])
    to_reqsys = drain(routed_queues["TO_REQSYS"])
    assert sorted(event_ids(email)) == sorted([request.event_id, accept.event_id])
    assert event_ids(to_childsys) == [request.event_id]
    assert event_ids(to_reqsys) == [accept.event_id]
    event = json.loads(to_childsys[0]["Body"])
    assert event["source"] == EVENT_SOURCE and event["detail-type"] == "REQUEST"
    assert event["detail"] == json.loads(request.to_json())  # the envelope, unchanged


@pytest.mark.parametrize(("event_type", "targets"), [
    ("OFFER", {"EMAIL", "TO_REQSYS"}), ("VERIFY", {"EMAIL", "TO_REQSYS"}),
    ("CONFIRM", {"EMAIL", "TO_CHILDSYS"}), ("DECLINE", {"EMAIL", "TO_CHILDSYS"}),
    ("EXPIRE", {"EMAIL", "TO_CHILDSYS"}), ("WITHDRAW", {"EMAIL", "TO_CHILDSYS"}),
    ("REMIND", {"EMAIL"}), ("PROOF", {"TO_CHILDSYS"}),
])
def test_the_portal_events_take_their_routes_and_keep_the_actor(resources, routed_queues, event_type, targets):
    """ingest -> events table -> stream -> the bus's rules: each new type reaches the queues it needs,
    and the envelope (actor included) arrives unchanged."""
    env = Envelope(**{**envelope(event_type, version=2).model_dump(), "actor": "staff@example.com"})
    assert ingest.store(env, resources["EVENTS_TABLE"])
    item = aws.client("dynamodb").get_item(TableName=resources["EVENTS_TABLE"], Key={
        "request_id": {"S": env.request_id}, "event_id": {"S": env.event_id}})["Item"]
    assert stream.handler({"Records": [{**stream_record(env, sequence="1"), "dynamodb": {
        "NewImage": item, "SequenceNumber": "1"}}]}, None) == {"batchItemFailures": []}
    # this event's messages only: a delayed retry of another test's event may come visible meanwhile
    arrived = {name: [m for m in drain(url) if env.event_id in event_ids([m])] for name, url in routed_queues.items()}
    assert {name for name, messages in arrived.items() if messages} == targets
    for messages in arrived.values():
        for message in messages:
            assert json.loads(message["Body"])["detail"] == json.loads(env.to_json())


def test_stream_ignores_modify_and_remove(routed_queues):
    env = envelope("REQUEST")
    records = [stream_record(env, "MODIFY", "7"), stream_record(env, "REMOVE", "8")]
    assert stream.handler({"Records": records}, None) == {"batchItemFailures": []}
    assert all(drain(url) == [] for url in routed_queues.values())


def test_stream_reports_failed_entries_by_sequence_number(resources, monkeypatch, routed_queues):
    envs = [envelope("REQUEST") for _ in range(13)]  # two put_events calls: 10 + 3
    records = [stream_record(env, sequence=str(100 + i)) for i, env in enumerate(envs)]
    real = aws.client("events")

    class Refusing:
        """EventBridge refusing the third entry of every call."""

        def put_events(self, Entries):  # noqa: N803 - boto3's name
            answer = real.put_events(Entries=Entries[:2] + Entries[3:])["Entries"]
            refused = {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}
            return {"FailedEntryCount": 1, "Entries": answer[:2] + [refused] + answer[2:]}

    monkeypatch.setattr(stream, "client", lambda service: Refusing())
    result = stream.handler({"Records": records}, None)
    assert result == {"batchItemFailures": [{"itemIdentifier": "102"}, {"itemIdentifier": "112"}]}
    assert len(drain(routed_queues["TO_CHILDSYS"])) == 11


# --- email -------------------------------------------------------------------------------------------



def test_email_request_and_accept_reach_the_parent_once(resources):
    request = envelope("REQUEST", child_name="김민준")
    accept = envelope("ACCEPT", version=2, child_name="이서연")
    result = email_handler.handler({"Records": [email_record(resources, request), email_record(resources, accept)]},
                                   None)
    assert result == {"batchItemFailures": []}

    [received] = sent_emails(to=request.application["parent_email"])
    assert received["subject"] == ("[어린이집 입소대기] 김민준 어린이의 입소대기 신청이 접수되었습니다"
                                   " / Application received")
    text, html = received["text"], received["html"]
    assert text.index("접수되었습니다") < text.index("We have received")  # Korean first, English below
    for part in (text, html):
        for detail in ("김민준", "2023-01-01", "A00017", request.request_id):
            assert detail in part
    assert html.lstrip().startswith("<!DOCTYPE html>") and "<table" in html and "Application details" in html
    assert received["sent_at"]

    [accepted] = sent_emails(to=accept.application["parent_email"])
    assert "승인" in accepted["subject"] and "Application accepted" in accepted["subject"]
    assert "이서연" in accepted["text"] and "has been accepted" in accepted["text"]
    assert "승인" in accepted["html"]

    # the same event again (SQS redelivery, or a duplicate rule match): no second email
    again = email_handler.handler({"Records": [email_record(resources, request)]}, None)
    assert again == {"batchItemFailures": []}
    assert len(sent_emails(to=request.application["parent_email"])) == 1


def test_mailbox_cli_prints_the_emails(resources, capsys):
    from shared.pipeline import mailbox

    env = envelope("CANCEL", version=2, child_name="정우진")
    assert email_handler.handler({"Records": [email_record(resources, env)]}, None) == {"batchItemFailures": []}
    assert mailbox.main(["--to", env.application["parent_email"], "--html"]) == 0
    out = capsys.readouterr().out
    assert "정우진" in out and "Application cancelled" in out and "<!DOCTYPE html>" in out and "1 email(s)" in out
    assert mailbox.main(["--to", "nobody@example.com"]) == 0
    assert "no emails to nobody@example.com" in capsys.readouterr().out


def test_email_reject_shows_the_reason_and_escapes_html(resources):
    reject = envelope("REJECT", version=2, child_name="<b>박지호</b>", reason="정원 초과 <script>x</script>")
    cancel = envelope("CANCEL", version=2)
    records = [email_record(resources, reject), email_record(resources, cancel)]
    assert email_handler.handler({"Records": records}, None) == {"batchItemFailures": []}

    [mail] = sent_emails(to=reject.application["parent_email"])
    assert "반려" in mail["subject"] and "Application rejected" in mail["subject"]
    assert "정원 초과 <script>x</script>" in mail["text"]  # text is plain: no escaping
    assert "<script>" not in mail["html"] and "&lt;script&gt;" in mail["html"]
    assert "&lt;b&gt;박지호&lt;/b&gt;" in mail["html"]
    [cancelled] = sent_emails(to=cancel.application["parent_email"])
    assert "취소" in cancelled["subject"] and "Application cancelled" in cancelled["subject"]


DEADLINE = {"offer_expires_at": "2026-12-09T14:59:59Z"}


@pytest.mark.parametrize(("event_type", "korean", "english", "extra"), [
    ("OFFER", "2026-12-09 23:59 (KST)까지", "by 2026-12-09 23:59 (KST)", DEADLINE),
    ("REMIND", "답변 기한은 2026-12-09 23:59 (KST)", "deadline is 2026-12-09", DEADLINE),
    ("CONFIRM", "입소가 확정", "is confirmed", {}),
    ("DECLINE", "거절하셨습니다", "You declined", {}),
    ("EXPIRE", "만료되었습니다", "has expired", {}),
    ("WITHDRAW", "푸른숲 어린이집에 입소를 확정하여", "is enrolled at 푸른숲 어린이집",
     {"enrolled_nursery_name": "푸른숲 어린이집"}),
    ("VERIFY", "'맞벌이'을(를) 인정하지 않았습니다", "Reason: 재직증명서 없음", {"criterion": {
        "code": "DUAL_INCOME", "status": "REJECTED", "reason": "재직증명서 없음", "label_ko": "맞벌이",
        "label_en": "Dual income"}}),
])
def test_email_for_each_portal_event(resources, event_type, korean, english, extra):
    env = envelope(event_type, version=2, nursery_name="햇살 어린이집", **extra)
    assert email_handler.handler({"Records": [email_record(resources, env)]}, None) == {"batchItemFailures": []}
    [mail] = sent_emails(to=env.application["parent_email"])
    assert mail["subject"].endswith(email_handler.SUBJECTS[env.type][1])
    html_text = re.sub(r"<[^>]+>", "", mail["html"])
    assert korean in mail["text"] and english in mail["text"] and korean in html_text and english in html_text
    assert mail["text"].index(korean) < mail["text"].index(english), "Korean first"
    assert "햇살 어린이집 (A00017)" in mail["text"]


def test_email_failures_are_reported(resources, monkeypatch):
    no_address = envelope("REQUEST", parent_email="")
    good = envelope("REQUEST")
    records = [email_record(resources, no_address), sqs_record("not json", "arn:aws:sqs:x:1:email"),
               email_record(resources, good)]
    monkeypatch.setenv("SES_SENDER", "unverified@nowhere.example")  # SES refuses it: retried
    result = email_handler.handler({"Records": records}, None)
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [r["messageId"] for r in records]
    assert sent_emails(to=good.application["parent_email"]) == []
    # not marked as sent, so it goes out once SES accepts it
    monkeypatch.delenv("SES_SENDER")
    assert email_handler.handler({"Records": [records[2]]}, None) == {"batchItemFailures": []}
    assert len(sent_emails(to=good.application["parent_email"])) == 1


# --- forward -----------------------------------------------------------------------------------------

@pytest.fixture
def stand_in(monkeypatch):
    """One stand-in server as both childsys and reqsys."""
    with StandIn() as server:
        monkeypatch.setenv("CHILDSYS_URL", server.url)
        monkeypatch.setenv("REQSYS_URL", server.url + "/")
        yield server


@pytest.mark.parametrize(("event_type", "path"), [
    ("REQUEST", "/enterwait/request"), ("CANCEL", "/enterwait/cancel"),
    ("ACCEPT", "/request/accept"), ("REJECT", "/request/reject"),
    ("OFFER", "/request/offer"), ("VERIFY", "/request/verify"),
    ("CONFIRM", "/enterwait/confirm"), ("DECLINE", "/enterwait/decline"), ("EXPIRE", "/enterwait/expire"),
    ("WITHDRAW", "/enterwait/withdraw"), ("PROOF", "/enterwait/proof"),
])
def test_forward_posts_the_signed_envelope_to_the_right_path(stand_in, event_type, path):
    env = envelope(event_type)
    record = sqs_record(bridge_event(env), "arn:aws:sqs:ap-northeast-2:123456789012:daycare-test-to-childsys")
    assert forward.handler({"Records": [record]}, None) == {"batchItemFailures": []}
    [call] = stand_in.received
    assert call["path"] == path and call["signed"] and call["content_type"] == "application/json"
    assert call["body"] == env.to_json().encode()


def test_forward_reports_error_answers_and_unreachable_targets(stand_in, monkeypatch):
    arn = "arn:aws:sqs:ap-northeast-2:123456789012:daycare-test-to-reqsys"
    stand_in.status = 500
    failing = sqs_record(bridge_event(envelope("ACCEPT", version=2)), arn)
    assert forward.handler({"Records": [failing]}, None) == {
        "batchItemFailures": [{"itemIdentifier": failing["messageId"]}]}
    assert len(stand_in.received) == 1

    stand_in.status = 200
    ok = sqs_record(bridge_event(envelope("REQUEST")), arn)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        monkeypatch.setenv("REQSYS_URL", f"http://127.0.0.1:{sock.getsockname()[1]}")
    refused = sqs_record(bridge_event(envelope("REJECT", version=2)), arn)
    result = forward.handler({"Records": [ok, refused]}, None)
    assert result == {"batchItemFailures": [{"itemIdentifier": refused["messageId"]}]}


def test_forward_signature_is_checked_by_the_target(monkeypatch):
    with StandIn(secret="another-secret") as server:  # the target holds a different secret: 401
        monkeypatch.setenv("CHILDSYS_URL", server.url)
        record = sqs_record(bridge_event(envelope("REQUEST")), "arn:aws:sqs:ap-northeast-2:123456789012:x")
        assert forward.handler({"Records": [record]}, None)["batchItemFailures"]
        assert server.received and not server.received[0]["signed"]


def test_forward_needs_base_urls_in_aws(monkeypatch):
    monkeypatch.delenv("CHILDSYS_URL", raising=False)
    assert forward.target_url(forward.EventType.REQUEST) == "http://127.0.0.1:8002/enterwait/request"
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    with pytest.raises(RuntimeError, match="CHILDSYS_URL"):
        forward.target_url(forward.EventType.CANCEL)
