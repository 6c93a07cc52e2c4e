"""Reports on the local engine (DuckDB over the export in the emulator's S3), through `run_report`:
each figure equals the one worked out by hand from tests/analytics_data.py; scopes; failures;
and every report's SQL is valid Athena (Trino) SQL."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import date

import pytest
import sqlglot
from sqlglot import exp

from shared.platform.auth import Identity
from shared.platform.aws import client
from shared.platform.errors import Forbidden, ValidationFailed
from taskapp.analytics import export
from taskapp.analytics.catalog import SNAPSHOTS
from taskapp.analytics.engines import AthenaEngine, EmulatorEngine, ReportFailed, engine_for, positional
from taskapp.analytics.reports import REPORTS, ReportRequest, Scope, run_report
from taskapp.services import parse
from tests.analytics_data import ALICE, BOB, CAROL, NOW, TASKS, put_tasks, task

ALL = Scope(ALICE, all_tasks=True)


@pytest.fixture
def exported(analytics_env):
    put_tasks(analytics_env.table, TASKS)
    export.export(NOW, all_history=True)
    return analytics_env


def report(name: str, scope: Scope = ALL, **window):
    request = ReportRequest(report=name, **window)
    return run_report(request, scope, f"r-{name.replace('_', '-')}", now=NOW)


def rows(outcome) -> list[list[str]]:
    body = client("s3").get_object(Bucket=outcome.bucket, Key=outcome.key)["Body"].read()
    assert body.startswith(b"\xef\xbb\xbf")  # a BOM, for spreadsheet programs
    table = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert table[0] == outcome.columns
    return table[1:]


MARCH = {"from_day": date(2025, 3, 2), "to_day": date(2025, 3, 12)}


def test_cumulative_flow(exported):
    outcome = report("cumulative_flow", **MARCH)

    by_day = {}
    for day, status, tasks in rows(outcome):
        by_day.setdefault(day, {})[status] = int(tasks)
    # (TODO, IN_PROGRESS, DONE) at the end of each local day, worked out from each task's history
    expected = {
        "02": (1, 0, 0), "03": (2, 0, 1), "04": (1, 1, 2), "05": (1, 3, 1), "06": (2, 2, 2), "07": (1, 3, 2),
        "08": (1, 3, 2), "09": (1, 3, 2), "10": (2, 2, 3), "11": (2, 1, 4), "12": (2, 1, 4),
    }
    assert {day: (c["TODO"], c["IN_PROGRESS"], c["DONE"]) for day, c in by_day.items()} == {
        f"2025-03-{d}": counts for d, counts in expected.items()}
    assert outcome.summary == {"days": 11, "last_day": "2025-03-12",
                               "by_status": {"TODO": 2, "IN_PROGRESS": 1, "DONE": 4}}
    assert outcome.engine == "duckdb" and outcome.key == f"reports/{ALICE}/r-cumulative-flow.csv"


def test_cumulative_flow_leaves_out_deleted_tasks(exported):
    extra = task("t8", ALICE, [("2025-03-02T01:00:00.000000Z", "TODO")])
    put_tasks(exported.table, [extra])
    export.export(NOW, all_history=True)
    assert report("cumulative_flow", **MARCH).summary["by_status"]["TODO"] == 3
    client("dynamodb").delete_item(TableName=exported.table, Key={"pk": {"S": "TASK#t8"}, "sk": {"S": "TASK"}})
    export.export(NOW)  # the 2nd's events still list t8; the snapshot no longer does

    assert [r for r in rows(report("cumulative_flow", **MARCH)) if r[0] == "2025-03-02"] == [
        ["2025-03-02", "TODO", "1"], ["2025-03-02", "IN_PROGRESS", "0"], ["2025-03-02", "DONE", "0"]]


def test_weekly_throughput(exported):
    outcome = report("weekly_throughput", from_day=date(2025, 3, 1), to_day=date(2025, 3, 12))

    # weeks from Monday; t1 (6th) and t3 (4th) in the week of the 3rd, t2 (10th) and t7 (11th) in the next
    assert rows(outcome) == [["2025-02-24", "0"], ["2025-03-03", "2"], ["2025-03-10", "2"]]
    assert outcome.summary == {"weeks": 3, "completed": 4, "per_week": 1.3}


def test_weekly_throughput_defaults_to_twelve_weeks_ending_today(exported):
    outcome = report("weekly_throughput")
    assert outcome.parameters["from_day"] == "2024-12-19" and outcome.parameters["to_day"] == "2025-03-12"
    assert len(rows(outcome)) == 13 and outcome.summary["completed"] == 4


def test_lead_and_cycle_time_percentiles(exported):
    outcome = report("lead_cycle_time", from_day=date(2025, 3, 1), to_day=date(2025, 3, 12))

    # lead: 0.5, 3, 7, 9 days; cycle: 2, 5, 6 (t3 never was in progress). Nearest rank: p50 of 4 is the 2nd.
    assert rows(outcome) == [["lead_time", "4", "3.0", "9.0", "9.0"], ["cycle_time", "3", "5.0", "6.0", "6.0"]]
    assert outcome.summary["lead_time"] == {"tasks": 4, "p50_days": 3.0, "p85_days": 9.0, "p95_days": 9.0}


def test_lead_time_counts_only_tasks_done_in_the_window(exported):
    outcome = report("lead_cycle_time", from_day=date(2025, 3, 7), to_day=date(2025, 3, 12))
    # t2 (lead 7, cycle 5) and t7 (lead 9, cycle 6)
    assert rows(outcome) == [["lead_time", "2", "7.0", "9.0", "9.0"], ["cycle_time", "2", "5.0", "6.0", "6.0"]]


def test_overdue(exported):
    outcome = report("overdue")

    assert rows(outcome) == [
        ["t4", "세금 계산서 정리", "TODO", "MEDIUM", "2025-03-08", "4", "bob@example.com", "alice@example.com"],
        ["t5", "Task t5", "IN_PROGRESS", "MEDIUM", "2025-03-11", "1", "carol@example.com", ""],
    ]  # t1 was due on the 5th but is done; t6 is due on the 20th
    assert outcome.summary == {"overdue": 2, "most_days_overdue": 4}


def test_workload(exported):
    outcome = report("workload")

    # open tasks: t4 (alice, assigned), t5 and t6 (carol's own, nobody assigned)
    assert rows(outcome) == [["carol@example.com", "1", "1", "1", "2"], ["alice@example.com", "1", "0", "1", "1"]]
    assert outcome.summary == {"assignees": 2, "open_tasks": 3}


# --- scope ----------------------------------------------------------------------------------------


def test_a_user_sees_only_the_tasks_they_own_or_are_assigned(exported):
    # bob owns t3 and t4 and is assigned t2
    bob = Scope(BOB)
    assert report("cumulative_flow", bob, **MARCH).summary["by_status"] == {"TODO": 1, "IN_PROGRESS": 0, "DONE": 2}
    assert [r[0] for r in rows(report("overdue", bob))] == ["t4"]
    assert rows(report("workload", bob)) == [["alice@example.com", "1", "0", "1", "1"]]
    lead = report("lead_cycle_time", bob, from_day=date(2025, 3, 1), to_day=date(2025, 3, 12))
    assert lead.summary["lead_time"]["tasks"] == 2 and lead.summary["cycle_time"]["tasks"] == 1
    # carol sees only her own two
    assert [r[0] for r in rows(report("overdue", Scope(CAROL)))] == ["t5"]
    assert report("weekly_throughput", Scope(CAROL)).summary["completed"] == 0
    # someone with no tasks sees nothing at all
    nobody = Scope("sub-nobody")
    assert rows(report("overdue", nobody)) == [] and rows(report("workload", nobody)) == []
    assert report("cumulative_flow", nobody, **MARCH).summary["by_status"] == {"TODO": 0, "IN_PROGRESS": 0, "DONE": 0}


def test_only_admins_may_report_on_all_tasks():
    user = Identity("sub-u", "u@example.com", "", (), None, 0)
    admin = replace(user, groups=("admins",))
    with pytest.raises(Forbidden):
        Scope.of(user, all_tasks=True)
    assert Scope.of(user) == Scope("sub-u", False)
    assert Scope.of(admin, all_tasks=True) == Scope("sub-u", True)


def test_each_users_results_are_stored_apart(exported):
    assert report("overdue", Scope(BOB)).key != report("overdue", Scope(CAROL)).key


# --- requests and failures ------------------------------------------------------------------------


def test_bad_requests_name_the_field():
    with pytest.raises(ValidationFailed) as bad:
        parse(ReportRequest, {"report": "salaries"})
    assert "report" in bad.value.fields
    with pytest.raises(ValidationFailed) as backwards:
        parse(ReportRequest, {"report": "overdue", "from_day": "2025-03-10", "to_day": "2025-03-01"})
    assert "to_day" in backwards.value.fields
    with pytest.raises(ValidationFailed) as extra:
        parse(ReportRequest, {"report": "overdue", "user_sub": "someone-else"})
    assert "user_sub" in extra.value.fields


def test_no_export_yet_is_a_failure_with_a_reason(analytics_env):
    with pytest.raises(ReportFailed, match="No task data has been exported yet"):
        report("overdue")


def test_a_failing_query_fails_the_report_and_stores_nothing(exported):
    # a damaged export: the latest snapshot partition is not Parquet
    client("s3").put_object(Bucket=exported.bucket, Key=SNAPSHOTS.key("2025-03-13"), Body=b"not parquet")

    with pytest.raises(ReportFailed) as failed:
        report("workload")

    assert str(failed.value) == "The report could not be computed from the exported data."
    assert "parquet" not in str(failed.value).lower()
    listed = client("s3").list_objects_v2(Bucket=exported.bucket, Prefix="reports/").get("Contents", [])
    assert listed == []


def test_the_engine_follows_the_settings(analytics_env, resources):
    assert isinstance(engine_for(analytics_env.settings), EmulatorEngine)
    in_aws = engine_for(replace(analytics_env.settings, endpoint_url=None))
    assert isinstance(in_aws, AthenaEngine) and in_aws.workgroup == resources["ATHENA_WORKGROUP"]
    assert in_aws.database == resources["GLUE_DATABASE"] and in_aws.timeout == 600
    # a report job stops waiting for Athena before Lambda stops the job
    assert engine_for(replace(analytics_env.settings, endpoint_url=None), timeout=25).timeout == 25


# --- the SQL itself -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_every_report_is_valid_athena_sql_with_bound_parameters(name):
    sql = REPORTS[name].sql
    tree = sqlglot.parse_one(sql, read="athena")  # raises on anything Athena (Trino) would not parse
    assert isinstance(tree, exp.Query)
    named = sorted(p.name for p in tree.find_all(exp.Placeholder))
    text, order = positional(sql)
    # what Athena receives: `?` for each parameter, in the order the text names them
    assert sorted(order) == named and text.count("?") == len(named)
    athena = sqlglot.parse_one(text, read="athena")
    assert len(list(athena.find_all(exp.Placeholder))) == len(named)
    assert {"snapshot_dt", "user_sub", "all_tasks"} <= set(named)  # every report is scoped
