"""Task attachments: upload straight to S3 (JSON and the page's form with S3's redirect back), the
server's check (oversized or forbidden files refused and removed), downloads only for permitted users,
and deleting a task deleting its files."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests

from shared.platform.aws import client
from taskapp import files
from tests.conftest import csrf_token_in
from tests.taskapp_helpers import PDF, PNG, new_task, post_page_form, post_to_s3


def s3_keys(resources, prefix: str) -> list[str]:
    listed = client("s3").list_objects_v2(Bucket=resources["TASK_FILES_BUCKET"], Prefix=prefix)
    return [obj["Key"] for obj in listed.get("Contents", [])]


def attach(api, user, task_id, content=PDF, content_type="application/pdf", filename="회의록.pdf"):
    """The JSON flow: ask for an upload, POST the file to S3, complete it; (completion response, key)."""
    started = api.post(f"/api/tasks/{task_id}/attachments", json={"filename": filename, "content_type": content_type},
                       headers=user.headers)
    assert started.status_code == 201, started.get_json()
    upload = started.get_json()
    assert post_to_s3(upload, content, content_type, filename).status_code == 204
    done = api.post(f"/api/tasks/{task_id}/attachments/complete", json={"key": upload["key"]}, headers=user.headers)
    return done, upload["key"]


def test_upload_list_and_download_through_the_api(api, alice, bob, task_user, resources):
    carol = task_user("캐럴")
    task = new_task(api, alice, assignee=carol.email)
    done, key = attach(api, alice, task["task_id"])
    assert done.status_code == 201, done.get_json()
    attachment = done.get_json()
    assert key.startswith(f"tasks/{task['task_id']}/{alice.sub}/") and "회의록" not in key
    assert (attachment["filename"], attachment["size"], attachment["content_type"]) == ("회의록.pdf", len(PDF),
                                                                                        "application/pdf")
    again = api.post(f"/api/tasks/{task['task_id']}/attachments/complete", json={"key": key}, headers=alice.headers)
    assert again.status_code == 201 and again.get_json()["file_id"] == attachment["file_id"]  # recorded once
    listed = api.get(f"/api/tasks/{task['task_id']}/attachments", headers=alice.headers).get_json()["attachments"]
    assert [a["file_id"] for a in listed] == [attachment["file_id"]]

    link = urlsplit(listed[0]["download_url"]).path
    for user in (alice, carol):  # the owner and the assignee
        response = api.get(link, headers=user.headers)
        assert response.status_code == 302
        fetched = requests.get(response.headers["Location"], timeout=10)
        assert fetched.status_code == 200 and fetched.content == PDF
        assert "filename*=UTF-8''%ED%9A%8C%EC%9D%98%EB%A1%9D.pdf" in fetched.headers["Content-Disposition"]

    # user B: 404 on the task's file URLs, as on the task itself
    assert api.get(link, headers=bob.headers).status_code == 404
    assert api.get(f"/api/tasks/{task['task_id']}/attachments", headers=bob.headers).status_code == 404
    assert api.post(f"/api/tasks/{task['task_id']}/attachments", json={"filename": "x.pdf",
                    "content_type": "application/pdf"}, headers=bob.headers).status_code == 404
    assert api.delete(link, headers=bob.headers).status_code == 404
    # the assignee may not remove the owner's file; the owner may
    assert api.delete(link, headers=carol.headers).status_code == 403
    assert api.delete(link, headers=alice.headers).status_code == 204
    assert s3_keys(resources, key) == []
    assert api.get(link, headers=alice.headers).status_code == 404


@pytest.mark.parametrize(("content", "declared", "why"), [
    (PNG + b"\x00" * files.MAX_BYTES, "image/png", "between 1 byte"),  # over 10 MB: S3 would refuse, the emulator not
    (PDF, "image/png", "does not match"),  # a PDF declared as a picture
    (b"MZ\x90\x00" + b"\x00" * 200, "application/pdf", "does not match"),  # a program declared as a PDF
])
def test_an_oversized_or_forbidden_file_is_refused_and_removed(api, alice, resources, content, declared, why):
    task = new_task(api, alice)
    done, key = attach(api, alice, task["task_id"], content, declared, "x.bin")
    assert done.status_code == 400 and why in done.get_json()["error"]["fields"]["file"]
    assert s3_keys(resources, key) == [], "the refused object is deleted"
    assert api.get(f"/api/tasks/{task['task_id']}/attachments", headers=alice.headers).json["attachments"] == []


def test_bad_attachment_requests_are_400_naming_the_field(api, alice, bob):
    task = new_task(api, alice)
    url = f"/api/tasks/{task['task_id']}/attachments"
    refused = api.post(url, json={"filename": "run.exe", "content_type": "application/x-msdownload"},
                       headers=alice.headers)
    assert refused.status_code == 400 and "content_type" in refused.get_json()["error"]["fields"]
    missing = api.post(url, json={"size": 3}, headers=alice.headers)
    assert missing.status_code == 400 and set(missing.get_json()["error"]["fields"]) == {"filename", "content_type",
                                                                                         "size"}
    assert api.post(url, data="nope", headers=alice.headers).status_code == 400
    # a key that is not the caller's upload for this task
    other = new_task(api, alice)
    for key in (f"tasks/{other['task_id']}/{alice.sub}/{'a' * 32}", f"tasks/{task['task_id']}/{bob.sub}/{'a' * 32}",
                "../../etc/passwd", ""):
        response = api.post(f"{url}/complete", json={"key": key}, headers=alice.headers)
        assert response.status_code == 400 and "key" in response.get_json()["error"]["fields"], key
    never = api.post(f"{url}/complete", json={"key": f"tasks/{task['task_id']}/{alice.sub}/{'b' * 32}"},
                     headers=alice.headers)
    assert never.status_code == 400 and "did not arrive" in never.get_json()["error"]["fields"]["file"]


def _page_upload(web, task_id, content, content_type, filename):
    return post_page_form(web, web.get(f"/tasks/{task_id}").get_data(as_text=True), content, content_type, filename)


def test_the_page_uploads_through_s3_and_lists_the_file(client_for, api, alice, bob, sign_in, resources):
    task = new_task(api, alice, title="사진 첨부")
    web = client_for("taskapp")
    sign_in(web, alice.email)
    arrived = _page_upload(web, task["task_id"], PNG, "image/png", "사진.png")
    assert arrived.status_code == 302 and arrived.headers["Location"].endswith(f"/tasks/{task['task_id']}#files")
    page = web.get(f"/tasks/{task['task_id']}").get_data(as_text=True)
    assert "사진.png" in page
    [attachment] = api.get(f"/api/tasks/{task['task_id']}/attachments", headers=alice.headers).json["attachments"]
    download = web.get(f"/tasks/{task['task_id']}/files/{attachment['file_id']}")
    assert download.status_code == 302 and requests.get(download.headers["Location"], timeout=10).content == PNG

    refused = _page_upload(web, task["task_id"], PDF, "image/png", "fake.png")
    assert refused.status_code == 400 and 'id="attachment-error"' in refused.get_data(as_text=True)
    assert len(s3_keys(resources, f"tasks/{task['task_id']}/")) == 1

    other = client_for("taskapp")
    sign_in(other, bob.email)
    assert other.get(f"/tasks/{task['task_id']}/files/{attachment['file_id']}").status_code == 404
    assert other.get(f"/tasks/{task['task_id']}/attachments/uploaded?key=x").status_code == 404


def test_deleting_a_task_deletes_its_files(api, alice, resources, client_for, sign_in):
    task = new_task(api, alice)
    for name in ("a.pdf", "b.pdf"):
        assert attach(api, alice, task["task_id"], filename=name)[0].status_code == 201
    # an upload that never completed lies under the task's prefix too
    started = api.post(f"/api/tasks/{task['task_id']}/attachments", json={"filename": "c.pdf",
                       "content_type": "application/pdf"}, headers=alice.headers).get_json()
    post_to_s3(started, PDF, "application/pdf")
    assert len(s3_keys(resources, f"tasks/{task['task_id']}/")) == 3

    web = client_for("taskapp")
    sign_in(web, alice.email)
    page = web.get(f"/tasks/{task['task_id']}/delete").get_data(as_text=True)
    assert web.post(f"/tasks/{task['task_id']}/delete", data={"csrf_token": csrf_token_in(page)}).status_code == 302
    assert s3_keys(resources, f"tasks/{task['task_id']}/") == []
    left = client("dynamodb").query(TableName=resources["TASKS_TABLE"], KeyConditionExpression="pk = :pk",
                                    ExpressionAttributeValues={":pk": {"S": f"TASK#{task['task_id']}"}})
    assert left["Items"] == [], "the task and its files' records are gone"
