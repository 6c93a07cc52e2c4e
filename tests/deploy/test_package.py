"""The Lambda zips (`make package`) and their check in a clean Python (`make check-package`).

Packaging is slow (a runtime venv, then `zappa package`): one module-scoped fixture packages the two
stages with queue handlers (taskapp, pipeline) once, rendered for the emulator as CI's `make package` does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from shared.tools.deploy import package, stages

STAGE = "pkgtest"
APPS = ("taskapp", "pipeline")


@pytest.fixture(scope="module")
def zips(tmp_path_factory) -> dict[str, Path]:
    from shared.tools import provision

    tmp = tmp_path_factory.mktemp("package")
    with package.emulator(tmp):
        outputs = provision.apply(STAGE).outputs
        rendered = stages.render(STAGE, account_id=stages.LOCAL_ACCOUNT, region="ap-northeast-2",
                                 outputs=outputs, env={})
    settings_file = tmp / "zappa_settings.json"
    settings_file.write_text(json.dumps({f"{app}_{STAGE}": rendered[f"{app}_{STAGE}"] for app in APPS}))
    started = time.monotonic()
    built = package.build(STAGE, settings_file, tmp / "dist")
    print(f"packaged {', '.join(APPS)} in {time.monotonic() - started:.1f} s")
    return built


def names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def test_every_zip_is_under_15_mib_and_the_table_says_so(zips):
    assert set(zips) == set(APPS)
    table, over = package.size_table(zips)
    print(table)
    assert over == []
    for path in zips.values():
        assert path.stat().st_size < 15 * 2**20
        assert path.name in table


def tops(path: Path) -> set[str]:
    return {package._module_top(name.split("/")[0]) for name in names(path)}


def test_each_zip_holds_its_own_functions_imports_and_nothing_lambda_or_development_provides(zips):
    for path in zips.values():
        entries = names(path)
        top = tops(path)
        # Lambda's own, the test and dev tools, zappa's tooling dependencies, installers
        for absent in ("boto3", "botocore", "s3transfer", "jmespath", "pytest", "_pytest", "moto", "tests",
                       "playwright", "duckdb", "pyarrow", "sqlglot", "troposphere", "placebo", "yaml", "tqdm",
                       "pip", "setuptools", "pkg_resources", "cryptography", "snapshot_restore_py"):
            assert absent not in top, f"{path.name} carries {absent}"
        assert not [n for n in entries if n.startswith("shared/tools/")], "the operator's tools are not shipped"
        assert not [n for n in entries if "/tests/" in f"/{n}"]
        assert [n for n in entries if ".dist-info/" in n] == ["email_validator-2.4.0.dist-info/METADATA"]
        for present in ("handler.py", "zappa_settings.py", "zappa", "durationpy", "pydantic_core", "shared"):
            assert present in top, f"{path.name} lacks {present}"
    # taskapp keeps its tasks in DynamoDB: no ORM, no migrations, no MySQL driver, no other app
    assert {"flask", "flask_babel", "jinja2", "taskapp"} <= tops(zips["taskapp"])
    assert not {"sqlalchemy", "flask_sqlalchemy", "alembic", "flask_migrate", "pymysql", "greenlet", "reqsys",
                "childsys"} & tops(zips["taskapp"])
    assert sorted(n for n in names(zips["taskapp"]) if n.startswith("babel/locale-data/")) == [
        "babel/locale-data/en.dat", "babel/locale-data/ko.dat", "babel/locale-data/root.dat"]
    # the pipeline's handlers: pydantic and Jinja2 (the emails), no web framework, no ORM, no app
    assert {"pydantic", "jinja2"} <= tops(zips["pipeline"])
    assert not {"flask", "flask_babel", "babel", "flask_wtf", "wtforms", "flask_cognito", "jose", "sqlalchemy",
                "alembic", "pymysql", "reqsys", "childsys", "taskapp"} & tops(zips["pipeline"])
    assert not [n for n in names(zips["pipeline"]) if n.startswith(("shared/waitlist/", "shared/tools/"))]


def test_zips_carry_templates_translations_and_report_sql(zips):
    entries = set(names(zips["taskapp"]))
    for expected in ("shared/platform/translations/ko/LC_MESSAGES/messages.mo",
                     "shared/platform/translations/en/LC_MESSAGES/messages.mo",
                     "shared/platform/templates/base.html", "taskapp/analytics/reports/workload.sql"):
        assert expected in entries, expected
    assert [n for n in entries if n.startswith("taskapp/templates/") and n.endswith(".html")]
    assert [n for n in names(zips["pipeline"]) if n.startswith("shared/pipeline/templates/")]


def _pyc_flags(data: bytes) -> int:
    return int.from_bytes(data[4:8], "little")


def test_every_module_ships_as_unchecked_hash_bytecode_our_sources_beside_it(zips):
    # the runtime's Python (python3.13) wrote them: its tag and magic number, not the dev venv's
    tag, magic = subprocess.run([str(package.runtime_venv() / "bin" / "python"), "-c",
                                 "import sys, importlib.util; print(sys.implementation.cache_tag, "
                                 "importlib.util.MAGIC_NUMBER.hex())"],
                                capture_output=True, text=True, check=True).stdout.split()
    assert tag == "cpython-313"
    for path in zips.values():
        with zipfile.ZipFile(path) as archive:
            entries = set(archive.namelist())
            ours = [n for n in entries if n.endswith(".py") and n.split("/")[0] in package.PROJECT_PACKAGES]
            assert ours
            for source in ours:
                folder, _, name = source.rpartition("/")
                pyc = f"{folder}/__pycache__/{name[:-3]}.{tag}.pyc"
                assert pyc in entries, f"{path.name}: no bytecode for {source}"
                data = archive.read(pyc)
                assert data[:4] == bytes.fromhex(magic)
                assert _pyc_flags(data) == 0b01, f"{pyc} is not an unchecked-hash .pyc"  # hash, not checked
            # the dependencies: bytecode where the source was, no source
            theirs = [n for n in entries if n.split("/")[0] in ("flask", "pydantic", "jinja2", "zappa")]
            assert not [n for n in theirs if n.endswith(".py")]
            assert "jinja2/environment.pyc" in entries
            assert _pyc_flags(archive.read("jinja2/environment.pyc")) == 0b01


def test_the_wiring_in_each_zip_is_the_rendered_one(zips):
    settings = package.zappa_settings(zips["pipeline"])
    assert settings["APP_MODULE"] == "shared.pipeline" and settings["API_STAGE"] == f"pipeline_{STAGE}"
    mapped = {f for functions in settings["AWS_EVENT_MAPPING"].values() for f in functions}
    assert {"shared.pipeline.ingest.handler", "shared.pipeline.stream.handler", "shared.pipeline.forward.handler",
            "shared.pipeline.email.handler"} <= mapped
    for arn in settings["AWS_EVENT_MAPPING"]:
        assert f":{stages.LOCAL_ACCOUNT}:" in arn and f"daycare-{STAGE}-" in arn
    assert settings["ENVIRONMENT_VARIABLES"]["STAGE"] == STAGE


def test_check_drives_http_and_sqs_through_each_zip(zips, capsys):
    assert package.check(STAGE, next(iter(zips.values())).parent)
    out = capsys.readouterr().out
    assert "ok   GET /healthz: 200" in out and "ok   GET /auth/login: 200" in out
    assert out.count("ok   import closure") == len(APPS)
    assert out.count("ok   bytecode for every module imported: none compiled at import") == len(APPS)
    assert f"ok   SQS daycare-{STAGE}-task-notifications (1 notice): {{\"batchItemFailures\": []}}" in out
    assert f"ok   SQS daycare-{STAGE}-integrated-events.fifo (1 event): {{\"batchItemFailures\": []}}" in out
    assert "FAIL" not in out


def _without(source: Path, target: Path, drop) -> None:
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if not drop(info.filename):
                dst.writestr(info, src.read(info))


def test_check_fails_on_a_zip_missing_a_module(zips, tmp_path, capsys):
    """The notifications handler's module removed: the app, built at import as with SnapStart, does not start,
    so no request or SQS batch is answered."""
    broken = tmp_path / "dist"
    broken.mkdir()
    _without(zips["taskapp"], broken / zips["taskapp"].name, lambda name: name == "taskapp/notifications.py")
    assert not package.check(STAGE, broken)
    out = capsys.readouterr().out
    assert "FAIL import handler: ImportError: cannot import name 'notifications' from 'taskapp'" in out
    assert "ok   GET" not in out and "ok   SQS" not in out


def test_check_fails_when_a_runtime_package_is_missing(zips, tmp_path, capsys):
    """Flask-Babel left out of taskapp's zip: the closure check names it, and nothing answers (the check
    catches what an import at cold start would break in Lambda)."""
    broken = tmp_path / "dist"
    broken.mkdir()
    shutil.copy(zips["pipeline"], broken)
    _without(zips["taskapp"], broken / zips["taskapp"].name, lambda name: name.startswith("flask_babel/"))
    assert not package.check(STAGE, broken)
    out = capsys.readouterr().out
    assert "FAIL import closure: lacks flask_babel, which its function imports" in out
    assert "FAIL GET /healthz" in out or "FAIL import handler" in out
    assert f"ok   SQS daycare-{STAGE}-integrated-events.fifo" in out  # the good zip next to it still passes


def test_check_fails_on_a_zip_carrying_a_package_its_function_never_imports(zips, tmp_path, capsys):
    """SQLAlchemy slipped into the pipeline's zip: the handlers still answer, the closure check does not."""
    broken = tmp_path / "dist"
    broken.mkdir()
    shutil.copy(zips["pipeline"], broken / zips["pipeline"].name)
    with zipfile.ZipFile(broken / zips["pipeline"].name, "a") as archive:
        archive.writestr("sqlalchemy/__init__.pyc", b"")
    assert not package.check(STAGE, broken)
    out = capsys.readouterr().out
    assert "FAIL import closure: carries sqlalchemy, which its function never imports" in out
    assert f"ok   SQS daycare-{STAGE}-integrated-events.fifo (1 event)" in out


def test_the_closure_check_names_a_package_the_function_imports_and_the_zip_lacks(zips, tmp_path):
    broken = tmp_path / zips["pipeline"].name
    _without(zips["pipeline"], broken, lambda name: name.startswith("jinja2/"))
    task = tmp_path / "task"
    with zipfile.ZipFile(broken) as archive:
        archive.extractall(task)
    what, answer, ok = package.check_closure(broken, task)
    assert not ok and "lacks jinja2" in answer


def test_check_fails_when_a_module_would_be_compiled_at_cold_start(zips, tmp_path, capsys):
    """Without its .pyc, the notifications module still answers, but compiled at every cold start: a failure."""
    broken = tmp_path / "dist"
    broken.mkdir()
    _without(zips["taskapp"], broken / zips["taskapp"].name,
             lambda name: name.startswith("taskapp/__pycache__/notifications."))
    assert not package.check(STAGE, broken)
    out = capsys.readouterr().out
    assert f"ok   SQS daycare-{STAGE}-task-notifications (1 notice)" in out
    assert "FAIL bytecode for every module imported: compiled at import: taskapp/notifications.py" in out
