"""The Athena engine against the emulator, whose Athena runs no SQL but returns results seeded through
`/moto-api/static/athena/query-results`: submission with bound parameters, polling until the query
ends, reading every result row, and failures (stopped after the time limit, cancelled, Athena's errors)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from datetime import date

import pytest

from shared.platform.aws import client, region
from taskapp.analytics import export
from taskapp.analytics.engines import AthenaEngine, ReportFailed, athena_literal, failure_reason, positional
from taskapp.analytics.reports import REPORTS, ReportRequest, Scope, parameters, run_report
from tests.analytics_data import BOB, NOW, TASKS, put_tasks


def moto_api(endpoint: str, path: str, body: dict) -> None:
    request = urllib.request.Request(f"{endpoint}/moto-api/{path}", data=json.dumps(body).encode(),  # noqa: S310
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the local emulator
        assert response.status in (200, 201)


@pytest.fixture
def seed_results(aws_endpoint):
    """seed_results(columns, rows): the result the emulator's Athena gives the next query."""
    account = client("sts").get_caller_identity()["Account"]

    def seed(columns: list[tuple[str, str]], rows: list[list[str | None]]) -> None:
        def cells(values):
            return {"Data": [{} if v is None else {"VarCharValue": str(v)} for v in values]}

        info = [{"Name": name, "Label": name, "Type": kind, "Nullable": "UNKNOWN"} for name, kind in columns]
        rows_with_header = [cells([name for name, _ in columns])] + [cells(row) for row in rows]
        moto_api(aws_endpoint, "static/athena/query-results", {
            "account_id": account, "region": region(), "results": [{"rows": rows_with_header, "column_info": info}]})

    return seed


@pytest.fixture
def slow_queries(aws_endpoint):
    """slow_queries(polls): each query state lasts `polls` status checks (the emulator's default is instant)."""

    def set_polls(polls: int) -> None:
        moto_api(aws_endpoint, "state-manager/set-transition",
                 {"model_name": "athena::execution", "transition": {"progression": "manual", "times": polls}})

    yield set_polls
    moto_api(aws_endpoint, "state-manager/unset-transition", {"model_name": "athena::execution"})


@pytest.fixture
def observed():
    """The states every GetQueryExecution answered, seen on the real client (a botocore event hook)."""
    states: list[str] = []
    athena = client("athena")

    def record(parsed, **_kwargs):
        states.append(parsed["QueryExecution"]["Status"]["State"])

    athena.meta.events.register("after-call.athena.GetQueryExecution", record)
    yield states
    athena.meta.events.unregister("after-call.athena.GetQueryExecution", record)


@pytest.fixture
def engine(resources):
    return AthenaEngine(resources["GLUE_DATABASE"], resources["ATHENA_WORKGROUP"],
                        f"s3://{resources['ANALYTICS_BUCKET']}/athena-results/", first_wait=0.01, max_wait=0.05)


def execution(query_id: str) -> dict:
    return client("athena").get_query_execution(QueryExecutionId=query_id)["QueryExecution"]


def latest_query(workgroup: str) -> dict:
    ids = client("athena").list_query_executions(WorkGroup=workgroup)["QueryExecutionIds"]
    return execution(ids[-1])


def test_a_query_is_submitted_with_bound_parameters_and_polled_until_it_ends(engine, seed_results, slow_queries,
                                                                             observed):
    seed_results([("assignee", "varchar"), ("todo", "bigint"), ("in_progress", "bigint"), ("overdue", "bigint"),
                  ("open_tasks", "bigint")], [["alice@example.com", "3", "1", "0", "4"], ["bob@example.com", "1", "0",
                                                                                            "1", "1"]])
    slow_queries(2)
    sql = REPORTS["workload"].sql
    params = parameters(ReportRequest(report="workload"), Scope("sub-x"), "2025-03-12", date(2025, 3, 12))
    params["user_sub"] = "sub-o'neil"  # Scope admits no quote; the binding must cope with one all the same

    result = engine.run(sql, params)

    assert result.columns == ["assignee", "todo", "in_progress", "overdue", "open_tasks"]
    assert result.rows == [("alice@example.com", 3, 1, 0, 4), ("bob@example.com", 1, 0, 1, 1)]  # typed
    assert observed == ["QUEUED", "RUNNING", "RUNNING", "SUCCEEDED"]
    sent = latest_query(engine.workgroup)
    _text, order = positional(sql)
    assert sent["ExecutionParameters"] == [athena_literal(params[name]) for name in order]
    assert "'sub-o''neil'" in sent["ExecutionParameters"] and "false" in sent["ExecutionParameters"]
    assert "neil" not in sent["Query"] and ":user_sub" not in sent["Query"]  # bound, never pasted
    assert sent["QueryExecutionContext"]["Database"] == engine.database and sent["WorkGroup"] == engine.workgroup


def test_every_row_of_a_long_result_comes_back(engine, seed_results):
    seed_results([("day", "date"), ("tasks", "bigint"), ("p50_days", "double")],
                 [[f"2025-03-{1 + i % 28:02d}", str(i), "1.5" if i % 2 else None] for i in range(2500)])

    result = engine.run("SELECT 1", {})

    assert len(result.rows) == 2500
    assert result.rows[0] == ("2025-03-01", 0, None) and result.rows[2499] == ("2025-03-08", 2499, 1.5)


def test_a_query_still_running_at_the_time_limit_is_stopped(engine, seed_results, slow_queries):
    slow_queries(10_000)
    engine.timeout = 0.3

    with pytest.raises(ReportFailed, match="took too long"):
        engine.run("SELECT 1", {})

    assert latest_query(engine.workgroup)["Status"]["State"] == "CANCELLED"


def test_a_query_cancelled_elsewhere_fails_the_report(engine, slow_queries):
    slow_queries(10_000)
    athena = client("athena")
    before = set(athena.list_query_executions(WorkGroup=engine.workgroup)["QueryExecutionIds"])
    outcome: dict = {}

    def run():
        try:
            engine.run("SELECT 1", {})
        except ReportFailed as err:
            outcome["error"] = str(err)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 10
    while not (new := set(athena.list_query_executions(WorkGroup=engine.workgroup)["QueryExecutionIds"]) - before):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    athena.stop_query_execution(QueryExecutionId=new.pop())  # as an operator would in the console
    worker.join(10)

    assert outcome == {"error": "The report query was cancelled."}


@pytest.mark.parametrize(("status", "reason"), [
    ({"State": "FAILED", "StateChangeReason": "Query cancelled! Bytes scanned limit was exceeded",
      "AthenaError": {"ErrorCategory": 2, "ErrorType": 1102}}, "more data than the reports workgroup allows"),
    ({"State": "FAILED", "StateChangeReason": "Query exhausted resources at this scale factor",
      "AthenaError": {"ErrorCategory": 1, "ErrorType": 4}}, "more resources than Athena gives one query"),
    ({"State": "FAILED", "AthenaError": {"ErrorCategory": 1, "ErrorType": 206}}, "took too long"),
    ({"State": "FAILED", "AthenaError": {"ErrorCategory": 1, "ErrorType": 100, "Retryable": True}}, "try again"),
    ({"State": "FAILED", "StateChangeReason": "COLUMN_NOT_FOUND: line 3:8: Column 'secret' cannot be resolved",
      "AthenaError": {"ErrorCategory": 2, "ErrorType": 1006}}, "The report query failed in Athena."),
])
def test_athena_failures_become_reasons_without_sql(status, reason):
    said = failure_reason({"Status": status})
    assert reason in said
    assert "secret" not in said and "line" not in said


def test_run_report_on_athena_stores_the_result_as_csv(analytics_env, engine, seed_results):
    put_tasks(analytics_env.table, TASKS)
    export.export(NOW)
    seed_results([("task_id", "varchar"), ("title", "varchar"), ("status", "varchar"), ("priority", "varchar"),
                  ("due_date", "date"), ("days_overdue", "bigint"), ("owner_email", "varchar"),
                  ("assignee_email", "varchar")],
                 [["t4", "세금 계산서 정리", "TODO", "MEDIUM", "2025-03-08", "4", "bob@example.com",
                   "alice@example.com"]])

    outcome = run_report(ReportRequest(report="overdue"), Scope(BOB), "job-1", engine=engine, now=NOW)

    assert outcome.engine == "athena" and outcome.summary == {"overdue": 1, "most_days_overdue": 4}
    assert outcome.parameters["snapshot_dt"] == "2025-03-12" and outcome.parameters["user_sub"] == BOB
    body = client("s3").get_object(Bucket=outcome.bucket, Key=outcome.key)["Body"].read().decode("utf-8-sig")
    assert body.splitlines() == [
        "task_id,title,status,priority,due_date,days_overdue,owner_email,assignee_email",
        "t4,세금 계산서 정리,TODO,MEDIUM,2025-03-08,4,bob@example.com,alice@example.com"]
    sent = latest_query(engine.workgroup)
    assert "'2025-03-12'" in sent["ExecutionParameters"] and f"'{BOB}'" in sent["ExecutionParameters"]
