"""The request path on MariaDB: each app served by gunicorn with one sync worker (as one Lambda instance
serves one request at a time), per route the worker's CPU per request (its /proc utime+stime before and
after), the SQL statements per request (counted in-process, as tests/integration/test_statement_count.py
counts them), and p50/p99 at 1 and 8 concurrent connections; then the top functions of a profile of the
apply route. Prints; asserts nothing.

Data: 1,000 applications at one daycare of which 160 are the demo parent's; a second parent with 10 own
among 1,000 at another daycare; childsys with 10,000 applications at the staff member's daycare.

Targets (issue 15): apply ≤ 8 ms worker CPU and ≤ 8 statements; the parent's list with 160 own ≤ 30 ms,
with 10 own ≤ 5 ms; the admin's first page ≤ 50 ms; the staff page at 10,000 p99 ≤ 30 ms.

    .venv/bin/python -m tests.bench_requests [--requests N]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import cProfile
import http.client
import io
import json
import os
import pstats
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.bench_support import (
    bearer,
    dispose,
    emulator,
    free_port,
    make_app,
    mysql_database,
    percentile,
    seed_accounts,
    signed_in_client,
    table,
)
from tests.statement_count import counting

PASSWORD = "Demo-1234!"
DAYCARE, OTHER_DAYCARE = "A00017", "A00018"
SECOND_PARENT = "parent2@example.com"
TICKS = os.sysconf("SC_CLK_TCK")


# --- data ---------------------------------------------------------------------------------------------


def add_parent(email: str) -> None:
    from shared.platform.aws import client
    from shared.platform.settings import Settings

    pool_id = Settings.load("reqsys").cognito_userpool_id
    cognito = client("cognito-idp")
    with contextlib.suppress(cognito.exceptions.UsernameExistsException):
        cognito.admin_create_user(UserPoolId=pool_id, Username=email, MessageAction="SUPPRESS", UserAttributes=[
            {"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"},
            {"Name": "name", "Value": "부모 둘"}])
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=email, Password=PASSWORD, Permanent=True)
    cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=email, GroupName="parents")


def sub_of(headers: dict[str, str]) -> str:
    part = headers["Authorization"].split()[1].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))["sub"]


def applications_at(app, nursery_id: str, count: int, owners: dict[str, int], tag: str) -> None:
    """`count` applications at one daycare in core INSERTs; the first ones belong to `owners` (sub -> how
    many), the rest to parents of their own; mostly waiting (ranked), some decided."""
    from shared.waitlist.calendar import class_for, default_start

    db = app.extensions["sqlalchemy"]
    applications = db.metadata.tables["applications"]
    rng = random.Random(15)
    start, now = default_start(), datetime.now(UTC).replace(tzinfo=None)
    statuses = [1] * 80 + [2] * 5 + [3] * 5 + [88] * 5 + [99] * 5
    parents = [sub for sub, many in owners.items() for _ in range(many)]
    rows = []
    for i in range(count):
        birthday = f"{rng.randint(2021, 2025)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        child_id = f"{birthday}{tag}{i:06d}"
        sub = parents[i] if i < len(parents) else f"bench-{tag}-{i}"
        rows.append({
            "request_id": f"{child_id}{nursery_id}{i}", "child_id": child_id, "child_name": f"아이 {i}",
            "child_birthday": birthday, "user_id": sub, "parent_sub": sub, "parent_name": f"부모 {i}",
            "parent_tel": "010-1234-5678", "parent_address": "서울특별시 마포구", "parent_postcode": "03900",
            "parent_email": f"p{i}@example.com", "nursery_id": nursery_id, "status": rng.choice(statuses),
            "version": 1, "desired_start": start, "age_class": class_for(birthday, start),
            "applied_at": now - timedelta(minutes=count - i, microseconds=i), "priority_tier": rng.choice((1, 2)),
            "score": rng.choice((0, 100, 200)), "created_at": now - timedelta(minutes=count - i),
            "updated_at": now})
    rows = [{key: value for key, value in row.items() if key in applications.c} for row in rows]
    with app.app_context(), db.engine.begin() as conn:
        for chunk in range(0, len(rows), 1000):
            conn.execute(applications.insert(), rows[chunk:chunk + 1000])


# --- serving and measuring --------------------------------------------------------------------------


@contextlib.contextmanager
def served(module: str, database_url: str) -> Iterator[tuple[int, int]]:
    """(port, worker pid) of `module` served by gunicorn, one sync worker, on the database."""
    port = free_port()
    log = open(Path(os.environ["AWS_OUTPUTS_DIR"]) / f"gunicorn-{module}.log", "w")  # noqa: SIM115 - closed below
    env = {**os.environ, "DATABASE_URL": database_url}
    master = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "1", "-k", "sync", "-b", f"127.0.0.1:{port}",
                               "--timeout", "120", f"{module}:create_app()"], env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
            if children:
                with contextlib.suppress(OSError):
                    get(port, "/healthz", {})
                    break
            if master.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn for {module} did not start (see {log.name})")
            time.sleep(0.2)
        yield port, int(children[0])
    finally:
        master.terminate()
        try:
            master.wait(timeout=15)
        except subprocess.TimeoutExpired:
            master.kill()
        log.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def get(port: int, path: str, headers: dict[str, str], body: dict | None = None) -> float:
    """One request on a new connection (gunicorn's sync worker closes each); its wall time."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    begin = time.perf_counter()
    try:
        if body is None:
            connection.request("GET", path, headers=headers)
        else:
            connection.request("POST", path, body=json.dumps(body),
                               headers={**headers, "Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    if response.status not in (200, 201):
        raise RuntimeError(f"{path}: {response.status}")
    return time.perf_counter() - begin


def latencies(port: int, route, requests: int, connections: int) -> list[float]:
    """`requests` requests from `connections` threads at once; each one's wall time."""
    times: list[float] = []
    lock = threading.Lock()
    left = iter(range(requests))

    def client() -> None:
        while True:
            with lock:
                if next(left, None) is None:
                    return
            path, headers, body = route()
            took = get(port, path, headers, body)
            with lock:
                times.append(took)

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times


def statements_per_request(app, route, requests: int = 5) -> float:
    """The statements of the route counted in-process (the app on the same database)."""
    client = app.test_client(use_cookies=False)  # the route's own Cookie header, if any
    path, headers, body = route()
    (client.get if body is None else client.post)(path, headers=headers, json=body)  # warm
    total = 0
    for _ in range(requests):
        path, headers, body = route()
        with counting(app) as statements:
            response = (client.get if body is None else client.post)(path, headers=headers, json=body)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"{path}: {response.status_code} {response.get_data(as_text=True)[:300]}")
        total += statements.total
    return total / requests


def figures(port: int, pid: int, app, route, requests: int) -> list[object]:
    for _ in range(5):
        get(port, *route())
    before = cpu_seconds(pid)
    one = latencies(port, route, requests, 1)
    cpu = (cpu_seconds(pid) - before) / requests
    eight = latencies(port, route, requests, 8)
    return [f"{cpu * 1000:.1f}", f"{statements_per_request(app, route):.0f}",
            f"{percentile(one, 0.5) * 1000:.1f}", f"{percentile(one, 0.99) * 1000:.1f}",
            f"{percentile(eight, 0.5) * 1000:.1f}", f"{percentile(eight, 0.99) * 1000:.1f}"]


def new_application(headers: dict[str, str]):
    """A route: the seed's body with a new child each time (a child may wait at three daycares at most)."""

    def route():
        child = "2023" + str(uuid.uuid4().int)[:11]
        body = {"child_id": child, "child_name": "김아기", "child_birthday": "20230101", "parent_name": "김부모",
                "parent_tel": "010-0000-0000", "parent_address": "서울특별시 마포구", "parent_postcode": "00001",
                "parent_email": "user@email.com", "nursery_id": OTHER_DAYCARE}
        return "/enterwait/request", headers, body

    return route


def profile_apply(app, route, requests: int) -> None:
    client = app.test_client()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        path, headers, body = route()
        client.post(path, headers=headers, json=body)
    profiler.disable()
    for order, only, title in (("tottime", None, "own time"),
                               ("cumulative", r"(reqsys|shared)/", "cumulative, the project's own functions")):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).sort_stats(order)
        stats.print_stats(*((only,) if only else ()), 15)
        print(f"\n  top 15 functions ({title}) of {requests} applies in-process (cProfile):")
        lines = out.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if "ncalls" in line)
        print("\n".join("  " + line.replace(str(Path.cwd()) + "/", "") for line in lines[start:start + 16]))


def run(requests: int) -> None:
    with mysql_database("bench_req_reqsys") as reqsys_url, mysql_database("bench_req_childsys") as childsys_url:
        if not (reqsys_url and childsys_url):
            return
        reqsys, childsys = make_app("reqsys", reqsys_url), make_app("childsys", childsys_url)
        try:
            parent = bearer(reqsys, "parent@example.com", PASSWORD)
            second = bearer(reqsys, SECOND_PARENT, PASSWORD)
            admin = bearer(reqsys, "admin@example.com", PASSWORD)
            applications_at(reqsys, DAYCARE, 1000, {sub_of(parent): 160}, "a")
            applications_at(reqsys, OTHER_DAYCARE, 1000, {sub_of(second): 10}, "b")
            from tests.bench_apps import bulk_applications

            bulk_applications(childsys, 10_000, DAYCARE)
            staff = signed_in_client(childsys, "staff@example.com", PASSWORD)
            cookie = staff.get_cookie("childsys_session")
            staff_headers = {"Cookie": f"childsys_session={cookie.value}"}
            fixed = {
                "GET /healthz (the floor: no sign-in, no SQL)": ("/healthz", {}),
                "GET /enterwait (160 own of 1,000)": ("/enterwait", parent),
                "GET /enterwait (10 own of 1,000)": ("/enterwait", second),
                "GET /enterwait (admin, first page)": ("/enterwait", admin),
            }
            rows = []
            with served("reqsys", reqsys_url) as (port, pid):
                for name, (path, headers) in fixed.items():
                    rows.append(["reqsys", name, *figures(port, pid, reqsys, lambda p=path, h=headers: (p, h, None),
                                                         requests)])
                rows.insert(0, ["reqsys", "POST /enterwait/request (apply)",
                                *figures(port, pid, reqsys, new_application(parent), requests)])
            with served("childsys", childsys_url) as (port, pid):
                rows.append(["childsys", "GET /applications (staff page, 10,000)",
                             *figures(port, pid, childsys, lambda: ("/applications", staff_headers, None), requests)])
            print(table(["app", "route", "worker CPU ms/req", "statements/req", "p50 ms (1)", "p99 ms (1)",
                         "p50 ms (8)", "p99 ms (8)"], rows))
            profile_apply(reqsys, new_application(parent), min(requests, 100))
        finally:
            dispose(reqsys)
            dispose(childsys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench_requests", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per route and concurrency (default 200)")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    print(f"# make bench: the request path on MariaDB, one gunicorn sync worker ({args.requests} requests per figure)")
    with emulator():
        seed_accounts()
        add_parent(SECOND_PARENT)
        run(args.requests)
    print(f"\n(bench_requests took {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
