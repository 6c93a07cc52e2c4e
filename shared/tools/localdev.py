"""`make run`: the whole system on this machine.

Starts the AWS emulator (moto server) on :4566, provisions every resource on it,
migrates the SQLite databases under .local/, seeds demo accounts and daycares,
then serves reqsys :8001, childsys :8002, taskapp :8003 and the local event-source
runner. A process that stops (a crash, a kill) is restarted and the terminal says so; the
emulator, being in memory, is provisioned and seeded again. Only Ctrl-C stops everything.
"""

from __future__ import annotations

import importlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from shared.platform.aws import emulator_environment
from shared.platform.settings import LOCAL_DIR, LOCAL_ENDPOINT, outputs_path

APPS = {"reqsys": 8001, "childsys": 8002, "taskapp": 8003}
EMULATOR_PORT = 4566

# LOG_JSON: the apps write JSON log lines at INFO (shared.platform.logs), as in Lambda
LOCAL_ENV = {**emulator_environment(LOCAL_ENDPOINT), "STAGE": "local", "PYTHONUNBUFFERED": "1", "LOG_JSON": "1"}


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not port_open(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"process on port {port} did not start (exit code {process.poll()})")
        time.sleep(0.1)


def seed_demo_data() -> None:
    """Demo accounts in Cognito and daycares in both SQL apps; safe to repeat."""
    from shared.platform.aws import client
    from shared.platform.settings import Settings
    from shared.tools.demo import CLASS_PLACES, DEMO_PASSWORD, DEMO_USERS, NURSERIES

    pool_id = Settings.load("reqsys").cognito_userpool_id
    cognito = client("cognito-idp")
    for email, name, groups, daycare_id in DEMO_USERS:
        attributes = [
            {"Name": "email", "Value": email},
            {"Name": "email_verified", "Value": "true"},
            {"Name": "name", "Value": name},
        ]
        if daycare_id:
            attributes.append({"Name": "custom:daycare_id", "Value": daycare_id})
        try:
            cognito.admin_create_user(
                UserPoolId=pool_id, Username=email, UserAttributes=attributes, MessageAction="SUPPRESS"
            )
        except cognito.exceptions.UsernameExistsException:
            cognito.admin_update_user_attributes(UserPoolId=pool_id, Username=email, UserAttributes=attributes)
        cognito.admin_set_user_password(UserPoolId=pool_id, Username=email, Password=DEMO_PASSWORD, Permanent=True)
        for group in groups:
            cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=email, GroupName=group)

    from shared.platform.db import upgrade_schema

    for name in ("reqsys", "childsys"):
        app = importlib.import_module(name).create_app()
        models = importlib.import_module(f"{name}.models")
        upgrade_schema(app)
        with app.app_context():
            for nursery_id, title, address, area in NURSERIES:
                models.db.session.merge(models.Nursery(nursery_id=nursery_id, name=title, address=address, area=area))
            if name == "childsys":  # places per class, unless staff have set their own
                for nursery_id, places in CLASS_PLACES.items():
                    for age_class, count in enumerate(places):
                        if models.db.session.get(models.ClassCapacity, (nursery_id, age_class)) is None:
                            models.db.session.add(models.ClassCapacity(nursery_id=nursery_id, age_class=age_class,
                                                                       places=count))
            models.db.session.commit()


@dataclass
class Child:
    """A supervised process: how to start it, and what to do once it is back (e.g. provision the emulator)."""

    name: str
    args: list[str]
    log_name: str
    port: int | None = None
    after_restart: Callable[[], None] | None = None
    process: subprocess.Popen | None = None
    restarts: int = 0
    restart_at: float | None = None  # when a crashed child is due to start again (backoff)


class Supervisor:
    """Starts the children, restarts any that stops (saying so), and stops them all on request.

    A child that keeps crashing is restarted after 1, 2, 4... (at most 30) seconds, so a broken one does not
    spin. Only `stop()` (Ctrl-C or SIGTERM in `main`) ends the others.
    """

    def __init__(self, log_dir: Path, out: TextIO = sys.stdout, env: dict[str, str] | None = None):
        self.log_dir, self.out, self.env = log_dir, out, env
        self.children: list[Child] = []
        self.stopping = False

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def start(self, child: Child, wait: bool = True) -> Child:
        log = open(self.log_dir / f"{child.log_name}.log", "a")  # noqa: SIM115 - closed with the process
        # a session of its own: Ctrl-C reaches only this supervisor, which stops the children in order
        child.process = subprocess.Popen(child.args, env=self.env or os.environ.copy(), stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        log.close()  # the child has its own copy
        if child not in self.children:
            self.children.append(child)
        if wait and child.port:
            wait_for_port(child.port, child.process)
        return child

    def check(self) -> list[Child]:
        """One look at the children: a stopped one is scheduled for a restart, a due one restarted."""
        restarted = []
        now = time.monotonic()
        for child in self.children:
            if self.stopping or child.process is None:
                continue
            code = child.process.poll()
            if code is None:
                continue
            if child.restart_at is None:
                delay = min(30.0, 2.0 ** min(child.restarts, 5)) if child.restarts else 0.0
                child.restart_at = now + delay
                self.say(f"! {child.name} stopped (exit code {code}); restarting"
                         + (f" in {delay:.0f} s" if delay else "") + f" - see .local/{child.log_name}.log")
            if now >= child.restart_at:
                child.restarts += 1
                child.restart_at = None
                try:
                    self.start(child)
                    if child.after_restart:
                        child.after_restart()
                except (SystemExit, Exception) as err:  # it did not come up: the next look tries again
                    self.say(f"! {child.name} did not start again: {err}")
                    continue
                self.say(f"  {child.name} restarted (restart {child.restarts})")
                restarted.append(child)
        return restarted

    def stop(self) -> None:
        self.stopping = True
        for child in reversed(self.children):
            if child.process is not None and child.process.poll() is None:
                child.process.terminate()
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.process.kill()


def main() -> int:
    os.environ.update({k: v for k, v in LOCAL_ENV.items() if k not in os.environ or k == "STAGE"})
    LOCAL_DIR.mkdir(exist_ok=True)
    busy = [port for port in (EMULATOR_PORT, *APPS.values()) if port_open(port)]
    if busy:
        print(f"Ports already in use: {busy}. Is `make run` already running?", file=sys.stderr)
        return 1
    for old in LOCAL_DIR.glob("*.log"):  # a fresh log per run; restarts append to it
        old.write_text("")

    supervisor = Supervisor(LOCAL_DIR)

    def provision_and_seed() -> None:
        from shared.tools import provision

        result = provision.apply("local")
        print(f"Provisioned    {len(result.outputs)} outputs -> {outputs_path('local')}")
        seed_demo_data()
        print("Seeded         demo accounts and daycares")

    def emulator_back() -> None:  # the emulator keeps everything in memory: a new one is empty
        print("  the emulator restarted empty: provisioning and seeding again (earlier queues, tables, users and "
              "emails are gone)")
        provision_and_seed()

    signal.signal(signal.SIGTERM, lambda *_: (supervisor.stop(), sys.exit(0)))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even when started in the background
    try:
        supervisor.start(Child("emulator", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                            str(EMULATOR_PORT)], "emulator", EMULATOR_PORT, emulator_back))
        print(f"AWS emulator   {LOCAL_ENDPOINT}")
        provision_and_seed()

        for name, port in APPS.items():
            supervisor.start(Child(name, [sys.executable, "-m", "flask", "--app", name, "run", "--host", "127.0.0.1",
                                          "--port", str(port), "--no-reload"], name, port))
            print(f"{name:<14} http://127.0.0.1:{port}")
        supervisor.start(Child("runner", [sys.executable, "-m", "shared.tools.runner", "--env", "local"], "runner"))
        print("Event runner   running (logs in .local/runner.log)")
        print("\nDemo accounts (password Demo-1234!): parent@example.com, staff@example.com (A00017), "
              "admin@example.com, user@example.com, user2@example.com")
        print("Logs: .local/*.log (JSON lines)    A process that stops is restarted.    Ctrl-C stops everything.")
        while True:
            supervisor.check()
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping...")
        return 0
    finally:
        supervisor.stop()


if __name__ == "__main__":
    sys.exit(main())
