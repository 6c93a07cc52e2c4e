"""The local event-source runner: what Lambda's event source mappings do in AWS, in-process.

It reads the `events` of the `_<env>` stages in zappa_settings.json (the one wiring list)
and calls those same handler functions with Lambda-shaped events against the emulator:
SQS batches, DynamoDB stream records and scheduled events. Results are handled as a
mapping with `ReportBatchItemFailures` does, so nothing is deleted without success.

    python -m shared.tools.runner [--settings zappa_settings.json] [--env local]
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import logging
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.pipeline.stream import MAXIMUM_RETRY_ATTEMPTS, failure_queue_name
from shared.platform import aws
from shared.platform.settings import LOCAL_ENDPOINT, ROOT

log = logging.getLogger("shared.tools.runner")
LOCAL_ACCOUNT = "123456789012"  # the emulator's account
_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(kw_only=True)
class _Source:
    function: str  # dotted path of the handler, as in zappa_settings.json
    lambda_name: str  # the Lambda function Zappa deploys it in (context.function_name)
    region: str
    timeout: int = 30  # the stage's timeout_seconds (context.get_remaining_time_in_millis)
    memory_size: int = 512


@dataclass(kw_only=True)
class SqsSource(_Source):
    arn: str
    batch_size: int = 10
    queue_url: str | None = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        return f"sqs:{self.arn.rsplit(':', 1)[-1]}"


@dataclass
class _Shard:
    iterator: str | None  # None once the shard is closed and read to the end
    failed_from: str | None = None  # sequence number the last failed batch restarts from
    attempts: int = 0
    retry_at: float = 0.0  # backoff before re-reading a failed batch
    limit: int | None = None  # a bisected batch's size (a raising handler gets half the records next time)
    blocked: str | None = None  # why a given-up batch could not be handed to the failure queue (logged once)


@dataclass(kw_only=True)
class StreamSource(_Source):
    arn: str
    batch_size: int = 100
    starting_position: str = "TRIM_HORIZON"
    stream_arn: str | None = field(default=None, compare=False, repr=False)  # the table's current stream
    shards: dict[str, _Shard] = field(default_factory=dict, compare=False, repr=False)
    refresh_at: float = field(default=0.0, compare=False, repr=False)

    @property
    def table(self) -> str:
        return self.arn.split(":", 5)[5].split("/")[1]

    @property
    def label(self) -> str:
        return f"stream:{self.table}"


@dataclass(kw_only=True)
class ScheduleSource(_Source):
    expression: str
    interval: float | None  # seconds; None for cron(), which is not run locally
    next_run: float = field(default=0.0, compare=False, repr=False)

    @property
    def label(self) -> str:
        return f"schedule:{self.expression}"


EventSource = SqsSource | StreamSource | ScheduleSource


def _stage_settings(stages: dict[str, dict], name: str, seen: tuple[str, ...] = ()) -> dict:
    """A stage with Zappa's `extends` applied: a shallow merge, the child's keys win whole."""
    if name in seen:
        raise ValueError(f"zappa_settings.json: circular extends through {name}")
    stage = stages[name]
    parent = _stage_settings(stages, stage["extends"], (*seen, name)) if stage.get("extends") else {}
    return {**parent, **{k: v for k, v in stage.items() if k != "extends"}}


def load_event_sources(settings_path: str | Path = ROOT / "zappa_settings.json", env: str = "local",
                       ) -> list[EventSource]:
    """Every enabled event source of the stages named `*_<env>`."""
    stages = json.loads(Path(settings_path).read_text())
    sources: list[EventSource] = []
    for name in stages:
        if not name.endswith(f"_{env}"):
            continue
        stage = _stage_settings(stages, name)
        project = stage.get("project_name") or ROOT.name
        common = {
            "lambda_name": re.sub(r"[^a-z0-9]+", "-", f"{project}-{name}".lower()).strip("-"),
            "region": stage.get("aws_region") or aws.region(),
            "timeout": int(stage.get("timeout_seconds", 30)),
            "memory_size": int(stage.get("memory_size", 512)),
        }
        for entry in stage.get("events") or []:
            sources.extend(_sources_from_entry(name, entry, common))
    return sources


def _sources_from_entry(stage: str, entry: dict, common: dict) -> list[EventSource]:
    function, event_source = entry["function"], entry.get("event_source") or {}
    if entry.get("enabled") is False or event_source.get("enabled") is False:
        log.info("%s: %s is disabled, skipped", stage, function)
        return []
    if event_source:
        arn = event_source["arn"]
        service = arn.split(":")[2]
        if service == "sqs":
            return [SqsSource(function=function, arn=arn, batch_size=int(event_source.get("batch_size", 10)), **common)]
        if service == "dynamodb":
            position = event_source.get("starting_position", "TRIM_HORIZON")
            size = int(event_source.get("batch_size", 100))
            return [StreamSource(function=function, arn=arn, batch_size=size, starting_position=position, **common)]
        log.warning("%s: %s has an event source the runner does not drive (%s), skipped", stage, function, arn)
        return []
    expressions = entry.get("expressions") or ([entry["expression"]] if entry.get("expression") else [])
    if not expressions:
        log.warning("%s: %s has neither event_source nor expression, skipped", stage, function)
    sources: list[EventSource] = []
    for expression in expressions:
        match = _RATE.fullmatch(expression.strip())
        interval = int(match[1]) * _UNIT_SECONDS[match[2].rstrip("s")] if match else None
        if interval is None:
            log.warning("%s: %s uses %s; only rate() schedules run locally", stage, function, expression)
        sources.append(ScheduleSource(function=function, expression=expression, interval=interval, **common))
    return sources


class LambdaContext:
    """The parts of Lambda's context object that handlers and Powertools read."""

    def __init__(self, source: _Source):
        self.function_name = source.lambda_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{source.region}:{LOCAL_ACCOUNT}:function:{source.lambda_name}"
        self.memory_limit_in_mb = source.memory_size
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{source.lambda_name}"
        self.log_stream_name = "local-runner"
        self._deadline = time.monotonic() + source.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _jsonable(value: Any) -> Any:
    """boto3 gives bytes and datetimes; Lambda's JSON has base64 strings and epoch seconds."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _sqs_record(message: dict, arn: str) -> dict:
    attributes = {}
    for name, attr in message.get("MessageAttributes", {}).items():
        shaped = {"stringValue": attr.get("StringValue"), "binaryValue": _jsonable(attr.get("BinaryValue")),
                  "stringListValues": attr.get("StringListValues", []),
                  "binaryListValues": _jsonable(attr.get("BinaryListValues", [])), "dataType": attr["DataType"]}
        attributes[name] = {k: v for k, v in shaped.items() if v is not None}
    record = {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
              "attributes": dict(message.get("Attributes", {})), "messageAttributes": attributes,
              "md5OfBody": message["MD5OfBody"], "eventSource": "aws:sqs", "eventSourceARN": arn,
              "awsRegion": arn.split(":")[3]}
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _stream_record(record: dict, arn: str) -> dict:
    # the emulator reports awsRegion us-east-1 whatever the table's region; Lambda gives the real one
    return {**_jsonable(record), "awsRegion": arn.split(":")[3], "eventSourceARN": arn}


def _failures(result: Any, ids: list[str]) -> list[str]:
    """The identifiers to retry, in batch order, from a ReportBatchItemFailures response.

    As Lambda: no `batchItemFailures` means success; a missing or unknown identifier fails the whole batch.
    """
    items = result.get("batchItemFailures") if isinstance(result, dict) else None
    if not items:
        return []
    failed = {item.get("itemIdentifier") if isinstance(item, dict) else None for item in items}
    if not failed <= set(ids):
        log.error("batchItemFailures names unknown items %s: the whole batch is retried", failed - set(ids))
        return list(ids)
    return [i for i in ids if i in failed]


class Runner:
    """Polls every source; one batch per source (per shard) per pass."""

    def __init__(self, sources: list[EventSource], poll_interval: float = 1.0, *, failed_visibility: int | None = None,
                 max_stream_attempts: int = MAXIMUM_RETRY_ATTEMPTS + 1, stream_retry_delay: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.sources = sources
        self.poll_interval = poll_interval
        # None keeps Lambda's behaviour (a failed message returns after the queue's visibility timeout);
        # 0 redelivers it on the next pass. SQS counts receives either way, so the DLQ still takes it.
        self.failed_visibility = failed_visibility
        # a failed stream batch is re-read after 1, 2, 4... (at most 60) seconds; after `max_stream_attempts` its
        # description goes to the table's failure queue, as Lambda's MaximumRetryAttempts + on-failure destination
        # (without that queue the shard stays blocked, retrying: nothing is dropped)
        self.max_stream_attempts = max_stream_attempts
        self.stream_retry_delay = stream_retry_delay
        self.clock = clock
        self._functions: dict[str, Callable] = {}
        self._errors: dict[int, str] = {}  # the last polling error per source, so a lasting one is logged once

    def run_once(self, wait_seconds: int = 0) -> int:
        """One pass over all sources; returns how many records (and scheduled events) were delivered."""
        delivered = 0
        for source in self.sources:
            try:
                if isinstance(source, SqsSource):
                    delivered += self._poll_sqs(source, wait_seconds)
                elif isinstance(source, StreamSource):
                    delivered += self._poll_stream(source)
                else:
                    delivered += self._poll_schedule(source)
                self._errors.pop(id(source), None)
            except Exception as exc:  # the emulator not ready, a queue missing: log (once) and keep going
                if self._errors.get(id(source)) != str(exc):
                    log.warning("%s: polling failed (retrying every pass): %s", source.label, exc,
                                exc_info=log.isEnabledFor(logging.DEBUG))
                self._errors[id(source)] = str(exc)
        return delivered

    def run_forever(self, stop_event: threading.Event) -> None:
        log.info("driving %d event sources: %s", len(self.sources), ", ".join(s.label for s in self.sources))
        while not stop_event.is_set():
            if not self.run_once():
                stop_event.wait(self.poll_interval)

    def _invoke(self, source: _Source, event: dict) -> tuple[bool, Any]:
        context = LambdaContext(source)
        try:
            function = self._functions.get(source.function)
            if function is None:
                module, _, name = source.function.rpartition(".")
                function = self._functions[source.function] = getattr(importlib.import_module(module), name)
            return True, function(event, context)
        except Exception:  # a failing handler must not stop the runner; the traceback stays in our log
            log.exception("%s -> %s raised (request %s)", source.label, source.function, context.aws_request_id)
            return False, None

    def _poll_sqs(self, source: SqsSource, wait_seconds: int) -> int:
        sqs = aws.client("sqs")
        if source.queue_url is None:
            source.queue_url = sqs.get_queue_url(QueueName=source.arn.rsplit(":", 1)[-1])["QueueUrl"]
        messages = sqs.receive_message(
            QueueUrl=source.queue_url, MaxNumberOfMessages=min(source.batch_size, 10), WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        ok, result = self._invoke(source, {"Records": [_sqs_record(m, source.arn) for m in messages]})
        ids = [m["MessageId"] for m in messages]
        failed = set(_failures(result, ids) if ok else ids)  # raised: delete nothing, the whole batch returns
        done = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
                if m["MessageId"] not in failed]
        retry = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": self.failed_visibility}
                 for i, m in enumerate(messages) if m["MessageId"] in failed]
        for start in range(0, len(done), 10):
            response = sqs.delete_message_batch(QueueUrl=source.queue_url, Entries=done[start:start + 10])
            for error in response.get("Failed", []):
                log.warning("%s: could not delete a processed message (it will be redelivered): %s",
                            source.label, error.get("Message"))
        if retry and self.failed_visibility is not None:
            sqs.change_message_visibility_batch(QueueUrl=source.queue_url, Entries=retry)
        log.info("%s -> %s: %d messages, %d ok, %d failed%s", source.label, source.function, len(messages),
                 len(done), len(retry), " (left on the queue for retry)" if retry else "")
        return len(messages)

    def _refresh_stream(self, source: StreamSource) -> None:
        """Follow the table's current stream (tables are recreated locally) and pick up its shards."""
        latest = aws.client("dynamodb").describe_table(TableName=source.table)["Table"].get("LatestStreamArn")
        if not latest:
            raise RuntimeError(f"table {source.table} has no stream")
        first = source.stream_arn is None
        if latest != source.stream_arn:
            if latest != source.arn:
                log.info("%s: following the table's current stream %s", source.label, latest)
            source.stream_arn, source.shards = latest, {}
        streams = aws.client("dynamodbstreams")
        for shard in streams.describe_stream(StreamArn=latest)["StreamDescription"]["Shards"]:
            if shard["ShardId"] not in source.shards:
                # only the first stream starts at LATEST; later streams and shards are read from their start
                position = source.starting_position if first else "TRIM_HORIZON"
                source.shards[shard["ShardId"]] = _Shard(streams.get_shard_iterator(
                    StreamArn=latest, ShardId=shard["ShardId"], ShardIteratorType=position)["ShardIterator"])
        source.refresh_at = self.clock() + 10

    def _poll_stream(self, source: StreamSource) -> int:
        if self.clock() >= source.refresh_at:
            self._refresh_stream(source)
        streams, delivered = aws.client("dynamodbstreams"), 0
        for shard_id, shard in source.shards.items():
            if shard.iterator is None or self.clock() < shard.retry_at:
                continue
            limit = min(source.batch_size, shard.limit or source.batch_size)
            response = streams.get_records(ShardIterator=shard.iterator, Limit=limit)
            records, next_iterator = response.get("Records", []), response.get("NextShardIterator")
            if not records:
                shard.iterator = next_iterator
                continue
            delivered += len(records)
            ok, result = self._invoke(source, {"Records": [_stream_record(r, source.arn) for r in records]})
            numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
            failed = _failures(result, numbers) if ok else numbers
            if not failed:
                log.info("%s -> %s: %d records ok", source.label, source.function, len(records))
                shard.iterator, shard.failed_from, shard.attempts, shard.limit = next_iterator, None, 0, None
                continue
            if not ok and len(records) > 1:
                # BisectBatchOnFunctionError: the halves are retried apart, without using up the attempts
                shard.limit = max(1, len(records) // 2)
                log.info("%s -> %s raised on %d records: retrying them in halves", source.label, source.function,
                         len(records))
            else:
                # checkpoint: the next read restarts at the first failed record, as Lambda retries
                shard.attempts = shard.attempts + 1 if failed[0] == shard.failed_from else 1
            shard.failed_from = failed[0]
            if shard.attempts >= self.max_stream_attempts:
                if self._to_failure_queue(source, shard_id, shard, records[numbers.index(failed[0]):]):
                    shard.iterator, shard.failed_from, shard.attempts, shard.limit = next_iterator, None, 0, None
                    continue
            shard.retry_at = self.clock() + min(60.0, self.stream_retry_delay * 2 ** max(0, shard.attempts - 1))
            log.info("%s -> %s: %d records, retrying from %s (attempt %d of %d)", source.label, source.function,
                     len(records), failed[0], shard.attempts, self.max_stream_attempts)
            shard.iterator = streams.get_shard_iterator(
                StreamArn=source.stream_arn, ShardId=shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=failed[0])["ShardIterator"]
        return delivered

    def _to_failure_queue(self, source: StreamSource, shard_id: str, shard: _Shard, records: list[dict]) -> bool:
        """Hand a given-up batch to the table's on-failure queue, in the shape Lambda sends; False (the
        shard stays blocked and is retried) if that queue does not exist or refuses."""
        name = failure_queue_name(source.table)
        arrivals = [r["dynamodb"].get("ApproximateCreationDateTime") for r in records]
        arrivals = [a if isinstance(a, datetime) else datetime.fromtimestamp(float(a or 0), UTC) for a in arrivals]
        context = LambdaContext(source)
        message = {
            "requestContext": {"requestId": context.aws_request_id, "functionArn": context.invoked_function_arn,
                               "condition": "RetryAttemptsExhausted", "approximateInvokeCount": shard.attempts},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0", "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "DDBStreamBatchInfo": {
                "shardId": shard_id, "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": min(arrivals).isoformat(timespec="milliseconds"),
                "approximateArrivalOfLastRecord": max(arrivals).isoformat(timespec="milliseconds"),
                "batchSize": len(records), "streamArn": source.stream_arn or source.arn},
        }
        sqs = aws.client("sqs")
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(message))
        except Exception as err:
            if shard.blocked != str(err):
                log.error("%s -> %s: %d records failed %d times and cannot go to the failure queue %s (%s); the "
                          "shard stays blocked and keeps retrying", source.label, source.function, len(records),
                          shard.attempts, name, err)
            shard.blocked = str(err)
            return False
        shard.blocked = None
        log.error("%s -> %s: GAVE UP on %d records (sequence numbers %s..%s) after %d attempts; their description "
                  "is in the failure queue %s (the monitor replays them)", source.label, source.function,
                  len(records), records[0]["dynamodb"]["SequenceNumber"], records[-1]["dynamodb"]["SequenceNumber"],
                  shard.attempts, name)
        return True

    def _poll_schedule(self, source: ScheduleSource) -> int:
        if source.interval is None or self.clock() < source.next_run:
            return 0
        source.next_run = self.clock() + source.interval
        # the shape EventBridge sends; Zappa names the rule <lambda>-<function>
        rule = f"arn:aws:events:{source.region}:{LOCAL_ACCOUNT}:rule/{source.lambda_name}-{source.function}"
        event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
                 "account": LOCAL_ACCOUNT, "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "region": source.region, "resources": [rule], "detail": {}}
        ok, _ = self._invoke(source, event)
        log.info("%s -> %s: %s", source.label, source.function, "ok" if ok else "failed")
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.tools.runner", description=__doc__.split("\n")[0])
    parser.add_argument("--settings", default=str(ROOT / "zappa_settings.json"), help="Zappa settings file")
    parser.add_argument("--env", default="local", help="drive the stages named *_ENV (default: local)")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="seconds between idle passes")
    args = parser.parse_args(argv)
    if not Path(args.settings).is_file():
        parser.error(f"no settings file {args.settings}")
    from shared.platform import logs

    logs.setup("pipeline", install=True)  # JSON lines, as the handlers write them in Lambda
    logging.getLogger("botocore").setLevel(logging.WARNING)
    # never against real AWS: these queues are drained by Lambda there
    os.environ.setdefault("AWS_ENDPOINT_URL", LOCAL_ENDPOINT)
    os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")  # DynamoDB Streams on the emulator
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C interrupts a hanging handler
        log.info("%s: stopping after the current batch", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        Runner(load_event_sources(args.settings, args.env), args.poll_interval).run_forever(stop)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
