"""The operator's view: one JSON line per log event, the event id as the correlation id through every hop and
app of an application's journey, and per-hop metrics as CloudWatch Embedded Metric Format lines."""

from __future__ import annotations

import json
import logging

import pytest

from shared.pipeline import monitor
from shared.platform import logs
from tests.pipeline_helpers import bridge_event, envelope, queue_arn, sqs_record
from tests.waitlist_helpers import seed_body
from tests.waitlist_system import in_childsys, pump, rid, subjects_to


class Lines(logging.Handler):
    """Every log record of the process, as the JSON line the apps and handlers write."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.setFormatter(logs.JsonFormatter("test"))
        self.lines: list[dict] = []

    def emit(self, record):
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def lines():
    root, handler = logging.getLogger(), Lines()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler.lines
    root.removeHandler(handler)
    root.setLevel(level)


def test_the_log_lines_of_an_applications_journey_share_its_correlation_id(make_system, resources, lines):
    system = make_system()
    email = system.parent_email  # notices go to the account's own (verified) address
    body = seed_body(parent_email=email)
    request_id = rid(system, body)
    applied = system.reqsys.post("/enterwait/request", json=body, headers=system.parent)
    assert applied.status_code == 201 and applied.headers["X-Request-Id"]
    assert pump(system, lambda: in_childsys(system, request_id) is not None and subjects_to(email))

    [event] = monitor.timeline(resources["EVENTS_TABLE"], request_id)
    journey = [line for line in lines if line.get("correlation_id") == event.event_id]
    said = {(line["logger"], line["message"].split(" to ")[0]) for line in journey}
    assert {
        ("shared.platform.outbox", "event staged in the outbox"),  # reqsys, in the request
        ("shared.platform.outbox", "event relayed"),  # reqsys, right after the commit
        ("shared.pipeline.ingest", "event ingested"),
        ("shared.pipeline.stream", "event published"),
        ("shared.pipeline.email", "email sent"),
        ("shared.pipeline.forward", "event delivered"),
        ("shared.platform.sync", "sync event applied"),  # childsys, called by the forward handler
    } <= said, said
    assert all(line["request_id"] == request_id for line in journey if "request_id" in line)
    [synced] = [line for line in journey if line["logger"] == "shared.platform.sync"]
    assert synced["app"] == "childsys" and synced["aws_request_id"], "the sync request's own id is there too"
    hops = {line.get("hop") for line in journey}
    assert {"ingest", "stream", "email", "forward"} <= hops


def test_each_batch_writes_one_metrics_line_in_embedded_metric_format(resources, lines, monkeypatch):
    from shared.pipeline import email as email_handler

    good, bad = envelope("REQUEST"), envelope("REQUEST", parent_email="")
    arn = queue_arn(resources["EMAIL_QUEUE_URL"])
    records = [sqs_record(bridge_event(good), arn), sqs_record(bridge_event(bad), arn)]
    records[0]["attributes"].update(ApproximateReceiveCount="3", SentTimestamp="1000")
    email_handler.handler({"Records": records}, None)

    [metrics] = [line for line in lines if "_aws" in line and line.get("Hop") == "email"][-1:]
    [directive] = metrics["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == logs.METRICS_NAMESPACE == "Daycare/Pipeline"
    assert directive["Dimensions"] == [["Stage", "Hop"]]
    assert {m["Name"] for m in directive["Metrics"]} == {"Processed", "Failed", "Retried", "OldestMessageAge"}
    assert (metrics["Processed"], metrics["Failed"], metrics["Retried"]) == (1, 1, 1)
    assert metrics["OldestMessageAge"] > 10**9, "sent at 1970: a very old message"
    assert metrics["Stage"] == "test" and isinstance(metrics["_aws"]["Timestamp"], int)
