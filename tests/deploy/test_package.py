"""The Lambda zips (`make package`) and their check in a clean Python (`make check-package`).

Packaging is slow (a runtime venv, then `zappa package`): one module-scoped fixture packages the two
stages with queue handlers (taskapp, pipeline) once, rendered for the emulator as CI's `make package` does.
"""

from __future__ import annotations

import json
import shutil
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


def test_every_zip_is_under_10_mib_and_the_table_says_so(zips):
    assert set(zips) == set(APPS)
    table, over = package.size_table(zips)
    print(table)
    assert over == []
    for path in zips.values():
        assert path.stat().st_size < 10 * 2**20
        assert path.name in table


def test_zips_leave_out_what_lambda_provides_and_what_only_development_needs(zips):
    for path in zips.values():
        entries = names(path)
        top = {name.split("/")[0] for name in entries}
        # Lambda's own, the test and dev tools, zappa's tooling dependencies, installers
        for absent in ("boto3", "botocore", "s3transfer", "jmespath", "pytest", "_pytest", "moto", "tests",
                       "playwright", "duckdb", "pyarrow", "sqlglot", "troposphere", "placebo", "yaml", "tqdm",
                       "pip", "setuptools", "pkg_resources", "cryptography"):
            assert absent not in top, f"{path.name} carries {absent}"
        assert not [n for n in entries if n.startswith("shared/tools/")], "the operator's tools are not shipped"
        assert not [n for n in entries if "/tests/" in f"/{n}" or "/__pycache__/" in n]
        assert [n for n in entries if ".dist-info/" in n] == ["email_validator-2.4.0.dist-info/METADATA"]
        # what the handler and the apps import
        for present in ("handler.py", "zappa_settings.py", "zappa", "durationpy", "flask", "sqlalchemy",
                        "pydantic_core", "reqsys", "childsys", "taskapp", "shared"):
            assert present in top, f"{path.name} lacks {present}"
        assert sorted(n for n in entries if n.startswith("babel/locale-data/")) == [
            "babel/locale-data/en.dat", "babel/locale-data/ko.dat", "babel/locale-data/root.dat"]


def test_zips_carry_templates_translations_migrations_and_report_sql(zips):
    entries = set(names(zips["taskapp"]))
    for expected in ("shared/platform/translations/ko/LC_MESSAGES/messages.mo",
                     "shared/platform/translations/en/LC_MESSAGES/messages.mo",
                     "shared/platform/templates/base.html", "reqsys/migrations/env.py", "childsys/migrations/env.py",
                     "taskapp/analytics/reports/workload.sql"):
        assert expected in entries, expected
    for app in ("reqsys", "childsys"):
        assert [n for n in entries if n.startswith(f"{app}/migrations/versions/") and n.endswith(".py")
                and not n.endswith("__init__.py")], f"{app} migrations"
        assert [n for n in entries if n.startswith(f"{app}/templates/") and n.endswith(".html")]


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
    assert f"ok   SQS daycare-{STAGE}-task-notifications (1 notice): {{\"batchItemFailures\": []}}" in out
    assert f"ok   SQS daycare-{STAGE}-integrated-events.fifo (1 event): {{\"batchItemFailures\": []}}" in out
    assert "FAIL" not in out


def _without(source: Path, target: Path, drop) -> None:
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if not drop(info.filename):
                dst.writestr(info, src.read(info))


def test_check_fails_on_a_zip_missing_a_module(zips, tmp_path, capsys):
    """The notifications handler's module removed: the SQS batch is not answered (nor the app, which imports it)."""
    broken = tmp_path / "dist"
    broken.mkdir()
    _without(zips["taskapp"], broken / zips["taskapp"].name, lambda name: name == "taskapp/notifications.py")
    assert not package.check(STAGE, broken)
    out = capsys.readouterr().out
    assert f"FAIL SQS daycare-{STAGE}-task-notifications (1 notice): ModuleNotFoundError" in out
    assert "ok  " not in out


def test_check_fails_when_a_runtime_package_is_missing(zips, tmp_path, capsys):
    """email-validator's metadata is kept because pydantic reads it when the app starts: without it, nothing
    answers (the check catches what an import at cold start would break in Lambda)."""
    broken = tmp_path / "dist"
    broken.mkdir()
    shutil.copy(zips["pipeline"], broken)
    _without(zips["taskapp"], broken / zips["taskapp"].name, lambda name: ".dist-info/" in name)
    assert not package.check(STAGE, broken)
    out = capsys.readouterr().out
    assert "FAIL GET /healthz" in out or "FAIL import handler" in out
    assert f"ok   SQS daycare-{STAGE}-integrated-events.fifo" in out  # the good zip next to it still passes
