"""Jobs on SQS through the runner: CSV import (bad rows reported, good rows imported, a retried job
creating nothing twice), CSV export with a download for its owner only, a failing job retried and then
dead-lettered, a permanent failure failing at once, and bad input."""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import urlsplit

import pytest
import requests
from pydantic import BaseModel, ConfigDict

from shared.platform.aws import MAX_RECEIVES, client
from shared.platform.errors import Conflict, NotFound
from taskapp import jobs, services
from tests.conftest import csrf_token_in
from tests.taskapp_helpers import new_task, post_page_form, post_to_s3, pump

CSV_WITH_BAD_ROWS = (
    "title,description,status,priority,due_date,labels,assignee,colour\n"
    "회의록 정리,3월,TODO,HIGH,2030-03-14,\"회의, 문서\",,blue\n"  # row 2: good
    ",no title,DONE,LOW,,,,\n"  # row 3: no title
    "마감 지난 일,,LATER,,2030-02-30,,,\n"  # row 4: status and due date wrong
    "\n"  # a blank line: skipped, not an error
    "담당 지정,,진행 중,높음,,,{assignee},\n"  # row 6: good (Korean values, assigned)
    "모르는 사람,,,,,,ghost@example.com,\n"  # row 7: no such user
    "넘치는 행,,,,,,,,extra\n"  # row 8: more values than columns
    "또 담당 지정,,,,,,{assignee},\n"  # row 9: good (assigned)
)


def upload_csv(api, user, text: str, encoding: str = "utf-8") -> dict:
    started = api.post("/api/imports", json={"filename": "tasks.csv", "content_type": "text/csv"},
                       headers=user.headers)
    assert started.status_code == 201, started.get_json()
    upload = started.get_json()
    assert post_to_s3(upload, text.encode(encoding), "text/csv", "tasks.csv").status_code == 204
    response = api.post("/api/imports/complete", json={"key": upload["key"]}, headers=user.headers)
    return response


def job_of(api, user, job_id: str) -> dict:
    return api.get(f"/api/jobs/{job_id}", headers=user.headers).get_json()


def finished(api, user, job_id):
    return lambda: job_of(api, user, job_id)["status"] in ("succeeded", "failed")


def test_an_import_reports_bad_rows_and_imports_the_good_ones(api, alice, bob, taskapp_runner, resources):
    queued = upload_csv(api, alice, CSV_WITH_BAD_ROWS.format(assignee=bob.email))
    assert queued.status_code == 202, queued.get_json()
    job = queued.get_json()
    assert job["status"] == "queued" and job["kind"] == "import_tasks"
    assert queued.headers["Location"].endswith(f"/api/jobs/{job['job_id']}")
    assert pump(taskapp_runner, finished(api, alice, job["job_id"]))

    job = job_of(api, alice, job["job_id"])
    assert job["status"] == "succeeded" and job["attempts"] == 1, job
    result = job["result"]
    assert (result["rows"], result["imported"], result["failed"]) == (7, 3, 4)
    problems = {(e["row"], e["field"]) for e in result["errors"]}
    assert problems == {(1, "colour"), (3, "title"), (4, "status"), (4, "due_date"), (7, "assignee"), (8, "row")}

    tasks = {t["title"]: t for t in api.get("/api/tasks?limit=100", headers=alice.headers).json["tasks"]}
    assert set(tasks) == {"회의록 정리", "담당 지정", "또 담당 지정"}
    assert tasks["회의록 정리"]["labels"] == ["회의", "문서"] and tasks["회의록 정리"]["priority"] == "HIGH"
    assert (tasks["담당 지정"]["status"], tasks["담당 지정"]["priority"]) == ("IN_PROGRESS", "HIGH")
    assert tasks["담당 지정"]["assignee_email"] == bob.email
    listed = client("s3").list_objects_v2(Bucket=resources["TASK_FILES_BUCKET"], Prefix=f"imports/{alice.sub}/")
    assert listed["KeyCount"] == 0, "the imported file is removed"
    # the owner hears that it finished
    assert pump(taskapp_runner, lambda: any(
        n["kind"] == "JOB_SUCCEEDED" and n["job_id"] == job["job_id"]
        for n in api.get("/api/notifications", headers=alice.headers).json["notifications"]))
    # the assignee hears once, not once per row
    assert pump(taskapp_runner, lambda: api.get("/api/notifications", headers=bob.headers).json["unread"] >= 1)
    [assigned] = api.get("/api/notifications", headers=bob.headers).json["notifications"]
    assert (assigned["kind"], assigned["title"], assigned.get("task_id")) == ("ASSIGNED", "담당 지정 (+1)", None)
    # someone else sees nothing of it
    assert api.get(f"/api/jobs/{job['job_id']}", headers=bob.headers).status_code == 404
    assert job["job_id"] not in {j["job_id"] for j in api.get("/api/jobs", headers=bob.headers).json["jobs"]}


def test_a_retried_import_creates_no_row_twice(api, alice, taskapp_runner, monkeypatch):
    rows = "".join(f"일 {i},,,,,,\n" for i in range(6))
    create = services.create_task
    calls = {"n": 0}

    def flaky(*args, **kwargs):  # DynamoDB "fails" once, after three rows
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("throttled")
        return create(*args, **kwargs)

    monkeypatch.setattr(services, "create_task", flaky)
    job = upload_csv(api, alice, "title,description,status,priority,due_date,labels,assignee\n" + rows).get_json()
    assert pump(taskapp_runner, lambda: job_of(api, alice, job["job_id"])["attempts"] >= 1
                and job_of(api, alice, job["job_id"])["status"] == "queued")
    assert "temporary problem" in job_of(api, alice, job["job_id"])["error"]
    assert pump(taskapp_runner, finished(api, alice, job["job_id"]))
    done = job_of(api, alice, job["job_id"])
    assert (done["status"], done["attempts"], done["result"]["imported"]) == ("succeeded", 2, 6)
    titles = [t["title"] for t in api.get("/api/tasks?limit=100", headers=alice.headers).json["tasks"]]
    assert sorted(titles) == [f"일 {i}" for i in range(6)]


class NothingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@pytest.fixture
def failing_kind():
    """A job kind registered for the test: `always` fails for now (retried), `never` fails for good."""

    @jobs.job_kind("test_always_fails", NothingParams, title="Always fails")
    def always(job, params):
        raise ConnectionError("the report database is down")

    @jobs.job_kind("test_bad_input", NothingParams, title="Bad input")
    def never(job, params):
        raise jobs.JobFailed("The input can never work.", details=[{"row": 2, "field": "x", "reason": "no"}])

    yield
    jobs._KINDS.pop("test_always_fails")
    jobs._KINDS.pop("test_bad_input")


def dead_letters(resources) -> list:
    """The job messages in the jobs queue's dead-letter queue (left there: VisibilityTimeout 0)."""
    sqs, found = client("sqs"), []
    for _ in range(5):  # other tests leave dead letters too; look through a few batches
        for message in sqs.receive_message(QueueUrl=resources["TASK_JOBS_DLQ_URL"], MaxNumberOfMessages=10,
                                           VisibilityTimeout=0).get("Messages", []):
            try:
                found.append(json.loads(message["Body"]))
            except ValueError:
                continue
    return found


def test_a_failing_job_is_retried_then_dead_lettered_and_shown_failed(api, alice, taskapp_runner, resources,
                                                                      failing_kind):
    with api.application.app_context():
        job = jobs.enqueue(_identity(alice), "test_always_fails", {})
    attempts = []

    def dead():
        current = job_of(api, alice, job["job_id"])
        if current["attempts"] and (not attempts or attempts[-1] != current["attempts"]):
            attempts.append(current["attempts"])
        return current["status"] == "failed" and {"job_id": job["job_id"]} in dead_letters(resources)

    assert pump(taskapp_runner, dead, passes=60)
    current = job_of(api, alice, job["job_id"])
    assert current["attempts"] == MAX_RECEIVES and current["dead_lettered"] is True
    assert "operator" in current["error"] and "database" not in current["error"], "no internal detail shown"
    assert attempts == list(range(1, MAX_RECEIVES + 1)), "retried by SQS redelivery, one attempt at a time"
    # a redelivered message of a finished job runs nothing
    jobs.handler({"Records": [{"messageId": "m", "body": json.dumps({"job_id": job["job_id"]}),
                               "attributes": {"ApproximateReceiveCount": "1"}, "eventSourceARN": "x"}]}, None)


def test_a_permanent_failure_fails_at_once(api, alice, taskapp_runner, resources, failing_kind):
    with api.application.app_context():
        job = jobs.enqueue(_identity(alice), "test_bad_input", {})
    assert pump(taskapp_runner, finished(api, alice, job["job_id"]))
    current = job_of(api, alice, job["job_id"])
    assert (current["status"], current["attempts"], current["error"]) == ("failed", 1, "The input can never work.")
    assert current["details"] == [{"row": 2, "field": "x", "reason": "no"}]
    assert {"job_id": job["job_id"]} not in dead_letters(resources)

    no_title = upload_csv(api, alice, "name,description\n일,설명\n").get_json()
    assert pump(taskapp_runner, finished(api, alice, no_title["job_id"]))
    failed = job_of(api, alice, no_title["job_id"])
    assert failed["status"] == "failed" and failed["attempts"] == 1 and "title" in failed["error"]
    kept = client("s3").list_objects_v2(Bucket=resources["TASK_FILES_BUCKET"], Prefix=f"imports/{alice.sub}/")
    assert kept["KeyCount"] == 0, "a file that can never be imported is not kept"


def test_only_a_failed_job_of_a_retryable_kind_is_retried_and_jobs_list_by_kind(api, alice, bob, taskapp_runner,
                                                                               failing_kind):
    with api.application.app_context():
        failed = jobs.enqueue(_identity(alice), "test_bad_input", {})
        assert pump(taskapp_runner, finished(api, alice, failed["job_id"]))
        with pytest.raises(Conflict):  # its kind is not retryable: retrying cannot help bad input
            jobs.retry(_identity(alice), failed["job_id"])
        with pytest.raises(NotFound):
            jobs.retry(_identity(bob), failed["job_id"])
        export = jobs.enqueue(_identity(alice), "export_tasks", {})
        assert [j["job_id"] for j in jobs.list_jobs(_identity(alice), kind="export_tasks")[0]] == [export["job_id"]]
        assert [j["job_id"] for j in jobs.list_jobs(_identity(alice))[0]] == [export["job_id"], failed["job_id"]]
        assert jobs.list_jobs(_identity(bob), kind="export_tasks")[0] == []


def test_a_job_knows_how_long_lambda_gives_it(api, alice, taskapp_runner):
    seen = []

    @jobs.job_kind("test_time_left", NothingParams, title="Time left")
    def time_left(job, params):
        seen.append(job.seconds_left())
        return {}

    try:
        with api.application.app_context():
            job = jobs.enqueue(_identity(alice), "test_time_left", {})
        assert pump(taskapp_runner, finished(api, alice, job["job_id"]))
    finally:
        jobs._KINDS.pop("test_time_left")
    # the runner's context, like Lambda's, counts down from the stage's timeout_seconds (30)
    assert len(seen) == 1 and 20 < seen[0] <= 30
    assert jobs.Job("j", "k", _identity(alice), 1).seconds_left() is None  # no Lambda, no limit


def _identity(user):
    from shared.platform.auth import Identity

    return Identity(sub=user.sub, email=user.email, name=user.name, groups=(), daycare_id=None, expires_at=0)


def test_export_gives_its_owner_a_csv_that_imports_back(api, alice, bob, taskapp_runner):
    new_task(api, alice, title="=HYPERLINK(\"http://evil\")", labels=["a", "b"], due_date="2030-01-02")
    new_task(api, bob, title="밥이 맡긴 일", assignee=alice.email)
    new_task(api, bob, title="밥만의 일")
    queued = api.post("/api/exports", headers=alice.headers)
    assert queued.status_code == 202
    job = queued.get_json()
    assert pump(taskapp_runner, finished(api, alice, job["job_id"]))
    done = job_of(api, alice, job["job_id"])
    assert done["status"] == "succeeded" and done["result"]["rows"] == 2 and done["download"] is True
    link = urlsplit(done["download_url"]).path
    assert api.get(link, headers=bob.headers).status_code == 404
    response = api.get(link, headers=alice.headers)
    assert response.status_code == 302
    body = requests.get(response.headers["Location"], timeout=10).content.decode("utf-8")
    assert body.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
    by_title = {row["title"]: row for row in rows}
    assert set(by_title) == {"'=HYPERLINK(\"http://evil\")", "밥이 맡긴 일"}, "a formula is quoted"
    assert by_title["밥이 맡긴 일"]["owner"] == bob.email and by_title["밥이 맡긴 일"]["assignee"] == alice.email
    assert by_title["'=HYPERLINK(\"http://evil\")"]["labels"] == "a, b"

    # the export imports back (its extra columns are ignored)
    again = upload_csv(api, bob, body).get_json()
    assert pump(taskapp_runner, finished(api, bob, again["job_id"]))
    result = job_of(api, bob, again["job_id"])["result"]
    assert (result["imported"], result["failed"], result["errors"]) == (2, 0, [])
    titles = {t["title"] for t in api.get("/api/tasks?limit=100", headers=bob.headers).json["tasks"]}
    assert "=HYPERLINK(\"http://evil\")" in titles


def test_bad_job_input_is_400_naming_the_field(api, alice, bob, resources):
    missing = api.post("/api/imports", json={}, headers=alice.headers)
    assert missing.status_code == 400 and set(missing.get_json()["error"]["fields"]) == {"filename", "content_type"}
    wrong_type = api.post("/api/imports", json={"filename": "a.exe", "content_type": "application/x-msdownload"},
                          headers=alice.headers)
    assert wrong_type.status_code == 400 and "content_type" in wrong_type.get_json()["error"]["fields"]
    for key in ("imports/someone-else/" + "a" * 32, f"tasks/x/{alice.sub}/" + "a" * 32, "../x"):
        response = api.post("/api/imports/complete", json={"key": key}, headers=alice.headers)
        assert response.status_code == 400 and "key" in response.get_json()["error"]["fields"]
    binary = upload_csv(api, alice, "title\n\x00\x01\x02\n")
    assert binary.status_code == 400 and "does not match" in binary.get_json()["error"]["fields"]["file"]
    options = api.post("/api/exports", json={"status": "DONE"}, headers=alice.headers)
    assert options.status_code == 400 and "status" in options.get_json()["error"]["fields"]
    for query, field in (("limit=0", "limit"), ("limit=x", "limit"), ("cursor=zzzz", "cursor"),
                         ("cursor=eyJwayI6MX0", "cursor")):
        response = api.get(f"/api/jobs?{query}", headers=alice.headers)
        assert response.status_code == 400 and field in response.get_json()["error"]["fields"], query
    with api.application.app_context():
        from shared.platform.errors import ValidationFailed

        with pytest.raises(ValidationFailed) as unknown:
            jobs.enqueue(_identity(alice), "make_coffee", {})
        assert "kind" in unknown.value.fields
    # a malformed message is reported failed (SQS retries it, then dead-letters it)
    records = [{"messageId": "a", "body": "{}", "attributes": {}},
               {"messageId": "b", "body": json.dumps({"job_id": "no-such-job"}), "attributes": {}}]
    assert jobs.handler({"Records": records}, None) == {"batchItemFailures": [{"itemIdentifier": "a"},
                                                                              {"itemIdentifier": "b"}]}


def test_the_jobs_page_imports_through_s3_and_exports(client_for, alice, sign_in, taskapp_runner, api):
    web = client_for("taskapp")
    sign_in(web, alice.email)
    page = web.get("/jobs").get_data(as_text=True)
    arrived = post_page_form(web, page, "title\n페이지에서 가져온 일\n".encode(), "text/csv", "tasks.csv")
    assert arrived.status_code == 302 and arrived.headers["Location"].endswith("/jobs")
    [job] = api.get("/api/jobs", headers=alice.headers).json["jobs"]
    busy = web.get("/jobs").get_data(as_text=True)
    assert "data-live-busy" in busy and 'http-equiv="refresh"' not in busy, "the page's script follows the job"
    live = web.get("/jobs/live", headers={"Accept": "application/json"}).get_json()
    assert live["busy"] is True and 'data-status="queued"' in live["html"] and "대기" in live["announce"]
    assert web.get(f"/jobs/{job['job_id']}/live").get_json()["busy"] is True
    assert pump(taskapp_runner, finished(api, alice, job["job_id"]))
    page = web.get("/jobs").get_data(as_text=True)
    row = page.split(f'id="job-{job["job_id"]}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-status="succeeded"' in row and "data-live-busy" not in page
    live = web.get(f"/jobs/{job['job_id']}/live").get_json()
    assert live["busy"] is False and live["status"] == "succeeded" and 'data-status="succeeded"' in live["html"]

    exported = web.post("/jobs/export", data={"csrf_token": csrf_token_in(page)})
    assert exported.status_code == 302
    export = api.get("/api/jobs", headers=alice.headers).json["jobs"][0]
    assert pump(taskapp_runner, finished(api, alice, export["job_id"]))
    download = web.get(f"/jobs/{export['job_id']}/download")
    assert download.status_code == 302
    assert "페이지에서 가져온 일" in requests.get(download.headers["Location"], timeout=10).content.decode("utf-8")
    assert web.get(f"/jobs/{job['job_id']}").status_code == 200


def test_zappa_settings_wire_the_taskapp_handlers():
    from shared.platform.settings import ROOT
    from shared.tools.runner import load_event_sources

    sources = [s for s in load_event_sources(ROOT / "zappa_settings.json", "local")
               if s.lambda_name.endswith("taskapp-local")]
    assert sorted((s.function, s.arn.rsplit(":", 1)[-1], s.batch_size) for s in sources if hasattr(s, "arn")) == [
        ("taskapp.jobs.handler", "daycare-local-task-jobs", 1),
        ("taskapp.notifications.handler", "daycare-local-task-notifications", 10)]
    # the notification outbox's relay (taskapp.notifications.relay)
    assert [(s.function, s.interval) for s in sources if not hasattr(s, "arn")] == [
        ("taskapp.notifications.relay", 60)]
