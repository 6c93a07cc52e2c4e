"""`make run`: the whole system on this machine.

Starts the AWS emulator (moto server) on :4566, provisions every resource on it,
migrates the SQLite databases under .local/, seeds demo accounts and daycares,
then serves reqsys :8001, childsys :8002, taskapp :8003 and the local event-source
runner. Ctrl-C stops everything.
"""

from __future__ import annotations

import importlib
import os
import signal
import socket
import subprocess
import sys
import time

from shared.platform.aws import emulator_environment
from shared.platform.settings import LOCAL_DIR, LOCAL_ENDPOINT, outputs_path

APPS = {"reqsys": 8001, "childsys": 8002, "taskapp": 8003}
EMULATOR_PORT = 4566

LOCAL_ENV = {**emulator_environment(LOCAL_ENDPOINT), "STAGE": "local", "PYTHONUNBUFFERED": "1"}


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


def main() -> int:
    os.environ.update({k: v for k, v in LOCAL_ENV.items() if k not in os.environ or k == "STAGE"})
    LOCAL_DIR.mkdir(exist_ok=True)
    busy = [port for port in (EMULATOR_PORT, *APPS.values()) if port_open(port)]
    if busy:
        print(f"Ports already in use: {busy}. Is `make run` already running?", file=sys.stderr)
        return 1

    processes: list[subprocess.Popen] = []

    def start(args: list[str], log_name: str) -> subprocess.Popen:
        log = open(LOCAL_DIR / f"{log_name}.log", "w")  # noqa: SIM115 - closed with the process
        # a session of its own: Ctrl-C reaches only this supervisor, which stops the children in order
        process = subprocess.Popen(args, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        processes.append(process)
        return process

    def stop(*_args) -> None:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even when started in the background
    try:
        emulator = start([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(EMULATOR_PORT)], "emulator")
        wait_for_port(EMULATOR_PORT, emulator)
        print(f"AWS emulator   {LOCAL_ENDPOINT}")

        from shared.tools import provision

        result = provision.apply("local")
        print(f"Provisioned    {len(result.outputs)} outputs -> {outputs_path('local')}")
        seed_demo_data()
        print("Seeded         demo accounts and daycares")

        for name, port in APPS.items():
            process = start([sys.executable, "-m", "flask", "--app", name, "run", "--host", "127.0.0.1",
                             "--port", str(port), "--no-reload"], name)
            wait_for_port(port, process)
            print(f"{name:<14} http://127.0.0.1:{port}")
        start([sys.executable, "-m", "shared.tools.runner", "--env", "local"], "runner")
        print("Event runner   running (logs in .local/runner.log)")
        print("\nDemo accounts (password Demo-1234!): parent@example.com, staff@example.com (A00017), "
              "admin@example.com, user@example.com, user2@example.com")
        print("Logs: .local/*.log    Ctrl-C stops everything.")
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        failed = [p.args for p in processes if p.poll() is not None]
        print(f"A process stopped: {failed}. Stopping the rest; see .local/*.log", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping...")
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
