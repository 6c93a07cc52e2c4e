"""The zips are built by the Lambda runtime's own Python; a machine without one gets Debian's."""

from __future__ import annotations

import subprocess

from shared.tools.deploy import package, stages
from shared.tools.deploy.runtime_python import debian_python, make_venv, runtime_python


def version_of(python) -> str:
    return subprocess.run([str(python), "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_the_runtime_venv_is_of_the_functions_runtime():
    assert version_of(runtime_python(stages.runtime())) == "(3, 13)"
    assert version_of(package.runtime_venv() / "bin" / "python") == "(3, 13)"  # its bytecode is Lambda's


def test_on_a_machine_without_the_runtimes_python_debians_runs_here_with_its_own_libraries(tmp_path):
    python = debian_python("python3.13", tmp_path / "python3.13")
    venv = make_venv(tmp_path / "venv", python)
    run = subprocess.run([str(venv / "bin" / "python"), "-c",
                          "import sys, ssl, sqlite3; print(sys.version_info[:2], sys.prefix)"],
                         capture_output=True, text=True, check=True)
    assert run.stdout.split(")")[0] + ")" == "(3, 13)"
    assert run.stdout.strip().endswith(str(tmp_path / "venv"))  # a venv of its own, the system untouched
    assert (venv / "bin" / "pip").is_file()
