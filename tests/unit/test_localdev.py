"""`make run` supervises: a child process that stops is restarted and the terminal says so; only stop() (Ctrl-C)
ends them all."""

from __future__ import annotations

import io
import sys
import time

from shared.tools.localdev import Child, Supervisor


def look_until(supervisor: Supervisor, done, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "the supervisor did not get there in time"
        supervisor.check()
        time.sleep(0.05)


def test_a_crashed_child_is_restarted_and_said_so_and_stop_ends_everything(tmp_path):
    out = io.StringIO()
    supervisor = Supervisor(tmp_path, out=out)
    came_back = []
    short = supervisor.start(Child("childsys", [sys.executable, "-c", "print('up'); raise SystemExit(3)"], "childsys",
                                   after_restart=lambda: came_back.append(1)))
    steady = supervisor.start(Child("runner", [sys.executable, "-c", "import time; time.sleep(60)"], "runner"))
    try:
        look_until(supervisor, lambda: short.restarts >= 2)
        text = out.getvalue()
        assert "! childsys stopped (exit code 3); restarting" in text
        assert "childsys restarted (restart 1)" in text and "childsys restarted (restart 2)" in text
        assert "in 2 s" in text, "a child that keeps crashing waits longer each time"
        assert came_back == [1, 1]
        assert steady.process.poll() is None and steady.restarts == 0, "the others keep running"
        assert (tmp_path / "childsys.log").read_text().count("up") >= 2, "its log keeps every run"
    finally:
        supervisor.stop()
    assert steady.process.poll() is not None and short.process.poll() is not None
    restarts = short.restarts
    supervisor.check()
    assert short.restarts == restarts, "nothing is restarted once stopping"


def test_a_killed_child_is_restarted(tmp_path):
    out = io.StringIO()
    supervisor = Supervisor(tmp_path, out=out)
    child = supervisor.start(Child("reqsys", [sys.executable, "-c", "import time; time.sleep(60)"], "reqsys"))
    first = child.process.pid
    try:
        child.process.kill()
        look_until(supervisor, lambda: child.restarts == 1)
        assert child.process.pid != first and child.process.poll() is None
        assert "! reqsys stopped (exit code -9); restarting" in out.getvalue()
    finally:
        supervisor.stop()
