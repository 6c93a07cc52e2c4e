"""Benchmark of the apps: `make bench` (or `python -m tests.bench_apps [--quick]`). Prints figures,
asserts nothing.

1. Cold start per app: a fresh Python process imports the app as Zappa's handler does
   (`importlib.import_module("reqsys")`, then its `app`, which runs create_app) and serves its first
   requests (GET /healthz and the login page) through the WSGI app; the pipeline function imports
   its app_function module, then the handler module and handles a one-record SQS batch, as Zappa
   does for its first event. Median of N processes, next to a bare Flask hello-world (and a bare
   boto3 handler) measured the same way in the same run. Peak RSS is the process's VmHWM
   (ru_maxrss would carry the parent's over fork and exec).
2. Size of each Lambda zip in dist/ (`make package` writes them).
3. Throughput on one worker: requests driven sequentially through the WSGI app in-process (a
   Lambda instance serves one request at a time), on SQLite and on MariaDB, with 10,000
   applications at daycare A00017 in both SQL apps. Sign-in is the app's own: a session from the
   login form for pages, an id token from POST /auth/token for JSON routes (the emulator's Cognito).

AWS is the moto server, in a process of its own, provisioned once. It lives under tests/ so it is
never in a Lambda package.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.platform.settings import ROOT
from tests.bench_support import (
    bearer,
    dispose,
    emulator,
    make_app,
    median,
    mysql_database,
    percentile,
    seed_accounts,
    signed_in_client,
    table,
)

DEMO_PASSWORD = "Demo-1234!"  # noqa: S105 - the local demo accounts (shared.tools.demo)
DAYCARE = "A00017"
BULK_APPLICATIONS = 10_000

# --- 1. cold start ----------------------------------------------------------------------------------

# Run in a fresh interpreter: the clock starts before the app's first import.
CHILD = r"""
import json, time
start = time.perf_counter()
{setup}
ready = time.perf_counter()
{first}
done = time.perf_counter()
print(json.dumps({{"import": ready - start, "first": done - ready, "answers": answers,
                  "rss_kib": int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])}}))
"""

WSGI_FIRST = """
from werkzeug.test import Client
client = Client(app)
answers = [client.get(path).status_code for path in ("/healthz", "/auth/login")]
"""

BARE_FLASK = """
from flask import Flask, render_template_string
app = Flask("hello")
app.add_url_rule("/healthz", "healthz", lambda: {"status": "ok"})
app.add_url_rule("/auth/login", "login", lambda: render_template_string(
    "<form method=post><input name=email value='{{ email }}'><button>Sign in</button></form>", email=""))
"""

# the floor of any app on an ORM and validated payloads: the same two routes, one model, one query
BARE_DATABASE_APP = """
import os
from flask import Flask, render_template_string
from flask_sqlalchemy import SQLAlchemy
from pydantic import BaseModel
from sqlalchemy.orm import Mapped, mapped_column
db = SQLAlchemy()
class Item(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
class Login(BaseModel):
    email: str = ""
app = Flask("hello")
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
db.init_app(app)
def healthz():
    return {"status": "ok", "items": db.session.query(Item).count()}
app.add_url_rule("/healthz", "healthz", healthz)
app.add_url_rule("/auth/login", "login", lambda: render_template_string(
    "<form method=post><input name=email value='{{ email }}'><button>Sign in</button></form>", email=Login().email))
with app.app_context():
    db.create_all()
"""

# Zappa's handler: import the app_function's module, then getattr the WSGI app (create_app runs there)
ZAPPA_APP = "import importlib\napp = getattr(importlib.import_module({module!r}), 'app')"

# the pipeline function: Zappa imports shared.pipeline (its app_function) at cold start, then the
# handler's module for the first event
PIPELINE_FIRST = """
import importlib
event = json.loads({event!r})
handler = getattr(importlib.import_module("shared.pipeline.ingest"), "handler")
answers = [len(handler(event, None)["batchItemFailures"])]
"""

BARE_BOTO3_FIRST = """
import boto3
boto3.client("dynamodb").put_item(TableName={table!r}, Item={{"request_id": {{"S": "bare"}},
                                  "event_id": {{"S": str(time.time())}}}})
answers = [0]
"""


def _ingest_event(outputs: dict[str, str]) -> str:
    """A one-record SQS batch on the integrated-events queue, as Lambda sends it."""
    from shared.platform.events import Envelope

    envelope = Envelope(type="REQUEST", application={
        "child_id": "202301019999999", "child_name": "김민준", "child_birthday": "20230101", "user_id": "parent",
        "parent_name": "김부모", "parent_tel": "010-1234-5678", "parent_address": "서울시 중구 세종대로 110",
        "parent_postcode": "04524", "parent_email": "parent@example.com", "nursery_id": DAYCARE})
    arn = outputs["INTEGRATED_EVENTS_QUEUE_ARN"]
    record = {"messageId": "cold-start", "receiptHandle": "handle", "body": envelope.to_json(),
              "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": envelope.request_id},
              "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": arn,
              "awsRegion": arn.split(":")[3]}
    return json.dumps({"Records": [record]})


def cold_start(outputs: dict[str, str], runs: int) -> None:
    work = Path(outputs["WORK_DIR"])
    cases = {
        "bare Flask hello-world": (BARE_FLASK, WSGI_FIRST),
        "bare Flask + SQLAlchemy + pydantic": (BARE_DATABASE_APP, WSGI_FIRST),
        "bare boto3 handler (one put_item)": ("", BARE_BOTO3_FIRST.format(table=outputs["EVENTS_TABLE"])),
        "reqsys": (ZAPPA_APP.format(module="reqsys"), WSGI_FIRST),
        "childsys": (ZAPPA_APP.format(module="childsys"), WSGI_FIRST),
        "taskapp": (ZAPPA_APP.format(module="taskapp"), WSGI_FIRST),
        "pipeline (ingest, one SQS record)": ("import shared.pipeline\napp = shared.pipeline.app",
                                              PIPELINE_FIRST.format(event=_ingest_event(outputs))),
    }
    # SQL apps open no database for these requests; a file of their own keeps .local/ untouched
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{work / 'coldstart.db'}", "PYTHONHASHSEED": "0"}
    results: dict[str, list[dict]] = {name: [] for name in cases}
    for run in range(runs + 1):  # round robin, so drift hits every case alike; run 0 warms the .pyc files
        for name, (setup, first) in cases.items():
            script = CHILD.format(setup=setup, first=first)
            # a variable Lambda sets in every function's environment (not AWS_LAMBDA_FUNCTION_NAME: with it
            # the emulator's local mode is refused)
            function = {"LAMBDA_TASK_ROOT": str(ROOT)}
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", script], env={**env, **function}, cwd=ROOT,
                                  capture_output=True, text=True, check=False)
            wall = time.perf_counter() - started
            if done.returncode != 0:
                raise RuntimeError(f"cold start of {name} failed:\n{done.stderr[-3000:]}")
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            if any(answer not in (0, 200) for answer in figures["answers"]):
                raise RuntimeError(f"cold start of {name}: unexpected answers {figures['answers']}")
            if run:
                results[name].append({**figures, "wall": wall})

    def ms(name: str, key: str) -> float:
        return median([r[key] for r in results[name]]) * 1000

    bare = ms("bare Flask hello-world", "import") + ms("bare Flask hello-world", "first")
    rows = []
    for name in cases:
        total = ms(name, "import") + ms(name, "first")
        rss = median([r["rss_kib"] for r in results[name]]) / 1024
        rows.append([name, f"{ms(name, 'import'):.0f}", f"{ms(name, 'first'):.0f}", f"{total:.0f}",
                     f"{total / bare:.2f}x", f"{ms(name, 'wall'):.0f}", f"{rss:.0f}"])
    print(f"\n## Cold start (median of {runs} fresh processes; target: app ≤ 2x the bare Flask app)\n")
    print(table(["app", "import+create ms", "first requests ms", "app total ms", "vs bare Flask",
                 "process wall ms", "peak RSS MiB"], rows))
    print("  app total = the app's import (create_app) + its first requests, inside the process;"
          " process wall adds the interpreter's own start-up and exit.")


# --- 2. size -------------------------------------------------------------------------------------------


def sizes() -> None:
    print("\n## Lambda packages (dist/*.zip; limit 10 MiB)\n")
    zips = sorted((ROOT / "dist").glob("*.zip"))
    if not zips:
        print("  no dist/*.zip: run `make package STAGE=dev` first")
        return
    rows = [[path.name, f"{path.stat().st_size / 2**20:.2f}",
             datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")] for path in zips]
    print(table(["zip", "MiB", "built"], rows))


# --- 3. throughput ----------------------------------------------------------------------------------


def bulk_applications(app, count: int, nursery_id: str) -> None:
    """`count` applications of other parents at one daycare, in one core INSERT per 1,000 rows: mostly
    waiting (ranked), some decided; a third with a declared criterion, a tenth verified."""
    import sqlalchemy as sa

    from shared.waitlist.calendar import class_for, default_start

    db = app.extensions["sqlalchemy"]
    applications = db.metadata.tables["applications"]
    criteria = db.metadata.tables["application_criteria"]
    rng = random.Random(7)
    start = default_start()
    now = datetime.now(UTC).replace(tzinfo=None)
    statuses = [1] * 80 + [2] * 5 + [3] * 5 + [88] * 5 + [99] * 5
    with app.app_context():
        first_id = (db.session.scalar(sa.select(sa.func.max(applications.c.id))) or 0) + 1
        rows, declared = [], []
        for i in range(count):
            birthday = f"{rng.randint(2020, 2025)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
            child_id = f"{birthday}{i:07d}"
            verified = rng.random() < 0.1
            row = {
                "id": first_id + i, "request_id": f"{child_id}{nursery_id}", "child_id": child_id,
                "child_name": f"아이 {i}", "child_birthday": birthday, "user_id": f"bench-parent-{i}",
                "parent_sub": f"bench-parent-{i}", "parent_name": f"부모 {i}", "parent_tel": "010-1234-5678",
                "parent_address": "서울특별시 마포구 월드컵북로 21", "parent_postcode": "03900",
                "parent_email": f"parent{i}@example.com", "nursery_id": nursery_id, "status": rng.choice(statuses),
                "version": 1, "desired_start": start, "age_class": class_for(birthday, start),
                "applied_at": now - timedelta(minutes=count - i, microseconds=i), "priority_tier": 1 if verified else 2,
                "score": 200 if verified else 0, "created_at": now - timedelta(minutes=count - i),
                "updated_at": now - timedelta(minutes=(count - i) // 2),
            }
            rows.append({key: value for key, value in row.items() if key in applications.c})
            if i % 3 == 0:
                declared.append({"application_id": first_id + i, "code": "DUAL_INCOME",
                                 "status": "VERIFIED" if verified else "PENDING"})
        with db.engine.begin() as conn:
            for chunk in range(0, len(rows), 1000):
                conn.execute(applications.insert(), rows[chunk:chunk + 1000])
            for chunk in range(0, len(declared), 1000):
                conn.execute(criteria.insert(), declared[chunk:chunk + 1000])


def own_applications(app, headers: dict[str, str]) -> None:
    """The demo parent's own applications, through the JSON API: 3 children at 3 daycares each."""
    client = app.test_client()
    for child in range(3):
        for nursery_id in ("A00017", "A00018", "A00021"):
            body = {"child_id": f"20230101{child:07d}", "child_name": f"하늘 {child}", "child_birthday": "20230101",
                    "parent_name": "김하늘", "parent_tel": "010-0000-0000", "parent_address": "서울",
                    "parent_postcode": "00001", "parent_email": "parent@example.com", "nursery_id": nursery_id,
                    "criteria": ["DUAL_INCOME"]}
            response = client.post("/enterwait/request", json=body, headers=headers)
            if response.status_code not in (200, 201):
                raise RuntimeError(f"could not apply: {response.status_code} {response.get_data(as_text=True)}")


class SqlClock:
    """Queries and time spent in the database driver (cursor execute) of an app's engine."""

    def __init__(self, app):
        from sqlalchemy import event

        with app.app_context():
            engine = app.extensions["sqlalchemy"].engine
        self.queries, self.seconds, self._started = 0, 0.0, 0.0
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *_args) -> None:
        self._started = time.perf_counter()

    def _after(self, *_args) -> None:
        self.queries += 1
        self.seconds += time.perf_counter() - self._started


def measure(client, path: str, requests: int, headers: dict[str, str] | None = None,
            sql: SqlClock | None = None) -> list[object]:
    """`requests` GETs one after the other (after a few to warm up): req/s, p50 and p99 in ms, and
    (SQL apps) the queries and database time per request."""
    for _ in range(5):
        client.get(path, headers=headers)
    latencies, database = [], []
    started = time.perf_counter()
    for _ in range(requests):
        queries, sql_seconds = (sql.queries, sql.seconds) if sql else (0, 0.0)
        begin = time.perf_counter()
        response = client.get(path, headers=headers)
        latencies.append(time.perf_counter() - begin)
        if sql:
            database.append((sql.queries - queries, sql.seconds - sql_seconds))
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code} {response.get_data(as_text=True)[:500]}")
    elapsed = time.perf_counter() - started
    per_request = (f"{median([q for q, _ in database]):.0f}", f"{median([s for _, s in database]) * 1000:.1f}") \
        if sql else ("-", "-")
    return [requests, f"{requests / elapsed:.0f}", f"{percentile(latencies, 0.5) * 1000:.1f}",
            f"{percentile(latencies, 0.99) * 1000:.1f}", *per_request]


def sql_backend(label: str, url_for_app, requests: int) -> list[list[object]]:
    rows = []
    reqsys = make_app("reqsys", url_for_app("reqsys"))
    childsys = make_app("childsys", url_for_app("childsys"))
    try:
        parent_headers = bearer(reqsys, "parent@example.com", DEMO_PASSWORD)
        own_applications(reqsys, parent_headers)
        started = time.perf_counter()
        bulk_applications(reqsys, BULK_APPLICATIONS, DAYCARE)
        bulk_applications(childsys, BULK_APPLICATIONS, DAYCARE)
        print(f"  {label}: {BULK_APPLICATIONS:,} applications at {DAYCARE} inserted in each SQL app in"
              f" {time.perf_counter() - started:.1f} s")
        parent = signed_in_client(reqsys, "parent@example.com", DEMO_PASSWORD)
        staff = signed_in_client(childsys, "staff@example.com", DEMO_PASSWORD)
        staff_headers = bearer(childsys, "staff@example.com", DEMO_PASSWORD)
        json_client = reqsys.test_client()
        staff_json = childsys.test_client()
        reqsys_sql, childsys_sql = SqlClock(reqsys), SqlClock(childsys)
        rows.append([label, "reqsys", "GET /applications (parent's page, 9 applications)", "session",
                     *measure(parent, "/applications", requests, sql=reqsys_sql)])
        rows.append([label, "reqsys", "GET /enterwait (parent's JSON)", "token",
                     *measure(json_client, "/enterwait", requests, parent_headers, reqsys_sql)])
        rows.append([label, "reqsys", "GET /api/nurseries", "token",
                     *measure(json_client, "/api/nurseries", requests, parent_headers, reqsys_sql)])
        rows.append([label, "childsys", f"GET /applications (staff page, {BULK_APPLICATIONS:,} at {DAYCARE})",
                     "session", *measure(staff, "/applications", requests, sql=childsys_sql)])
        rows.append([label, "childsys", f"GET /request?nursery_id={DAYCARE} (JSON)", "token",
                     *measure(staff_json, f"/request?nursery_id={DAYCARE}", requests, staff_headers, childsys_sql)])
        rows.append([label, "childsys", f"GET /request?nursery_id={DAYCARE}&status=REQUESTED&page=50", "token",
                     *measure(staff_json, f"/request?nursery_id={DAYCARE}&status=REQUESTED&page=50", requests,
                              staff_headers, childsys_sql)])
    finally:
        dispose(reqsys)
        dispose(childsys)
    return rows


def taskapp_rows(requests: int) -> list[list[object]]:
    app = make_app("taskapp")
    headers = bearer(app, "user@example.com", DEMO_PASSWORD)
    client = app.test_client()
    for i in range(100):
        response = client.post("/api/tasks", json={"title": f"보고서 준비 {i}", "priority": "MEDIUM"}, headers=headers)
        if response.status_code != 201:
            raise RuntimeError(f"could not create a task: {response.status_code} {response.get_data(as_text=True)}")
    page = signed_in_client(app, "user@example.com", DEMO_PASSWORD)
    label = "DynamoDB (emulator)"
    return [[label, "taskapp", "GET /tasks (page, 100 tasks)", "session", *measure(page, "/tasks", requests)],
            [label, "taskapp", "GET /api/tasks (JSON)", "token", *measure(client, "/api/tasks", requests, headers)]]


def throughput(outputs: dict[str, str], requests: int) -> None:
    work = Path(outputs["WORK_DIR"])
    print(f"\n## Throughput, one worker (WSGI app driven sequentially in-process; {requests} requests per route)\n")
    rows = sql_backend("SQLite", lambda name: f"sqlite:///{work / f'{name}.db'}", requests)
    with mysql_database("bench_reqsys") as reqsys_url, mysql_database("bench_childsys") as childsys_url:
        if reqsys_url and childsys_url:
            urls = {"reqsys": reqsys_url, "childsys": childsys_url}
            rows += sql_backend("MariaDB", urls.__getitem__, requests)
    rows += taskapp_rows(requests)
    print()
    print(table(["database", "app", "route", "auth", "requests", "req/s", "p50 ms", "p99 ms", "queries",
                 "SQL ms p50"], rows))
    print(f"  target: childsys's lists with {BULK_APPLICATIONS:,} applications at p99 ≤ 50 ms. queries and SQL ms:"
          " per request (median), time inside the database driver. The emulator (AWS) runs in another process on"
          " this machine; taskapp's store is DynamoDB there.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench_apps", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and requests (a smoke run)")
    parser.add_argument("--runs", type=int, help="cold-start processes per app (default 5, quick 2)")
    parser.add_argument("--requests", type=int, help="requests per route (default 200, quick 50)")
    parser.add_argument("--only", choices=("coldstart", "size", "throughput"), help="run one part only")
    args = parser.parse_args(argv)
    runs = args.runs or (2 if args.quick else 5)
    requests = args.requests or (50 if args.quick else 200)
    import logging

    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    print(f"# make bench: the apps ({'quick' if args.quick else 'full'} run, Python {sys.version.split()[0]})")
    if args.only in (None, "size"):
        sizes()
    if args.only == "size":
        return 0
    with emulator() as outputs:
        seed_accounts()
        if args.only in (None, "coldstart"):
            cold_start(outputs, runs)
        if args.only in (None, "throughput"):
            throughput(outputs, requests)
    print(f"\n(bench_apps took {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
