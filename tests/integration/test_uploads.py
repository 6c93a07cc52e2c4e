"""Browser uploads to S3 through presigned POSTs (posted over HTTP to the emulator, as a browser does),
the server's own check of what arrived, and presigned downloads."""

from __future__ import annotations

import io
import uuid
import zipfile

import pytest
import requests

from shared.platform.aws import client
from shared.platform.errors import ValidationFailed
from shared.platform.uploads import UploadPolicy, check_upload, presigned_get, presigned_post, safe_filename
from tests.file_samples import PDF, PNG, POLICY


@pytest.fixture
def bucket(resources):
    return resources["UPLOADS_BUCKET"]


def upload(bucket, content: bytes, content_type: str, filename: str = "proof.pdf", policy=POLICY, **kwargs):
    key = f"test/{uuid.uuid4().hex}"
    post = presigned_post(bucket, key, policy, content_type, filename, **kwargs)
    response = requests.post(post["url"], data=post["fields"], files={"file": (filename, content, content_type)},
                             allow_redirects=False, timeout=10)
    return key, response


def exists(bucket, key) -> bool:
    return client("s3").list_objects_v2(Bucket=bucket, Prefix=key)["KeyCount"] > 0


@pytest.mark.parametrize(("content", "content_type"), [(PNG, "image/png"), (PDF, "application/pdf"),
                                                       ("이름,날짜\n김하늘,2026-01-01\n".encode(), "text/csv")])
def test_an_allowed_file_is_kept_with_its_size_type_and_name(bucket, content, content_type):
    key, response = upload(bucket, content, content_type, filename="../증빙 서류.pdf")
    assert response.status_code == 204
    stored = check_upload(bucket, key, POLICY)
    assert (stored.size, stored.content_type, stored.filename) == (len(content), content_type, "증빙 서류.pdf")
    assert exists(bucket, key)


def test_the_form_post_redirects_the_browser_back_with_the_key(bucket):
    key, response = upload(bucket, PNG, "image/png", redirect="http://127.0.0.1:8003/done?task=1")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("http://127.0.0.1:8003/done?task=1&key=")


@pytest.mark.parametrize(("content", "content_type", "why"), [
    (PNG * 20, "image/png", "between 1 byte"),  # over the limit: the emulator accepts it, the check does not
    (PDF, "image/png", "does not match"),  # a PDF declared as a picture
    (b"MZ\x90\x00" + b"\x00" * 100, "application/pdf", "does not match"),  # an executable declared as a PDF
    (b"a,b\n\x00\x01\x02", "text/csv", "does not match"),  # binary declared as text
])
def test_a_file_that_breaks_the_policy_is_refused_and_removed(bucket, content, content_type, why):
    key, response = upload(bucket, content, content_type)
    assert response.status_code == 204, "the emulator stores it: the server must catch it"
    with pytest.raises(ValidationFailed) as refused:
        check_upload(bucket, key, POLICY)
    assert why in refused.value.fields["file"]
    assert not exists(bucket, key), "a refused upload is deleted"


def test_a_type_outside_the_policy_gets_no_upload_form(bucket):
    with pytest.raises(ValidationFailed) as refused:
        presigned_post(bucket, "test/x", POLICY, "application/x-msdownload", "x.exe")
    assert "content_type" in refused.value.fields


def test_an_upload_that_never_arrived_is_a_clear_error(bucket):
    with pytest.raises(ValidationFailed) as refused:
        check_upload(bucket, f"test/{uuid.uuid4().hex}", POLICY)
    assert "did not arrive" in refused.value.fields["file"]


def test_office_documents_are_recognised_by_content(bucket):
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    policy = UploadPolicy(max_bytes=4096, content_types=frozenset({docx}))
    key, _ = upload(bucket, data.getvalue(), docx, filename="a.docx", policy=policy)
    assert check_upload(bucket, key, policy).content_type == docx


def test_download_link_serves_the_file_under_its_name(bucket):
    key, _ = upload(bucket, PDF, "application/pdf")
    response = requests.get(presigned_get(bucket, key, "재직 증명서.pdf"), timeout=10)
    assert response.status_code == 200 and response.content == PDF
    assert "filename*=UTF-8''%EC%9E%AC%EC%A7%81" in response.headers["Content-Disposition"]


@pytest.mark.parametrize(("name", "safe"), [("../../etc/passwd", "passwd"), ('a"b\r\n.pdf', "ab.pdf"),
                                            ("C:\\Users\\me\\x.png", "x.png"), ("", "file"), ("...", "file")])
def test_file_names_lose_paths_and_control_characters(name, safe):
    assert safe_filename(name) == safe
