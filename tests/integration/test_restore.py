"""SnapStart: before Lambda snapshots a function and after it restores one, the runtime calls the hooks
registered with `snapshot_restore_py` (shared/platform/restore.py). Here they are called the way the
runtime calls them, on an app that already served a request (as the snapshot's cold start did)."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import event

from shared.platform import aws, restore

snapshot_restore_py = pytest.importorskip("snapshot_restore_py")


def restore_as_the_runtime_does() -> int:
    hooks = snapshot_restore_py.get_after_restore()
    for function, args, kwargs in hooks:
        function(*args, **kwargs)
    return len(hooks)


def test_building_an_app_registers_the_hooks_once(make_app):
    make_app("reqsys")
    make_app("childsys")
    hooks = [function for function, _, _ in snapshot_restore_py.get_after_restore()]
    assert hooks.count(restore.after_restore) == 1
    hooks = [function for function, _, _ in snapshot_restore_py.get_before_snapshot()]
    assert hooks.count(restore.before_snapshot) == 1


def test_a_restored_instance_serves_its_first_pages_without_compiling_a_template_or_making_a_client(make_app):
    app = make_app("reqsys")
    compiled = []
    compile_ = app.jinja_env.compile
    app.jinja_env.compile = lambda *args, **kwargs: compiled.append(args) or compile_(*args, **kwargs)
    for function, args, kwargs in snapshot_restore_py.get_before_snapshot():
        function(*args, **kwargs)
    assert len(compiled) > 10  # the snapshot was taken with every page's templates compiled
    compiled.clear()
    restore_as_the_runtime_does()

    client = app.test_client()
    assert client.get("/auth/login").status_code == 200
    assert client.get("/auth/signup").status_code == 200
    assert compiled == []
    # nor a boto3 client: the sign-in page's Content-Security-Policy names the S3 origin worked out before
    assert aws._client.cache_info().currsize == 0


def test_after_a_restore_the_next_request_opens_a_new_connection_and_makes_new_clients(make_app):
    app = make_app("reqsys")
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
        engine.dispose()  # the migration's connection: start as a cold start does, with none
    connections, checkouts = [], []
    event.listen(engine, "connect", lambda dbapi_connection, record: connections.append(dbapi_connection))
    event.listen(engine, "checkout", lambda dbapi_connection, record, proxy: checkouts.append(dbapi_connection))
    client = app.test_client()

    assert client.get("/api/nurseries").status_code == 200
    assert client.get("/api/nurseries").status_code == 200
    assert len(connections) == 1 and len(checkouts) == 2, "warm requests reuse the pooled connection"
    before = aws.client("sqs")
    assert aws.client("sqs") is before, "clients are cached between requests"

    assert restore_as_the_runtime_does() >= 1

    assert client.get("/api/nurseries").status_code == 200
    assert len(connections) == 2, "the request after the restore opened a connection of its own"
    assert checkouts[-1] is connections[1] is not connections[0]
    assert aws.client("sqs") is not before, "the snapshot's boto3 client was dropped"


def test_instances_restored_from_one_snapshot_draw_different_random_numbers(make_app):
    make_app("taskapp")
    snapshot = random.getstate()
    draws = []
    for _instance in range(2):
        random.setstate(snapshot)  # each instance starts from the same memory
        restore_as_the_runtime_does()
        draws.append([random.random() for _ in range(4)])
    assert draws[0] != draws[1]
