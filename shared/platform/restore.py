"""What a function does before Lambda SnapStart snapshots it, and after it restores it (README, "Deploying").

SnapStart runs the cold start once, when a version is published, snapshots the memory, and starts
every new instance from that snapshot. So whatever the cold start opened is shared by every instance
restored from it and may be long dead: database connections (their sockets went with the snapshot),
boto3 clients (their connection pools, and credentials that expire), and the state of `random`
(every instance would draw the same numbers). The runtime calls the hooks registered with
`snapshot_restore_py`, a module it provides (absent elsewhere: then nothing is registered), after
each restore; `after_restore` is that hook:

- every engine of every app that called `install` is disposed without closing its sockets (there is
  no server at the other end any more), so the next request opens a new connection;
- the cached boto3 clients are dropped (`shared.platform.aws.clear_cache`): the next call makes new ones;
- `random` is seeded again from the operating system. (`secrets` and `uuid4` read os.urandom
  and need nothing.)

Before the snapshot, `before_snapshot` does for every app what each restored instance would otherwise
do on its first requests: it compiles every template (Jinja cannot keep compiled templates in a
read-only folder) and serves the sign-in page once (the Korean catalogue, the static files' hashes, the
Content-Security-Policy's S3 origins, boto3's import), so the snapshot carries them.
"""

from __future__ import annotations

import logging
import os
import random
import weakref

log = logging.getLogger(__name__)
WARM_PAGE = "/auth/login"  # every web app's, and what a parent opens first
_apps: weakref.WeakSet = weakref.WeakSet()
_registered = False


def install(app) -> None:
    """Have `after_restore` reset `app` (a Flask app) too; registers the hook once per process."""
    global _registered
    _apps.add(app)
    if _registered:
        return
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:  # not in Lambda with SnapStart: no snapshot, nothing to restore
        return
    register_before_snapshot(before_snapshot)
    register_after_restore(after_restore)
    _registered = True


def before_snapshot() -> None:
    """Compile every app's templates and serve its sign-in page once, so the snapshot holds what they build."""
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    for app in list(_apps):
        compiled = 0
        environment = app.jinja_env
        for name in environment.list_templates(extensions=["html", "txt"]):
            environment.get_template(name)
            compiled += 1
        # through WSGI as Zappa's handler calls it (Flask's test client needs package metadata a zip has not)
        _body, status, _headers = run_wsgi_app(app.wsgi_app, EnvironBuilder(path=WARM_PAGE).get_environ(),
                                               buffered=True)
        log.info("before the snapshot: %d template(s) compiled, %s answered %s", compiled, WARM_PAGE, status)


def after_restore() -> None:
    """Drop what the snapshot carried over: database connections, boto3 clients, random's state."""
    from shared.platform.aws import clear_cache

    for app in list(_apps):
        db = app.extensions.get("sqlalchemy")
        if db is None:
            continue
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose(close=False)  # the snapshot's sockets lead nowhere: forget, don't close
    clear_cache()
    random.seed(os.urandom(32))
    log.info("restored from a snapshot: %d app(s) reset, boto3 clients dropped, random reseeded", len(_apps))
