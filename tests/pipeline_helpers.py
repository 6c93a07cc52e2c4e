"""Helpers for the pipeline tests (no tests here): envelopes, Lambda-shaped events, queues, and a
stand-in for the target app's sync endpoint."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from shared.pipeline.stream import EVENT_SOURCE
from shared.platform import aws
from shared.platform.events import Envelope
from shared.platform.settings import Settings
from shared.platform.signing import verify

REGION = "ap-northeast-2"
ACCOUNT = "123456789012"


def envelope(event_type: str = "REQUEST", version: int = 1, **application) -> Envelope:
    """An envelope for a new, unique application (unique child id and parent email)."""
    tag = uuid.uuid4().hex[:10]
    body = {
        "child_id": f"2023{tag}", "child_name": "김민준", "child_birthday": "20230101", "user_id": "parent",
        "parent_name": "김부모", "parent_tel": "010-1234-5678", "parent_address": "서울시 중구 세종대로 110",
        "parent_postcode": "04524", "parent_email": f"parent-{tag}@example.com", "nursery_id": "A00017",
    }
    return Envelope(type=event_type, version=version, application={**body, **application})


def sqs_record(body: str, arn: str, group: str | None = None) -> dict:
    """One record of a Lambda SQS event."""
    attributes = {"ApproximateReceiveCount": "1", "SentTimestamp": "0"}
    if group:
        attributes["MessageGroupId"] = group
    return {"messageId": str(uuid.uuid4()), "receiptHandle": "handle", "body": body, "attributes": attributes,
            "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": arn,
            "awsRegion": REGION}


def bridge_event(env: Envelope) -> str:
    """The JSON an EventBridge rule delivers to an SQS target: the whole event, the envelope in detail."""
    return json.dumps({
        "version": "0", "id": str(uuid.uuid4()), "detail-type": str(env.type), "source": EVENT_SOURCE,
        "account": ACCOUNT, "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": REGION,
        "resources": [], "detail": json.loads(env.to_json()),
    })


def queue_arn(url: str) -> str:
    return aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def drain(url: str) -> list[dict]:
    """Receive and delete everything visible on a queue; returns the messages."""
    sqs, messages = aws.client("sqs"), []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                    MessageSystemAttributeNames=["All"]).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])


def event_ids(messages: list[dict]) -> list[str]:
    """The envelope event ids in EventBridge-event message bodies."""
    return [json.loads(m["Body"])["detail"]["event_id"] for m in messages]


def sync_secret() -> str:
    return Settings.load("pipeline").sync_secret


class StandIn:
    """A tiny HTTP server standing in for an app's sync endpoints: it checks the signature
    (401 if wrong), records every POST and answers `status` (settable)."""

    def __init__(self, status: int = 200, secret: str | None = None):
        self.status = status
        self.secret = secret or sync_secret()
        self.received: list[dict] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                signed = verify(stand_in.secret, body, self.headers)
                stand_in.received.append({"path": self.path, "body": body, "signed": signed,
                                          "content_type": self.headers.get("Content-Type")})
                status = stand_in.status if signed else 401
                answer = json.dumps({"status": "applied"} if status == 200 else {"error": {"code": "nope"}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def bodies_for(self, event_id: str) -> list[dict]:
        return [r for r in self.received if json.loads(r["body"]).get("event_id") == event_id]


def pipeline_settings(resources, tmp_path: Path) -> Path:
    """zappa_settings.json's pipeline_local stage as `pipeline_test`, on the test stage's resources."""
    return runner_settings(resources, tmp_path, "pipeline_local")


def deployed_stages() -> dict[str, dict]:
    """The dev and prod stages as `make deploy` renders them, with the local stages: name -> stage."""
    from shared.tools.deploy.stages import local_stages, render

    found = {f"{app}_local": stage for app, stage in local_stages().items()}
    for env in ("dev", "prod"):
        stream = f"arn:aws:dynamodb:ap-northeast-2:210987654321:table/daycare-{env}-events/stream/2026-01-01T00:00"
        found.update(render(env, account_id="210987654321", outputs={"EVENTS_TABLE_STREAM_ARN": stream}, env={}))
    return found


def runner_settings(resources, tmp_path, *local_stages: str):
    """zappa_settings.json's named `*_local` stages as `*_test` stages pointed at the test stage's
    resources (same names, `daycare-test-` for `daycare-local-`), written to a file for the runner:
    the wiring under test is the real one."""
    import json
    from pathlib import Path

    from shared.platform.settings import ROOT

    stages = json.loads((ROOT / "zappa_settings.json").read_text())
    prefix = f"daycare-{resources['STAGE']}-"
    queues = {arn.rsplit(":", 1)[-1]: arn for key, arn in resources.items() if key.endswith("_QUEUE_ARN")}
    streams = {resources[key.removesuffix("_STREAM_ARN")]: arn for key, arn in resources.items()
               if key.endswith("_STREAM_ARN")}
    settings = {"base": stages["base"]}
    for name in local_stages:
        events = []
        for entry in stages[name]["events"]:
            if "event_source" not in entry:  # a schedule
                events.append(entry)
                continue
            arn = entry["event_source"]["arn"]
            if ":dynamodb:" in arn:
                arn = streams[arn.split(":", 5)[5].split("/")[1].replace(LOCAL_PREFIX, prefix, 1)]
            else:
                arn = queues[arn.rsplit(":", 1)[-1].replace(LOCAL_PREFIX, prefix, 1)]
            events.append({**entry, "event_source": {**entry["event_source"], "arn": arn}})
        settings[name.removesuffix("_local") + "_test"] = {**stages[name], "events": events}
    path = Path(tmp_path) / "zappa_settings.json"
    path.write_text(json.dumps(settings))
    return path


LOCAL_PREFIX = "daycare-local-"


def email_record(resources, env) -> dict:
    return sqs_record(bridge_event(env), queue_arn(resources["EMAIL_QUEUE_URL"]))
def run_until(runner, done, seconds: float = 20.0) -> None:
    """Run the runner's passes until `done()`; fails after `seconds`."""
    import time

    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "the pipeline did not get there in time"
        if not runner.run_once():
            time.sleep(0.1)
