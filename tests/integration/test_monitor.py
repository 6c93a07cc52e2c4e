"""The admins' pipeline monitor in reqsys: queue depths, dead letters, redrive, timelines, emails.

Against the moto server with the provisioned queues. The queues are shared by the whole test
session, so each test purges the queues it counts before putting its own messages in.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser

import pytest

from shared.pipeline import monitor
from shared.platform import aws
from shared.platform.events import Envelope, EventType
from tests.conftest import csrf_token_in

APPLICATION = {
    "child_id": "202301013333333", "child_name": "김아기", "child_birthday": "20230101", "user_id": "user",
    "parent_name": "김부모", "parent_tel": "010-0000-0000", "parent_address": "서울", "parent_postcode": "00001",
    "parent_email": "parent@example.com", "nursery_id": "A00017",
}


# --- helpers ------------------------------------------------------------------------------------


class _Rows(HTMLParser):
    """The data-* attributes of the queue table's rows."""

    def __init__(self):
        super().__init__()
        self.rows: list[dict[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-queue" in attrs:
            self.rows.append(attrs)


def queue_rows(html: str) -> dict[str, dict[str, str]]:
    parser = _Rows()
    parser.feed(html)
    return {row["data-queue"]: row for row in parser.rows}


def name_of(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def all_queue_urls(resources) -> list[str]:
    return [url for key, url in resources.items() if key.endswith(("_QUEUE_URL", "_DLQ_URL"))]


def purge(sqs, *urls: str) -> None:
    """Receive and delete every visible message (PurgeQueue is allowed once a minute per queue,
    and other test files purge these queues too)."""
    for url in urls:
        while True:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30,
                                        WaitTimeSeconds=0).get("Messages", [])
            if not batch:
                break
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])


def counts(sqs, url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def receive_all(sqs, url: str, expected: int) -> list[dict]:
    messages: list[dict] = []
    for _ in range(20):
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=0,
                                    MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"])
        messages += batch.get("Messages", [])
        if len(messages) >= expected:
            break
    return messages


def envelope(event_type: EventType = EventType.REQUEST, **application) -> Envelope:
    return Envelope(type=event_type, application={**APPLICATION, **application})


def eventbridge_body(env: Envelope) -> str:
    """What the bus's rule delivers to the email / to-childsys / to-reqsys queues."""
    return json.dumps({"version": "0", "id": str(uuid.uuid4()), "detail-type": str(env.type),
                       "source": "daycare.waitlist", "time": "2026-01-01T00:00:00Z",
                       "detail": json.loads(env.to_json())})


def flashes(html: str) -> str:
    return " ".join(unescape(m) for m in re.findall(r'<p class="flash [^"]*">(.*?)</p>', html, re.S))


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def clean_queues(resources):
    """Leave no test message behind for the pipeline tests that run these queues later."""
    yield
    purge(aws.client("sqs"), *all_queue_urls(resources))


@pytest.fixture
def app(make_app):
    return make_app("reqsys")


@pytest.fixture
def admin(make_user):
    return make_user(groups=["admins"], name="관리자")


@pytest.fixture
def admin_browser(app, admin, sign_in):
    browser = app.test_client()
    sign_in(browser, admin.email)
    browser.get("/lang/en")  # the assertions read English text; Korean is the default
    return browser


@pytest.fixture
def parent(make_user):
    return make_user(groups=["parents"], name="김부모")


def redrive(browser, slug: str, message_id: str | None = None):
    page = f"/admin/monitor/dlq/{slug}"
    token = csrf_token_in(browser.get(page).get_data(as_text=True))
    data = {"csrf_token": token, **({"message_id": message_id} if message_id else {})}
    response = browser.post(f"{page}/redrive", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.location.endswith(page)
    return browser.get(page).get_data(as_text=True)


# --- access -------------------------------------------------------------------------------------

PAGES = ("/admin/monitor/", "/admin/monitor/dlq/email", "/admin/monitor/timeline?request_id=x1",
         "/admin/monitor/emails")


def test_anonymous_is_sent_to_sign_in(app):
    browser = app.test_client()
    for path in PAGES:
        response = browser.get(path)
        assert response.status_code == 302, path
        assert "/auth/login" in response.location


def test_parents_and_staff_get_403(app, parent, make_user, sign_in, sqs, resources):
    purge(sqs, resources["EMAIL_DLQ_URL"])
    sqs.send_message(QueueUrl=resources["EMAIL_DLQ_URL"], MessageBody="stuck")
    for user in (parent, make_user(groups=["staff"], daycare_id="A00017")):
        browser = app.test_client()
        sign_in(browser, user.email)
        for path in PAGES:
            assert browser.get(path).status_code == 403, path
        # with a valid CSRF token of their own session, the redrive is still refused
        token = csrf_token_in(browser.get("/").get_data(as_text=True))
        response = browser.post("/admin/monitor/dlq/email/redrive", data={"csrf_token": token})
        assert response.status_code == 403
    assert counts(sqs, resources["EMAIL_DLQ_URL"]) == (1, 0)


def test_redrive_needs_the_csrf_token(admin_browser, sqs, resources):
    purge(sqs, resources["EMAIL_DLQ_URL"], resources["EMAIL_QUEUE_URL"])
    sqs.send_message(QueueUrl=resources["EMAIL_DLQ_URL"], MessageBody="stuck")
    response = admin_browser.post("/admin/monitor/dlq/email/redrive", data={})
    assert response.status_code == 400
    assert counts(sqs, resources["EMAIL_DLQ_URL"]) == (1, 0)
    assert counts(sqs, resources["EMAIL_QUEUE_URL"]) == (0, 0)


def test_unknown_queue_is_404(admin_browser):
    assert admin_browser.get("/admin/monitor/dlq/no-such-queue").status_code == 404


# --- queue depths -------------------------------------------------------------------------------


def test_admin_sees_every_queue_and_dlq_with_their_depths(admin_browser, sqs, resources):
    urls = all_queue_urls(resources)
    assert len(urls) == 13  # six queues, each with its DLQ, and the events stream's failure queue
    purge(sqs, *urls)
    for i in range(3):
        sqs.send_message(QueueUrl=resources["EMAIL_DLQ_URL"], MessageBody=f"dead {i}")
    sqs.send_message(QueueUrl=resources["EMAIL_QUEUE_URL"], MessageBody="waiting")
    sqs.send_message(QueueUrl=resources["TO_CHILDSYS_QUEUE_URL"], MessageBody="in flight")
    in_flight = sqs.receive_message(QueueUrl=resources["TO_CHILDSYS_QUEUE_URL"], VisibilityTimeout=600)["Messages"]
    sqs.send_message(QueueUrl=resources["INTEGRATED_EVENTS_DLQ_URL"], MessageBody="dead fifo",
                     MessageGroupId="g", MessageDeduplicationId=uuid.uuid4().hex)
    try:
        response = admin_browser.get("/admin/monitor/")
    finally:
        sqs.delete_message(QueueUrl=resources["TO_CHILDSYS_QUEUE_URL"], ReceiptHandle=in_flight[0]["ReceiptHandle"])
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    rows = queue_rows(html)
    assert set(rows) == {name_of(url) for url in urls}
    expected = {name_of(url): (0, 0, 0) for url in urls}
    expected.update({
        name_of(resources["EMAIL_DLQ_URL"]): (3, 0, 0),
        name_of(resources["EMAIL_QUEUE_URL"]): (1, 0, 0),
        name_of(resources["TO_CHILDSYS_QUEUE_URL"]): (0, 1, 0),
        name_of(resources["INTEGRATED_EVENTS_DLQ_URL"]): (1, 0, 0),
    })
    actual = {name: (int(r["data-visible"]), int(r["data-in-flight"]), int(r["data-delayed"]))
              for name, r in rows.items()}
    assert actual == expected
    # the DLQs holding messages are highlighted, and only they
    stuck = {name for name, row in rows.items() if "stuck" in row["class"].split()}
    assert stuck == {name_of(resources["EMAIL_DLQ_URL"]), name_of(resources["INTEGRATED_EVENTS_DLQ_URL"])}
    assert {row["data-kind"] for name, row in rows.items() if "-dlq" in name} == {"dlq"}
    # each queue is followed by its own DLQ
    names = list(rows)
    for key in ("EMAIL", "INTEGRATED_EVENTS", "TO_CHILDSYS"):
        queue = names.index(name_of(resources[f"{key}_QUEUE_URL"]))
        assert names[queue + 1] == name_of(resources[f"{key}_DLQ_URL"])
    assert "/admin/monitor/dlq/email" in html and "/admin/monitor/dlq/integrated-events" in html


def test_delayed_messages_are_counted(sqs):
    url = sqs.create_queue(QueueName=f"monitor-test-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    try:
        sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=600)
        sqs.send_message(QueueUrl=url, MessageBody="now")
        [row] = monitor.queue_depths({"X_QUEUE_URL": url})
        assert (row.kind, row.visible, row.in_flight, row.delayed, row.total) == ("queue", 1, 0, 1, 2)
    finally:
        sqs.delete_queue(QueueUrl=url)
    [row] = monitor.queue_depths({"X_DLQ_URL": url})  # a queue that is gone: reported, not a crash
    assert row.error and row.kind == "dlq"


def test_queue_list_comes_from_the_outputs_not_a_fixed_list():
    outputs = {"A_QUEUE_URL": "http://x/q-a", "A_DLQ_URL": "http://x/q-a-dlq", "A_QUEUE_ARN": "arn:a",
               "B_DLQ_URL": "http://x/q-b-dlq.fifo", "EVENTS_TABLE": "t"}
    assert monitor.queue_pairs(outputs) == [
        monitor.QueuePair("A", "http://x/q-a", "http://x/q-a-dlq"),
        monitor.QueuePair("B", None, "http://x/q-b-dlq.fifo"),
    ]
    assert monitor.find_pair(outputs, "b").fifo


# --- dead letters -------------------------------------------------------------------------------


def test_dlq_listing_shows_what_is_stuck_and_keeps_the_messages(admin_browser, sqs, resources):
    dlq = resources["TO_CHILDSYS_DLQ_URL"]
    purge(sqs, dlq)
    stuck = envelope(EventType.CANCEL, child_id="C" + uuid.uuid4().hex[:12])
    sqs.send_message(QueueUrl=dlq, MessageBody=eventbridge_body(stuck))
    sqs.send_message(QueueUrl=dlq, MessageBody="<script>alert('x')</script> not json")
    plain = envelope(EventType.REQUEST, child_id="P" + uuid.uuid4().hex[:12])
    sqs.send_message(QueueUrl=dlq, MessageBody=plain.to_json(),
                     MessageAttributes={"type": {"DataType": "String", "StringValue": "REQUEST"}})
    assert counts(sqs, dlq) == (3, 0)

    response = admin_browser.get("/admin/monitor/dlq/to-childsys")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    articles = re.findall(r'<article class="card dead-letter".*?</article>', html, re.S)
    assert len(articles) == 3
    by_request = {}
    for article in articles:
        found = re.search(r'class="request-id">([^<]+)<', article)
        by_request[found.group(1) if found else None] = article
    assert set(by_request) == {stuck.request_id, plain.request_id, None}
    assert ">CANCEL<" in by_request[stuck.request_id] and stuck.event_id in by_request[stuck.request_id]
    assert "eventbridge" in by_request[stuck.request_id]
    assert f"/admin/monitor/timeline?request_id={stuck.request_id}" in by_request[stuck.request_id]
    assert ">REQUEST<" in by_request[plain.request_id] and plain.event_id in by_request[plain.request_id]
    garbage = by_request[None]
    assert "not a JSON object" in garbage  # why it is stuck
    assert "&lt;script&gt;" in garbage and "<script>alert" not in html  # escaped
    assert re.search(r"Receive count</dt><dd>\d+</dd>", garbage)

    # looking did not consume anything: all three are visible again at once, and a second look sees them
    assert counts(sqs, dlq) == (3, 0)
    again = admin_browser.get("/admin/monitor/dlq/to-childsys").get_data(as_text=True)
    assert len(re.findall(r'<article class="card dead-letter"', again)) == 3
    assert counts(sqs, dlq) == (3, 0)


def test_describe_body_finds_the_envelope_in_every_wrapper():
    env = envelope(EventType.ACCEPT, child_id="W1")
    direct = monitor.describe_body(env.to_json())
    bridged = monitor.describe_body(eventbridge_body(env))
    sns = monitor.describe_body(json.dumps({"Type": "Notification", "Message": env.to_json()}))
    for info, wrapper in ((direct, "envelope"), (bridged, "eventbridge"), (sns, "sns")):
        assert (info.wrapper, info.type, info.request_id, info.event_id, info.problem) == (
            wrapper, "ACCEPT", "W1A00017", env.event_id, None)
    broken = monitor.describe_body(json.dumps({"type": "DELETE", "application": {"child_id": "1", "nursery_id": "2"}}))
    assert broken.request_id == "12" and broken.type == "DELETE" and "type" in broken.problem
    assert monitor.describe_body("[1, 2]").problem == "the body is not a JSON object"


# --- redrive ------------------------------------------------------------------------------------


def test_redrive_moves_every_message_back_to_a_standard_queue(admin_browser, sqs, resources):
    source, dlq = resources["EMAIL_QUEUE_URL"], resources["EMAIL_DLQ_URL"]
    purge(sqs, source, dlq)
    bodies = [eventbridge_body(envelope(child_id=f"R{i}{uuid.uuid4().hex[:8]}")) for i in range(13)]
    for body in bodies:
        sqs.send_message(QueueUrl=dlq, MessageBody=body,
                         MessageAttributes={"type": {"DataType": "String", "StringValue": "REQUEST"},
                                            "tries": {"DataType": "Number", "StringValue": "5"}})

    html = redrive(admin_browser, "email")

    assert "13 message(s) moved back to" in flashes(html)
    assert counts(sqs, dlq) == (0, 0)
    moved = receive_all(sqs, source, 13)
    assert sorted(m["Body"] for m in moved) == sorted(bodies)
    for message in moved:
        assert message["MessageAttributes"]["type"] == {"DataType": "String", "StringValue": "REQUEST"}
        assert message["MessageAttributes"]["tries"] == {"DataType": "Number", "StringValue": "5"}


def test_redrive_moves_every_message_back_to_the_fifo_queue(admin_browser, sqs, resources):
    source, dlq = resources["INTEGRATED_EVENTS_QUEUE_URL"], resources["INTEGRATED_EVENTS_DLQ_URL"]
    purge(sqs, source, dlq)
    first = [envelope(EventType.REQUEST, child_id="F1"), envelope(EventType.CANCEL, child_id="F1")]
    second = [envelope(EventType.REQUEST, child_id="F2")]
    # AWS drops a FIFO message whose deduplication id the queue saw in the last 5 minutes, even
    # if that message is gone. moto only dedupes against messages still in the queue, so one
    # original is left in the source queue to reproduce the window: reusing the original
    # deduplication id would silently lose the redriven copy.
    sqs.send_message(QueueUrl=source, MessageBody=first[0].to_json(), MessageGroupId=first[0].request_id,
                     MessageDeduplicationId=first[0].event_id)
    for env in [*first, *second]:
        sqs.send_message(QueueUrl=dlq, MessageBody=env.to_json(), MessageGroupId=env.request_id,
                         MessageDeduplicationId=env.event_id)
    assert counts(sqs, dlq) == (3, 0)
    listing = admin_browser.get("/admin/monitor/dlq/integrated-events").get_data(as_text=True)
    assert len(re.findall(r'data-message-id="[^"]+"', listing)) == 3
    assert f"<code>{first[0].request_id}</code>" in listing  # the message group
    assert counts(sqs, dlq) == (3, 0)

    html = redrive(admin_browser, "integrated-events")

    assert "3 message(s) moved back to" in flashes(html)
    assert counts(sqs, dlq) == (0, 0)
    moved = receive_all(sqs, source, 4)
    assert len(moved) == 4  # the original plus the three redriven
    by_group: dict[str, list[str]] = {}
    for message in moved:
        by_group.setdefault(message["Attributes"]["MessageGroupId"], []).append(message["Body"])
    assert by_group[first[0].request_id] == [e.to_json() for e in (first[0], *first)]  # order kept
    assert by_group[second[0].request_id] == [second[0].to_json()]


def test_redrive_one_message_leaves_the_others(admin_browser, sqs, resources):
    source, dlq = resources["TO_REQSYS_QUEUE_URL"], resources["TO_REQSYS_DLQ_URL"]
    purge(sqs, source, dlq)
    envs = [envelope(EventType.ACCEPT, child_id=f"O{i}") for i in range(3)]
    ids = [sqs.send_message(QueueUrl=dlq, MessageBody=eventbridge_body(e))["MessageId"] for e in envs]

    html = redrive(admin_browser, "to-reqsys", message_id=ids[1])

    assert "1 message(s) moved back to" in flashes(html)
    assert counts(sqs, dlq) == (2, 0)
    moved = receive_all(sqs, source, 1)
    assert [json.loads(m["Body"])["detail"]["event_id"] for m in moved] == [envs[1].event_id]
    # asking again for the same message: it is gone, and the others are still there
    html = redrive(admin_browser, "to-reqsys", message_id=ids[1])
    assert "was not found" in flashes(html)
    assert counts(sqs, dlq) == (2, 0)


def test_redrive_of_an_empty_dlq_moves_nothing(sqs, resources):
    pair = monitor.find_pair(resources, "task-jobs")
    purge(sqs, pair.queue_url, pair.dlq_url)
    result = monitor.redrive(pair)
    assert (result.moved, result.failed, result.remaining) == (0, 0, 0)
    assert counts(sqs, pair.queue_url) == (0, 0)


# --- event timeline -----------------------------------------------------------------------------


def store_event(table: str, event_type: EventType, child_id: str, occurred_at: datetime, version: int) -> Envelope:
    from shared.pipeline.ingest import store

    env = Envelope(type=event_type, occurred_at=occurred_at, version=version,
                   application={**APPLICATION, "child_id": child_id})
    assert store(env, table)
    return env


def test_timeline_shows_one_application_in_order(admin_browser, resources):
    table = resources["EVENTS_TABLE"]
    child, other = "T" + uuid.uuid4().hex[:10], "U" + uuid.uuid4().hex[:10]
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    # stored out of order; two share occurred_at and are told apart by version
    accept = store_event(table, EventType.ACCEPT, child, t0 + timedelta(hours=2), 2)
    request = store_event(table, EventType.REQUEST, child, t0, 1)
    cancel = store_event(table, EventType.CANCEL, child, t0 + timedelta(hours=2), 3)
    later = store_event(table, EventType.REQUEST, child, t0 + timedelta(days=1), 4)
    stranger = store_event(table, EventType.REQUEST, other, t0 + timedelta(hours=1), 1)

    request_id = f"{child}A00017"
    response = admin_browser.get(f"/admin/monitor/timeline?request_id={request_id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    shown = re.findall(r'<tr class="event" data-event-id="([^"]+)" data-type="([A-Z]+)"', html)
    assert shown == [(e.event_id, str(e.type)) for e in (request, accept, cancel, later)]
    assert stranger.event_id not in html and other not in html
    assert "2026-03-02 18:00:00 KST" in html  # t0 in Korean time
    assert "김아기" in html and request_id in html  # the application summary

    # the same search by child ID + daycare ID
    by_parts = admin_browser.get(f"/admin/monitor/timeline?child_id={child}&nursery_id=A00017").get_data(as_text=True)
    assert re.findall(r'data-event-id="([^"]+)"', by_parts) == [e.event_id for e in (request, accept, cancel, later)]


def test_timeline_rejects_bad_input_and_says_when_nothing_is_found(admin_browser):
    html = admin_browser.get("/admin/monitor/timeline?request_id=a%22b").get_data(as_text=True)
    assert 'id="request_id-error"' in html and 'data-event-id' not in html
    html = admin_browser.get("/admin/monitor/timeline?child_id=only").get_data(as_text=True)
    assert 'id="request_id-error"' in html
    html = admin_browser.get(f"/admin/monitor/timeline?request_id=none{uuid.uuid4().hex[:8]}").get_data(as_text=True)
    assert "No events for this request ID." in html


# --- emails (local) -----------------------------------------------------------------------------


def test_emails_page_lists_what_ses_sent(admin_browser, resources):
    subject = f"입소 신청 완료 <b>{uuid.uuid4().hex[:8]}</b>"
    aws.client("ses").send_email(
        Source=resources["SES_SENDER"], Destination={"ToAddresses": ["mail-test@example.com"]},
        Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": "신청이 접수되었습니다."}}})
    html = admin_browser.get("/admin/monitor/emails?to=mail-test@example.com").get_data(as_text=True)
    assert "mail-test@example.com" in html and "신청이 접수되었습니다." in html
    assert subject.replace("<", "&lt;").replace(">", "&gt;") in html and subject not in html


# --- JSON for ops scripts -----------------------------------------------------------------------


def test_api_queues_needs_an_admin_token(app, admin, parent, bearer, sqs, resources):
    client = app.test_client()
    response = client.get("/api/admin/queues")
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"
    response = client.get("/api/admin/queues", headers=bearer(parent.email))
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"

    purge(sqs, resources["TASK_JOBS_DLQ_URL"], resources["TASK_JOBS_QUEUE_URL"])
    for i in range(2):
        sqs.send_message(QueueUrl=resources["TASK_JOBS_DLQ_URL"], MessageBody=f"job {i}")
    response = client.get("/api/admin/queues", headers=bearer(admin.email))
    assert response.status_code == 200
    data = response.get_json()
    by_name = {row["name"]: row for row in data["queues"]}
    assert set(by_name) == {name_of(url) for url in all_queue_urls(resources)}
    dlq = by_name[name_of(resources["TASK_JOBS_DLQ_URL"])]
    assert (dlq["kind"], dlq["visible"], dlq["in_flight"], dlq["delayed"], dlq["stuck"]) == ("dlq", 2, 0, 0, True)
    queue = by_name[name_of(resources["TASK_JOBS_QUEUE_URL"])]
    assert (queue["kind"], queue["total"], queue["stuck"]) == ("queue", 0, False)
    assert data["dead_letters"] >= 2
