"""Benchmark of the apps: `make bench` (or `python -m tests.bench_apps [--quick]`). Prints figures,
asserts nothing.

1. Cold start per function, as Lambda runs it: every function's zip built now (`make package`'s build,
   rendered for this emulator), unpacked into a read-only folder, a fresh `python -B` of the clean Python
   check-package uses, Zappa's handler answering GET /auth/login (web apps) or one SQS batch (the
   pipeline's ingest handler). Beside them a bare Flask hello-world made the same way (the same Flask and
   Zappa handler, bytecode) and a bare boto3 handler. Median of N processes; `--zips DIR` measures other
   zips (an older build). Peak RSS is the process's VmHWM. For the web apps also "restored from a
   snapshot": what a SnapStart instance does after Lambda restores it (hooks, then the first request).
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
import re
import shutil
import subprocess
import sys
import time
import zipfile
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

# --- 1. cold start ---------------------------------------------------------------------------------

# As Lambda runs a function: its zip unpacked into a read-only folder (cwd, as /var/task), a fresh
# `python -B` of the clean Python check-package uses (boto3/botocore only, as Lambda's runtime), and
# the handler's first event: Zappa's `handler.lambda_handler` imports the app (create_app) and answers
# GET /auth/login (the web apps) or one SQS batch (the pipeline's ingest handler). The clock starts
# before the first import.
CHILD = r"""
import json, sys, time
start = time.perf_counter()
event = json.loads(sys.stdin.read())
class Context:
    function_name = "bench"; function_version = "$LATEST"; memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:ap-northeast-2:123456789012:function:bench"
    aws_request_id = "00000000-0000-4000-8000-000000000000"; log_group_name = "bench"; log_stream_name = "bench"
    def get_remaining_time_in_millis(self):
        return 30000
{call}
done = time.perf_counter()
if isinstance(answer, dict) and "statusCode" in answer:
    answer = answer["statusCode"]
print(json.dumps({{"ms": (done - start) * 1000, "answer": answer,
                  "rss_kib": int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])}}))
"""
ZAPPA_CALL = "from handler import lambda_handler\nanswer = lambda_handler(event, Context())"
# With SnapStart: the app built at import (Lambda's init) and the before-snapshot hook run when the version
# is published; a restored instance runs the after-restore hooks and answers. The clock restarts at the
# restore, so this leaves out Lambda's own restore of the memory, which cannot be measured here.
RESTORED_CALL = """from handler import lambda_handler
import snapshot_restore_py
for hook, args, kwargs in snapshot_restore_py.get_before_snapshot():
    hook(*args, **kwargs)
start = time.perf_counter()
for hook, args, kwargs in snapshot_restore_py.get_after_restore():
    hook(*args, **kwargs)
answer = lambda_handler(event, Context())"""
RESTORED = " restored from a snapshot"
BARE_BOTO3_CALL = "from bare import handler\nanswer = handler(event, Context())"

BARE_FLASK = """from flask import Flask, render_template_string

app = Flask("hello")
app.add_url_rule("/healthz", "healthz", lambda: {"status": "ok"})
app.add_url_rule("/auth/login", "login", lambda: render_template_string(
    "<form method=post><input name=email value='{{ email }}'><button>Sign in</button></form>", email=""))
"""
FLASK_TOPS = ("flask", "werkzeug", "jinja2", "markupsafe", "itsdangerous", "click", "blinker", "zappa",
              "durationpy", "handler.py", "package_info.json")

BARE_BOTO3 = """import os
import time

import boto3

table = boto3.resource("dynamodb").Table(os.environ["EVENTS_TABLE"])


def handler(event, context):
    for record in event["Records"]:
        table.put_item(Item={"request_id": "bare", "event_id": f"{time.time()}-{record['messageId']}"})
    return {"batchItemFailures": []}
"""


def _bare_flask_zip(app_zip: Path, out: Path) -> Path:
    """A Flask hello-world built the way the apps are: Zappa's handler and the same Flask (bytecode) from
    an app's zip, the hello module compiled by the same step."""
    from shared.tools.deploy import package

    with zipfile.ZipFile(app_zip) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if package._module_top(info.filename.split("/")[0]) in FLASK_TOPS or (
                    info.filename.startswith("__pycache__/handler.")):
                dst.writestr(info, src.read(info))
        settings = src.read("zappa_settings.py").decode()
        settings = re.sub(r"^APP_MODULE=.*$", "APP_MODULE='hello'", settings, flags=re.M)
        settings = re.sub(r"^AWS_EVENT_MAPPING=.*$", "AWS_EVENT_MAPPING={}", settings, flags=re.M)
        dst.writestr("zappa_settings.py", settings)
        dst.writestr("hello.py", BARE_FLASK)
    package.compile_bytecode(out, package.runtime_venv() / "bin" / "python", ["hello"])
    return out


def _bare_boto3_zip(out: Path) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        dst.writestr("bare.py", BARE_BOTO3)
    from shared.tools.deploy import package

    package.compile_bytecode(out, package.runtime_venv() / "bin" / "python", ["bare"])
    return out


def built_zips(outputs: dict[str, str], stage: str) -> dict[str, Path]:
    """Every function's zip for `stage`, rendered for this emulator, as `make package` builds them."""
    from shared.tools.deploy import package, stages

    work = Path(outputs["WORK_DIR"])
    settings_file = work / "zappa_settings.json"
    rendered = stages.render(stage, account_id=stages.LOCAL_ACCOUNT, region="ap-northeast-2", outputs=outputs,
                             env={})
    settings_file.write_text(json.dumps(rendered))
    return package.build(stage, settings_file, work / "dist")


def _event(app: str, zip_path: Path, stage: str) -> dict:
    """The function's first event: GET /auth/login, or one record on the integrated-events queue."""
    from shared.tools.deploy import package

    cases = package.plan(app, package.zappa_settings(zip_path), stage).cases
    wanted = "GET /auth/login" if app != "pipeline" else "SQS"
    return next(case.event for case in cases if case.what.startswith(wanted))


def cold_start(outputs: dict[str, str], runs: int, zips_dir: Path | None = None) -> None:
    from shared.tools.deploy import package

    work = Path(outputs["WORK_DIR"])
    stage = "bench"
    if zips_dir:
        zips = {path.stem.rsplit("_", 1)[0]: path for path in sorted(zips_dir.glob("*.zip"))}
        stage = next(iter(zips.values())).stem.rsplit("_", 1)[1]
        if stage != "bench":
            from shared.tools import provision

            provision.apply(stage)
    else:
        zips = built_zips(outputs, stage)
    python = package.check_venv() / "bin" / "python"
    bare_flask = _bare_flask_zip(zips["reqsys"], work / "bare-flask.zip")
    pipeline_event = _event("pipeline", zips["pipeline"], stage)
    cases = {
        "bare Flask hello-world (Zappa's handler)": (bare_flask, ZAPPA_CALL,
                                                     _event("reqsys", zips["reqsys"], stage)),
        "bare boto3 handler (one put_item)": (_bare_boto3_zip(work / "bare-boto3.zip"), BARE_BOTO3_CALL,
                                              pipeline_event),
        **{app: (zips[app], ZAPPA_CALL, _event(app, zips[app], stage)) for app in ("reqsys", "childsys", "taskapp")},
        **{app + RESTORED: (zips[app], RESTORED_CALL, _event(app, zips[app], stage))
           for app in ("reqsys", "childsys", "taskapp")},
        "pipeline (ingest, one SQS record)": (zips["pipeline"], ZAPPA_CALL, pipeline_event),
    }
    folders = {}
    for name, (zip_path, *_rest) in cases.items():
        folder = work / "task" / re.sub(r"\W+", "-", name)
        shutil.rmtree(folder, ignore_errors=True)
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(folder)
        for path in [folder, *folder.rglob("*")]:  # read-only, as /var/task
            path.chmod(path.stat().st_mode & ~0o222)
        folders[name] = folder
    # TZ as Lambda sets it in every function (Babel reads the local zone at import)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8", "TZ": ":UTC", "PYTHONNOUSERSITE": "1",
           **{k: v for k, v in os.environ.items() if k.startswith("AWS_") and k != "AWS_OUTPUTS_DIR"},
           "EVENTS_TABLE": outputs["EVENTS_TABLE"], "DATABASE_URL": f"sqlite:///{work / 'coldstart.db'}"}
    results: dict[str, list[dict]] = {name: [] for name in cases}
    for run in range(runs + 1):  # round robin, so drift hits every case alike; run 0 warms the disk cache
        for name, (_zip, call, event) in cases.items():
            # a variable Lambda sets in every function's environment (not AWS_LAMBDA_FUNCTION_NAME: with it
            # the emulator's local mode is refused)
            function = {"LAMBDA_TASK_ROOT": str(folders[name])}
            if name.endswith(RESTORED):  # as a SnapStart stage sets it: the app is built at import
                function["INSTANTIATE_LAMBDA_HANDLER_ON_IMPORT"] = "true"
            started = time.perf_counter()
            done = subprocess.run([str(python), "-B", "-c", CHILD.format(call=call)], env={**env, **function},
                                  cwd=folders[name], input=json.dumps(event), capture_output=True, text=True,
                                  check=False)
            wall = time.perf_counter() - started
            if done.returncode != 0:
                raise RuntimeError(f"cold start of {name} failed:\n{done.stderr[-3000:]}")
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            if figures["answer"] not in (200, {"batchItemFailures": []}):
                raise RuntimeError(f"cold start of {name}: unexpected answer {figures['answer']}")
            if run:
                results[name].append({**figures, "wall": wall * 1000})
    for folder in folders.values():
        for path in [folder, *folder.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
    shutil.rmtree(work / "task", ignore_errors=True)  # the unpacked copies (the built zips stay in work/dist)

    def ms(name: str, key: str = "ms") -> float:
        return median([r[key] for r in results[name]])

    bare_flask_ms = ms("bare Flask hello-world (Zappa's handler)")
    bare_boto3_ms = ms("bare boto3 handler (one put_item)")
    rows = []
    for name, (zip_path, *_rest) in cases.items():
        base, target = (bare_boto3_ms, "≤ 2x bare boto3") if name.startswith("pipeline") else (
            bare_flask_ms, "≤ 3x bare Flask")
        ratio = "" if name.startswith("bare") or name.endswith(RESTORED) else f"{ms(name) / base:.2f}x ({target})"
        rows.append([name, f"{zip_path.stat().st_size / 2**20:.2f}", f"{ms(name):.0f}", ratio,
                     f"{ms(name, 'wall'):.0f}", f"{median([r['rss_kib'] for r in results[name]]) / 1024:.0f}"])
    print(f"\n## Cold start from the zips (median of {runs} fresh `python -B` processes, read-only folder;"
          f" {'zips in ' + str(zips_dir) if zips_dir else 'zips built now for stage ' + stage})\n")
    print(table(["function", "zip MiB", "first answer ms", "vs bare", "process wall ms", "peak RSS MiB"], rows))
    print("  first answer = import of the handler, create_app and the first event, inside the process; process"
          " wall adds the interpreter's own start-up and exit. Largest zip target: ≤ 15 MiB.\n"
          f"  {RESTORED.strip()} = SnapStart: the after-restore hooks and the first event of an instance whose app"
          " was built and snapshotted at publish time (Lambda's own restore of the memory is not included).")


# --- 2. size -------------------------------------------------------------------------------------------


def sizes() -> None:
    print("\n## Lambda packages (dist/*.zip; limit 15 MiB)\n")
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
    parser.add_argument("--zips", type=Path, help="cold start of these zips (e.g. an older build) instead of"
                                                  " building them now")
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
            cold_start(outputs, runs, args.zips)
        if args.only in (None, "throughput"):
            throughput(outputs, requests)
    print(f"\n(bench_apps took {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
