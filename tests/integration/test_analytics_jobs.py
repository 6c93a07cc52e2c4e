"""Reports as jobs, over the emulator: asking queues a job on SQS; the worker (taskapp.jobs.handler,
driven by the runner as in `make run`) stores the CSV, marks the report ready and notifies its owner;
a failing report shows as failed with its reason and can be retried; nobody else sees a report or its
CSV; bad input is a 400 naming the field (403 for all tasks asked by a non-admin); the pages."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from urllib.parse import urlsplit

import pytest
import requests

from shared.platform.aws import client
from taskapp.analytics import export
from taskapp.analytics.catalog import SNAPSHOTS, local_today
from tests.analytics_data import NOW, TASKS, put_tasks
from tests.conftest import claims_of, csrf_token_in
from tests.taskapp_helpers import new_task, pump


@pytest.fixture
def api(analytics_env, client_for):
    """The JSON client of a taskapp on the test's own tasks table and analytics bucket."""
    return client_for("taskapp")


@pytest.fixture
def admin(make_user, bearer):
    user = make_user(groups=("admins",), name="관리자")
    user.headers = bearer(user.email, app_name="taskapp")
    user.sub = claims_of(user.headers["Authorization"].split()[1])["sub"]
    return user


def report_of(api, user, report_id: str) -> dict:
    response = api.get(f"/api/reports/{report_id}", headers=user.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def finished(api, user, report_id: str):
    return lambda: report_of(api, user, report_id)["status"] in ("ready", "failed")


def ask(api, headers, **body):
    return api.post("/api/reports", json=body, headers=headers)


def test_asking_for_a_report_queues_a_job_on_sqs(api, alice, resources):
    asked = ask(api, alice.headers, report="workload")

    assert asked.status_code == 202, asked.get_json()
    report = asked.get_json()
    assert asked.headers["Location"].endswith(f"/api/reports/{report['report_id']}")
    assert (report["status"], report["report"], report["title"]) == ("queued", "workload", "담당자별 업무량")
    assert [(s["stage"], s["done"]) for s in report["progress"]] == [
        ("queued", True), ("running", False), ("ready", False)]
    assert report["csv_url"] is None and "figures" not in report
    sent = []
    for _ in range(10):  # other tests leave messages in the jobs queue too
        sent += client("sqs").receive_message(QueueUrl=resources["TASK_JOBS_QUEUE_URL"], MaxNumberOfMessages=10,
                                              VisibilityTimeout=0, MessageAttributeNames=["All"]).get("Messages", [])
        if any(json.loads(m["Body"]) == {"job_id": report["report_id"]} for m in sent):
            break
    [message] = [m for m in sent if json.loads(m["Body"]) == {"job_id": report["report_id"]}]
    assert message["MessageAttributes"]["kind"]["StringValue"] == "report"
    # it is one of the user's jobs, and one of their reports
    assert api.get(f"/api/jobs/{report['report_id']}", headers=alice.headers).get_json()["kind"] == "report"
    assert [r["report_id"] for r in api.get("/api/reports", headers=alice.headers).get_json()["reports"]] == [
        report["report_id"]]


def test_the_worker_stores_the_csv_marks_the_report_ready_and_tells_its_owner(api, alice, bob, taskapp_runner,
                                                                           analytics_env):
    yesterday = (local_today() - timedelta(days=1)).isoformat()
    new_task(api, alice, title="보고서 초안", due_date=yesterday)
    new_task(api, alice, title="회의 준비", status="IN_PROGRESS")
    new_task(api, alice, title="밥에게 맡긴 일", assignee=bob.email)
    new_task(api, alice, title="끝난 일", status="DONE")
    new_task(api, bob, title="밥만의 일")  # not alice's: not in her report
    export.export()

    report = ask(api, alice.headers, report="workload").get_json()
    assert pump(taskapp_runner, finished(api, alice, report["report_id"]))

    ready = report_of(api, alice, report["report_id"])
    assert ready["status"] == "ready" and ready["error"] is None and ready["attempts"] == 1, ready
    assert all(stage["done"] and stage["at"] for stage in ready["progress"])
    assert ready["period"]["as_of"] == local_today().isoformat()
    assert ready["figures"]["columns"] == ["assignee", "todo", "in_progress", "overdue", "open_tasks"]
    # alice: two open tasks of her own (one overdue); bob: the one she gave him (his own is not hers)
    assert ready["figures"]["rows"] == [[alice.email, 1, 1, 1, 2], [bob.email, 1, 0, 0, 1]]
    assert ready["summary"] == {"assignees": 2, "open_tasks": 3} and ready["figures"]["truncated"] is False

    # the CSV, stored under the owner's prefix, downloads through a short link for her only
    key = f"reports/{alice.sub}/{report['report_id']}.csv"
    stored = client("s3").get_object(Bucket=analytics_env.bucket, Key=key)["Body"].read()
    link = api.get(urlsplit(ready["csv_url"]).path, headers=alice.headers)
    assert link.status_code == 302
    downloaded = requests.get(link.headers["Location"], timeout=10)
    assert downloaded.content == stored and downloaded.content.startswith(b"\xef\xbb\xbf")
    assert "workload-" in downloaded.headers["Content-Disposition"]
    assert list(csv.reader(io.StringIO(stored.decode("utf-8-sig"))))[1] == [alice.email, "1", "1", "1", "2"]

    # the owner hears that it is ready (in the app), nobody else does
    def told() -> bool:
        notes = api.get("/api/notifications", headers=alice.headers).get_json()["notifications"]
        return any(n["kind"] == "JOB_SUCCEEDED" and n["job_id"] == report["report_id"] for n in notes)

    assert pump(taskapp_runner, told)
    [note] = [n for n in api.get("/api/notifications", headers=alice.headers).get_json()["notifications"]
              if n.get("job_id") == report["report_id"]]
    assert note["title"] == "Workload per assignee"  # stored in English, shown translated
    bobs = api.get("/api/notifications", headers=bob.headers).get_json()["notifications"]
    assert not any(n.get("job_id") == report["report_id"] for n in bobs)


def test_a_failing_report_shows_failed_with_its_reason_and_can_be_retried(api, alice, taskapp_runner,
                                                                        analytics_env, resources):
    new_task(api, alice, title="아직 내보내지 않은 일")
    report = ask(api, alice.headers, report="weekly_throughput").get_json()
    assert pump(taskapp_runner, finished(api, alice, report["report_id"]))

    failed = report_of(api, alice, report["report_id"])
    assert failed["status"] == "failed" and failed["attempts"] == 1, "a failure retrying cannot fix fails at once"
    assert failed["error"].startswith("No task data has been exported yet")
    assert [(s["stage"], s["done"]) for s in failed["progress"]] == [
        ("queued", True), ("running", True), ("failed", True)]
    assert failed["csv_url"] is None
    assert api.get(f"/api/reports/{report['report_id']}/csv", headers=alice.headers).status_code == 404
    assert pump(taskapp_runner, lambda: any(
        n["kind"] == "JOB_FAILED" and n["job_id"] == report["report_id"]
        for n in api.get("/api/notifications", headers=alice.headers).get_json()["notifications"]))

    # the data arrives; the user retries the same report
    export.export()
    retried = api.post(f"/api/reports/{report['report_id']}/retry", headers=alice.headers)
    assert retried.status_code == 202, retried.get_json()
    assert (retried.get_json()["status"], retried.get_json()["error"]) == ("queued", None)
    again = api.post(f"/api/reports/{report['report_id']}/retry", headers=alice.headers)
    assert again.status_code == 409, "only a failed report is retried (a double click queues it once)"
    assert pump(taskapp_runner, finished(api, alice, report["report_id"]))
    ready = report_of(api, alice, report["report_id"])
    assert ready["status"] == "ready" and ready["attempts"] == 1
    assert ready["summary"]["completed"] == 0 and len(ready["figures"]["rows"]) == 13

    # a damaged export: the query fails, with a reason that quotes nothing internal
    client("s3").put_object(Bucket=analytics_env.bucket, Key=SNAPSHOTS.key(date.today() + timedelta(days=1)),
                            Body=b"not parquet")
    broken = ask(api, alice.headers, report="overdue").get_json()
    assert pump(taskapp_runner, finished(api, alice, broken["report_id"]))
    failed = report_of(api, alice, broken["report_id"])
    assert (failed["status"], failed["error"]) == ("failed", "The report could not be computed from the exported data.")


def test_nobody_else_sees_a_report_or_its_csv(api, alice, bob, taskapp_runner, client_for, sign_in):
    new_task(api, alice, title="앨리스의 일")
    export.export()
    report = ask(api, alice.headers, report="overdue").get_json()
    assert pump(taskapp_runner, finished(api, alice, report["report_id"]))
    report_id = report["report_id"]

    for path in (f"/api/reports/{report_id}", f"/api/reports/{report_id}/csv"):
        refused = api.get(path, headers=bob.headers)
        assert refused.status_code == 404 and refused.get_json()["error"]["code"] == "not_found", path
    assert api.post(f"/api/reports/{report_id}/retry", headers=bob.headers).status_code == 404
    assert api.get("/api/reports", headers=bob.headers).get_json()["reports"] == []
    assert api.get(f"/api/reports/{report_id}").status_code == 401
    web = client_for("taskapp")
    sign_in(web, bob.email)
    assert web.get(f"/reports/{report_id}").status_code == 404
    assert web.get(f"/reports/{report_id}/csv").status_code == 404
    assert report_id not in web.get("/reports").get_data(as_text=True)
    # a job that is not a report is not one
    export_job = api.post("/api/exports", headers=alice.headers).get_json()
    assert api.get(f"/api/reports/{export_job['job_id']}", headers=alice.headers).status_code == 404


def test_bad_input_is_a_400_naming_the_field(api, alice, admin):
    today = local_today()
    for body, field in (
        ({"report": "salaries"}, "report"),
        ({}, "report"),
        ({"report": "weekly_throughput", "from_day": "2025-02-30"}, "from_day"),
        ({"report": "weekly_throughput", "from_day": "2025-03-10", "to_day": "2025-03-01"}, "to_day"),
        ({"report": "weekly_throughput", "to_day": (today + timedelta(days=1)).isoformat()}, "to_day"),
        ({"report": "weekly_throughput", "from_day": (today + timedelta(days=1)).isoformat()}, "from_day"),
        ({"report": "cumulative_flow", "from_day": "2020-01-01", "to_day": "2025-01-01"}, "to_day"),
        ({"report": "cumulative_flow", "from_day": (today - timedelta(days=800)).isoformat()}, "from_day"),
        ({"report": "overdue", "user_sub": admin.sub}, "user_sub"),
        ({"report": "overdue", "all_tasks": "sometimes"}, "all_tasks"),
    ):
        response = ask(api, alice.headers, **body)
        assert response.status_code == 400, (body, response.get_json())
        assert field in response.get_json()["error"]["fields"], (body, response.get_json())
    not_json = api.post("/api/reports", data="report=overdue", headers=alice.headers)
    assert not_json.status_code == 400 and not_json.get_json()["error"]["code"] == "malformed_json"
    everyone = ask(api, alice.headers, report="overdue", all_tasks=True)
    assert everyone.status_code == 403 and everyone.get_json()["error"]["code"] == "forbidden"
    assert api.get("/api/reports", headers=alice.headers).get_json()["reports"] == [], "nothing was queued"
    assert ask(api, admin.headers, report="overdue", all_tasks=True).status_code == 202
    for query, field in (("limit=0", "limit"), ("cursor=zzzz", "cursor")):
        response = api.get(f"/api/reports?{query}", headers=alice.headers)
        assert response.status_code == 400 and field in response.get_json()["error"]["fields"], query


def test_an_admins_report_on_all_tasks_gives_the_hand_computed_figures(api, admin, taskapp_runner, analytics_env,
                                                                       client_for, sign_in):
    put_tasks(analytics_env.table, TASKS)  # tests/analytics_data.py: nobody here owns them
    export.export(NOW, all_history=True)
    period = {"from_day": "2025-03-02", "to_day": "2025-03-12"}

    mine = ask(api, admin.headers, report="cumulative_flow", **period).get_json()
    everyone = ask(api, admin.headers, report="cumulative_flow", all_tasks=True, **period).get_json()
    for report in (mine, everyone):
        assert pump(taskapp_runner, finished(api, admin, report["report_id"]))

    assert report_of(api, admin, mine["report_id"])["summary"]["by_status"] == {"TODO": 0, "IN_PROGRESS": 0, "DONE": 0}
    ready = report_of(api, admin, everyone["report_id"])
    assert ready["request"] == {**period, "all_tasks": True}
    assert (ready["period"]["from_day"], ready["period"]["to_day"]) == ("2025-03-02", "2025-03-12")
    by_day: dict[str, dict[str, int]] = {}
    for day, status, tasks in ready["figures"]["rows"]:
        by_day.setdefault(day, {})[status] = tasks
    # the same figures as tests/integration/test_analytics_reports.py worked out by hand
    assert [tuple(by_day[f"2025-03-{d:02d}"].values()) for d in (2, 5, 11)] == [(1, 0, 0), (1, 3, 1), (2, 1, 4)]

    # its page: the stacked areas and, under them, the table of the same figures
    web = client_for("taskapp")
    sign_in(web, admin.email)
    page = web.get(f"/reports/{everyone['report_id']}").get_data(as_text=True)
    assert 'data-status="ready"' in page and 'http-equiv="refresh"' not in page
    assert page.count('<polygon class="area"') == 3 and 'role="img"' in page
    row = page.split("<td data-label", 1)[1].split("</tr>", 1)[0]  # the first day: 2025-03-02
    assert "2025-03-02" in row and [c.split("<", 1)[0] for c in row.split('class="num">')[1:]] == ["1", "0", "0"]


def test_the_report_pages(api, alice, admin, taskapp_runner, client_for, sign_in):
    web = client_for("taskapp")
    sign_in(web, alice.email)
    form = web.get("/reports").get_data(as_text=True)
    assert 'name="all_tasks"' not in form, "only admins are offered everyone's tasks"
    token = csrf_token_in(form)

    bad = web.post("/reports", data={"csrf_token": token, "report": "weekly_throughput", "from_day": "2025-03-10",
                                     "to_day": "2025-03-01"})
    assert bad.status_code == 400
    assert 'id="to_day-error"' in bad.get_data(as_text=True), "the message stands by the field"
    forged = web.post("/reports", data={"csrf_token": token, "report": "overdue", "all_tasks": "y"})
    assert forged.status_code == 403
    assert web.post("/reports", data={"report": "overdue"}).status_code == 400, "no CSRF token, no report"

    new_task(api, alice, title="페이지 보고서의 일", status="DONE")
    export.export()
    asked = web.post("/reports", data={"csrf_token": token, "report": "weekly_throughput"})
    assert asked.status_code == 302
    report_page = asked.headers["Location"]
    queued = web.get(report_page).get_data(as_text=True)
    assert 'data-status="queued"' in queued and 'http-equiv="refresh"' in queued, "the page follows the report"
    report_id = report_page.rstrip("/").rsplit("/", 1)[-1]
    assert pump(taskapp_runner, finished(api, alice, report_id))

    ready = web.get(report_page).get_data(as_text=True)
    assert 'data-status="ready"' in ready and ready.count('<rect class="bar"') == 1, "one week with a completion"
    assert "주간 처리량" in ready and f"/reports/{report_id}/csv" in ready
    assert web.get(f"/reports/{report_id}/csv").status_code == 302
    listing = web.get("/reports").get_data(as_text=True)
    assert f'id="report-{report_id}"' in listing and 'data-status="ready"' in listing
    # the jobs page and the notification lead to the report's page
    assert web.get(f"/jobs/{report_id}").headers["Location"].endswith(f"/reports/{report_id}")

    admin_web = client_for("taskapp")
    sign_in(admin_web, admin.email)
    assert 'name="all_tasks"' in admin_web.get("/reports").get_data(as_text=True)


def test_a_failed_report_page_gives_the_reason_and_a_retry_button(api, alice, taskapp_runner, client_for, sign_in):
    report = ask(api, alice.headers, report="lead_cycle_time").get_json()  # nothing exported yet
    assert pump(taskapp_runner, finished(api, alice, report["report_id"]))
    web = client_for("taskapp")
    sign_in(web, alice.email)
    page = web.get(f"/reports/{report['report_id']}").get_data(as_text=True)
    assert 'data-status="failed"' in page
    assert "아직 내보낸 업무 데이터가 없습니다" in page.split('id="report-error"', 1)[1].split("</p>", 1)[0]

    export.export()
    retried = web.post(f"/reports/{report['report_id']}/retry", data={"csrf_token": csrf_token_in(page)})
    assert retried.status_code == 302
    assert 'data-status="queued"' in web.get(f"/reports/{report['report_id']}").get_data(as_text=True)
    assert pump(taskapp_runner, finished(api, alice, report["report_id"]))
    ready = web.get(f"/reports/{report['report_id']}").get_data(as_text=True)
    assert 'data-status="ready"' in ready and "이 기간에 완료된 업무가 없습니다" in ready


def test_figures_are_read_back_typed_and_cut_at_the_limit(analytics_env):
    from taskapp.analytics.figures import FiguresGone, read_figures

    body = ("\ufefftask_id,title,days_overdue,p50_days\r\n" + 't1,"여러 줄\r\n제목",3,1.5\r\n' +
            "".join(f"t{i},일 {i},{i},\r\n" for i in range(2, 6))).encode()
    client("s3").put_object(Bucket=analytics_env.bucket, Key="reports/x/r.csv", Body=body)

    columns, rows, truncated = read_figures(analytics_env.bucket, "reports/x/r.csv", limit=3)

    assert columns == ["task_id", "title", "days_overdue", "p50_days"] and truncated is True
    assert rows == [["t1", "여러 줄\r\n제목", 3, 1.5], ["t2", "일 2", 2, None], ["t3", "일 3", 3, None]]
    assert read_figures(analytics_env.bucket, "reports/x/r.csv", limit=5)[2] is False
    with pytest.raises(FiguresGone):
        read_figures(analytics_env.bucket, "reports/x/gone.csv")
