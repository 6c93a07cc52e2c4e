"""Benchmark of the sync pipeline: `make bench` (or `python -m tests.bench_pipeline [--quick] [--events N]`).
Prints figures, asserts nothing.

N REQUEST events (default 300) are published to the integrated-events queue, then each hop is
drained in turn by the local event-source runner (shared.tools.runner: the batches Lambda sends, with
the batch sizes of zappa_settings.json's pipeline stage, on the provisioned emulator):

    ingest   SQS integrated-events (FIFO, batches of 10) -> DynamoDB events table
    stream   the table's stream (batches of 100)          -> EventBridge bus -> rules -> SQS queues
    forward  SQS to-childsys (batches of 5)               -> signed POST /enterwait/request of the real
                                                              childsys app (a local server, SQLite)
    email    SQS email (batches of 10)                    -> SES

Per hop: events per second over the wall time of the hop (the runner's polling and deleting on
the emulator included, as Lambda's poller does in AWS), and over the time spent inside the
handler function only. The emulator and childsys run in processes of their own.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from shared.platform.settings import ROOT
from shared.tools.runner import Runner, load_event_sources
from tests import bench_support
from tests.bench_support import emulator, free_port, make_app, table

DAYCARES = ("A00017", "A00018", "A00021", "B00102", "B00215")


class HandlerClock:
    """Wraps a handler: counts the records it was given, those it reported failed, and its time."""

    def __init__(self, function: str):
        module, _, name = function.rpartition(".")
        self.function = getattr(importlib.import_module(module), name)
        self.records = self.failed = 0
        self.seconds = 0.0

    def __call__(self, event: dict, context: object = None):
        started = time.perf_counter()
        try:
            result = self.function(event, context)
        finally:
            self.seconds += time.perf_counter() - started
        self.records += len(event.get("Records") or [])
        self.failed += len((result or {}).get("batchItemFailures") or [])
        return result

    @property
    def done(self) -> int:
        return self.records - self.failed


def clocked(source, name: str) -> HandlerClock:
    """Point a runner source at a clock around its handler (the runner imports handlers by dotted
    path, so the clock is put where that path finds it)."""
    clock = HandlerClock(source.function)
    setattr(bench_support, f"clock_{name}", clock)
    source.function = f"tests.bench_support.clock_{name}"
    return clock


def envelopes(count: int):
    from shared.platform.events import Envelope

    tag = uuid.uuid4().hex[:6]
    for i in range(count):
        yield Envelope(type="REQUEST", application={
            "child_id": f"2023{tag}{i:05d}", "child_name": f"아이 {i}", "child_birthday": "20230101",
            "user_id": f"bench-parent-{i}", "parent_name": "김부모", "parent_tel": "010-1234-5678",
            "parent_address": "서울시 중구 세종대로 110", "parent_postcode": "04524",
            "parent_email": f"parent{i}@example.com", "nursery_id": DAYCARES[i % len(DAYCARES)]})


def start_childsys(work: Path) -> tuple[subprocess.Popen, str]:
    """The real childsys app on a migrated SQLite file with the demo daycares, served by werkzeug in
    a process of its own."""
    url = f"sqlite:///{work / 'childsys-pipeline.db'}"
    bench_support.dispose(make_app("childsys", url))
    port = free_port()
    log = open(work / "childsys.log", "w")  # noqa: SIM115 - the process keeps it
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "childsys", "run", "--host", "127.0.0.1", "--port", str(port),
         "--no-reload"], env={**os.environ, "DATABASE_URL": url}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    bench_support._wait_for_port(port, process)
    return process, f"http://127.0.0.1:{port}"


def drain(name: str, runner: Runner, clock: HandlerClock, expected: int, batch_size: int,
          limit_seconds: float = 300) -> list[object]:
    started = time.perf_counter()
    while clock.done < expected:
        if time.perf_counter() - started > limit_seconds:
            print(f"  {name}: stopped after {limit_seconds:.0f} s with {clock.done} of {expected} events")
            break
        if not runner.run_once():
            time.sleep(0.05)
    wall = time.perf_counter() - started
    return [name, clock.done, clock.failed, batch_size, f"{wall:.1f}", f"{clock.done / wall:.0f}",
            f"{clock.done / clock.seconds:.0f}" if clock.seconds else "-"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench_pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 events instead of 300")
    parser.add_argument("--events", type=int, help="events to push through (default 300; quick 100)")
    args = parser.parse_args(argv)
    count = args.events or (100 if args.quick else 300)
    import logging

    logging.basicConfig(level=logging.ERROR)  # the handlers log every event at INFO
    started = time.perf_counter()
    print(f"# make bench: the pipeline ({count:,} REQUEST events, in-process on the emulator)")
    with emulator() as outputs:
        from shared.platform.events import publish_batch
        from tests.pipeline_helpers import runner_settings

        work = Path(outputs["WORK_DIR"])
        childsys, childsys_url = start_childsys(work)
        os.environ["CHILDSYS_URL"] = childsys_url
        try:
            # zappa_settings.json's pipeline_local stage, pointed at this emulator's resources
            settings = runner_settings(outputs, tempfile.mkdtemp(dir=work), "pipeline_local")
            sources = load_event_sources(settings, "test")

            def source(handler: str, queue: str = ""):
                return next(s for s in sources if s.function == f"shared.pipeline.{handler}.handler"
                            and s.arn.endswith(queue))

            hops = [("ingest", source("ingest")), ("stream", source("stream")),
                    ("forward", source("forward", "-to-childsys")), ("email", source("email"))]

            published = time.perf_counter()
            publish_batch(outputs["INTEGRATED_EVENTS_QUEUE_URL"], envelopes(count))
            publish_seconds = time.perf_counter() - published
            rows = [["publish (send_message_batch)", count, 0, "-", f"{publish_seconds:.1f}",
                     f"{count / publish_seconds:.0f}", "-"]]
            for name, hop in hops:
                clock = clocked(hop, name)
                rows.append(drain(name, Runner([hop], failed_visibility=0), clock, count, hop.batch_size))
        finally:
            childsys.terminate()
            childsys.wait(timeout=10)
    print()
    print(table(["hop", "events", "failed", "batch size", "wall s", "events/s (wall)", "events/s (handler)"], rows))
    print("  wall: the hop drained alone, the runner's receive/delete on the emulator included;"
          " handler: time inside the handler function only.")
    print(f"\n(bench_pipeline took {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
