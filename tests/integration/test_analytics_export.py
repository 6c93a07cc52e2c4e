"""The export on the emulator: DynamoDB tasks -> Parquet partitions in S3, idempotent per day;
its schedule in zappa_settings.json; the admin's button; the Glue catalog it is read through."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime

import pyarrow.parquet as pq
import pytest

from shared.platform.aws import client
from shared.platform.settings import ROOT
from shared.tools.runner import Runner, ScheduleSource, load_event_sources
from taskapp.analytics import export
from taskapp.analytics.catalog import EVENTS, SNAPSHOTS, TABLES, local_today
from tests.analytics_data import ALICE, NOW, TASKS, put_tasks, task
from tests.pipeline_helpers import deployed_stages


def objects(bucket: str, prefix: str) -> list[str]:
    return [o["Key"] for o in client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def read(bucket: str, table, day: str) -> list[dict]:
    [key] = objects(bucket, table.partition_prefix(day))
    body = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return pq.read_table(io.BytesIO(body)).to_pylist()


def test_snapshot_and_event_partitions_hold_the_right_rows(analytics_env):
    put_tasks(analytics_env.table, TASKS)

    summary = export.export(NOW)

    assert summary.day == "2025-03-12" and summary.tasks == len(TASKS)
    assert summary.events == {"2025-03-11": 1, "2025-03-12": 0}  # yesterday and today only
    snapshot = {row["task_id"]: row for row in read(analytics_env.bucket, SNAPSHOTS, "2025-03-12")}
    assert sorted(snapshot) == sorted(t["task_id"] for t in TASKS)
    t4 = snapshot["t4"]
    assert t4 == {
        "task_id": "t4", "title": "세금 계산서 정리", "status": "TODO", "priority": "MEDIUM", "labels": ["analytics"],
        "owner_sub": "sub-bob", "owner_email": "bob@example.com", "assignee_sub": ALICE,
        "assignee_email": "alice@example.com", "due_date": date(2025, 3, 8),
        # stored 01:00 UTC, exported as local time (KST)
        "created_at": datetime(2025, 3, 5, 10), "updated_at": datetime(2025, 3, 5, 10), "completed_at": None,
        "version": 1, "exported_at": datetime(2025, 3, 12, 12)}
    assert snapshot["t7"]["completed_at"] == datetime(2025, 3, 11, 10)
    assert "description" not in t4
    [change] = read(analytics_env.bucket, EVENTS, "2025-03-11")
    assert change == {"task_id": "t7", "seq": 3, "from_status": "IN_PROGRESS", "to_status": "DONE",
                      "changed_at": datetime(2025, 3, 11, 10), "changed_by": ALICE}
    assert objects(analytics_env.bucket, EVENTS.partition_prefix("2025-03-12")) == []  # no change today
    assert objects(analytics_env.bucket, EVENTS.partition_prefix("2025-03-10")) == []  # outside the window


def test_all_history_partitions_events_by_local_day(analytics_env):
    put_tasks(analytics_env.table, TASKS)

    summary = export.export(NOW, all_history=True)

    days = export.partition_days(analytics_env.bucket, EVENTS)
    assert days == ["2025-03-02", "2025-03-03", "2025-03-04", "2025-03-05", "2025-03-06", "2025-03-07",
                    "2025-03-10", "2025-03-11"]
    assert sum(summary.events.values()) == sum(len(t["history"]) for t in TASKS)
    # t5 started at 16:00 UTC on the 6th: 01:00 on the 7th in Korea
    [started] = read(analytics_env.bucket, EVENTS, "2025-03-07")
    assert (started["task_id"], started["to_status"], started["changed_at"]) == (
        "t5", "IN_PROGRESS", datetime(2025, 3, 7, 1))
    # t3's creation (10:00 KST) and completion (22:00 KST) are the same local day
    on_4th = [(r["task_id"], r["seq"], r["to_status"]) for r in read(analytics_env.bucket, EVENTS, "2025-03-04")]
    assert sorted(on_4th) == [("t1", 1, "IN_PROGRESS"), ("t3", 0, "TODO"), ("t3", 1, "DONE")]


def test_a_rerun_replaces_the_day_and_never_duplicates_it(analytics_env):
    put_tasks(analytics_env.table, TASKS)
    export.export(NOW, all_history=True)
    # later the same day: t6 is done, t4 is deleted
    later = datetime(2025, 3, 12, 5, tzinfo=UTC)
    done = task("t6", "sub-carol", [("2025-03-10T01:00:00.000000Z", "TODO"), ("2025-03-12T04:00:00.000000Z", "DONE")])
    put_tasks(analytics_env.table, [done])
    client("dynamodb").delete_item(TableName=analytics_env.table, Key={"pk": {"S": "TASK#t4"}, "sk": {"S": "TASK"}})

    export.export(later)
    export.export(later)  # and once more: same result

    snapshot = read(analytics_env.bucket, SNAPSHOTS, "2025-03-12")
    assert len(snapshot) == len(TASKS) - 1
    assert sorted(r["task_id"] for r in snapshot) == sorted(t["task_id"] for t in TASKS if t["task_id"] != "t4")
    assert next(r for r in snapshot if r["task_id"] == "t6")["status"] == "DONE"
    today = read(analytics_env.bucket, EVENTS, "2025-03-12")
    assert [(r["task_id"], r["to_status"]) for r in today] == [("t6", "DONE")]
    for table in TABLES:  # one object per partition, whatever was there before
        for day in export.partition_days(analytics_env.bucket, table):
            assert objects(analytics_env.bucket, table.partition_prefix(day)) == [table.key(day)]


def test_a_day_whose_changes_are_gone_loses_its_partition(analytics_env):
    put_tasks(analytics_env.table, TASKS)
    export.export(NOW, all_history=True)
    stray = EVENTS.partition_prefix("2025-03-10") + "part-0001.parquet"
    client("s3").put_object(Bucket=analytics_env.bucket, Key=stray, Body=b"left over")
    for task_id in ("t2", "t6"):  # the only tasks with changes on the 10th
        client("dynamodb").delete_item(TableName=analytics_env.table,
                                       Key={"pk": {"S": f"TASK#{task_id}"}, "sk": {"S": "TASK"}})

    summary = export.export(NOW, all_history=True)

    assert summary.events["2025-03-10"] == 0
    assert objects(analytics_env.bucket, EVENTS.partition_prefix("2025-03-10")) == []


def test_only_task_items_are_exported(analytics_env):
    put_tasks(analytics_env.table, TASKS[:1])
    # other kinds of items may share the table (single-table design)
    client("dynamodb").put_item(TableName=analytics_env.table, Item={
        "pk": {"S": "TASK#t1"}, "sk": {"S": "ATTACHMENT#1"}, "task_id": {"S": "t1"}, "status": {"S": "x"}})

    assert export.export(NOW).tasks == 1
    assert [r["task_id"] for r in read(analytics_env.bucket, SNAPSHOTS, "2025-03-12")] == ["t1"]


def test_an_empty_table_still_gives_a_snapshot(analytics_env):
    summary = export.export(NOW)
    assert summary.tasks == 0
    assert read(analytics_env.bucket, SNAPSHOTS, "2025-03-12") == []


def test_the_schedule_in_zappa_settings_runs_the_export(analytics_env):
    sources = [s for s in load_event_sources(ROOT / "zappa_settings.json", "local")
               if isinstance(s, ScheduleSource) and s.function == "taskapp.analytics.export.handler"]
    assert [(s.interval, s.lambda_name) for s in sources] == [(3600, "daycare-analytics-local")]
    stages = json.loads((ROOT / "zappa_settings.json").read_text())
    deployed = deployed_stages()
    for env in ("dev", "prod"):  # the same schedule in AWS, in the function that has pyarrow (a layer)
        stage = deployed[f"analytics_{env}"]
        assert {"function": "taskapp.analytics.export.handler", "expression": "rate(1 hour)"} in stage["events"]
        assert any(":layer:AWSSDKPandas-Python313:" in layer for layer in stage["layers"])
        assert stage["apigateway_enabled"] is False
    assert {"pyarrow*", "duckdb*", "sqlglot*"} <= set(stages["base"]["exclude"])  # never in an app's zip
    put_tasks(analytics_env.table, TASKS[:2])

    assert Runner(sources).run_once() == 1

    assert len(read(analytics_env.bucket, SNAPSHOTS, local_today().isoformat())) == 2


def test_provisioning_catalogues_the_exported_tables_with_partition_projection(resources):
    glue = client("glue")
    for table in TABLES:
        described = glue.get_table(DatabaseName=resources["GLUE_DATABASE"], Name=table.name)["Table"]
        assert [c["Name"] for c in described["StorageDescriptor"]["Columns"]] == [c.name for c in table.columns]
        assert described["StorageDescriptor"]["Location"] == f"s3://{resources['ANALYTICS_BUCKET']}/{table.prefix}"
        assert described["PartitionKeys"][0]["Name"] == "dt"
        assert described["Parameters"]["projection.enabled"] == "true"
        assert described["Parameters"]["storage.location.template"].endswith(f"/{table.prefix}dt=${{dt}}/")
    workgroup = client("athena").get_work_group(WorkGroup=resources["ATHENA_WORKGROUP"])["WorkGroup"]
    assert workgroup["Configuration"]["BytesScannedCutoffPerQuery"] == 1024**3
    assert workgroup["Configuration"]["ResultConfiguration"]["OutputLocation"] == (
        f"s3://{resources['ANALYTICS_BUCKET']}/athena-results/")


# --- the admin's button ---------------------------------------------------------------------------


@pytest.fixture
def admin(make_user):
    return make_user(groups=("admins",))


def test_an_admin_exports_now_from_the_page(analytics_env, admin, client_for, sign_in, submit):
    put_tasks(analytics_env.table, TASKS)
    web = client_for("taskapp")
    sign_in(web, admin.email)
    before = web.get("/admin/analytics").get_data(as_text=True)
    assert 'data-latest-snapshot=""' in before and "지금 내보내기" in before  # Korean first

    done = submit(web, "/admin/analytics/export", {}, page="/admin/analytics", follow_redirects=True)

    page = done.get_data(as_text=True)
    assert done.status_code == 200
    today = local_today().isoformat()
    assert f'data-latest-snapshot="{today}"' in page
    assert f"{today} 기준으로 업무 {len(TASKS)}건과 상태 변경 0건을 내보냈습니다." in page
    assert len(read(analytics_env.bucket, SNAPSHOTS, today)) == len(TASKS)


def test_the_export_button_is_for_admins_only(analytics_env, make_user, client_for, sign_in, bearer, admin):
    user = make_user(groups=("employees",))
    web = client_for("taskapp")
    sign_in(web, user.email)
    assert web.get("/admin/analytics").status_code == 403
    api = client_for("taskapp")
    refused = api.post("/api/admin/analytics/export", headers=bearer(user.email, app_name="taskapp"))
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"
    assert export.partition_days(analytics_env.bucket, SNAPSHOTS) == []

    done = api.post("/api/admin/analytics/export", headers=bearer(admin.email, app_name="taskapp"))

    assert done.status_code == 200 and done.get_json()["status"] == "done" and done.get_json()["tasks"] == 0
    assert export.partition_days(analytics_env.bucket, SNAPSHOTS) == [local_today().isoformat()]


def test_a_form_post_without_the_csrf_token_exports_nothing(analytics_env, admin, client_for, sign_in):
    web = client_for("taskapp")
    sign_in(web, admin.email)
    assert web.post("/admin/analytics/export").status_code == 400
    assert export.partition_days(analytics_env.bucket, SNAPSHOTS) == []
