"""Browser uploads straight to S3, checked by the server afterwards, and short-lived downloads.

No upload passes through Lambda: the page posts the file to S3 with a presigned POST whose
policy fixes the key, the declared type and the size range. S3 enforces that policy; the
emulator does not (DESIGN.md section 4), so after the upload the server checks the object
itself: its size, its declared type, and what its first bytes say it is. An object that
fails is deleted at once and the caller gets a 400 naming the `file` field.

Downloads are presigned GETs that expire within minutes, handed out only after the caller's
own permission check. Keys are built by the caller (scoped to the owner) and never contain
the user's file name, which travels as metadata and comes back as the download's name.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote, unquote

from shared.platform.aws import client
from shared.platform.errors import ValidationFailed

SNIFF_BYTES = 8192  # enough for filetype's signatures (it needs 261) and for a text check
TEXT_TYPES = frozenset({"text/plain", "text/csv"})  # no magic number: checked as UTF-8 text instead
# the `file` field's messages, for pages that word them their own way (the size one has numbers in it)
NOT_ARRIVED = "The upload did not arrive; please try again"
TYPE_NOT_ALLOWED = "This type of file is not allowed"
CONTENT_MISMATCH = "The file's content does not match its type"
# names browsers and filetype use for the same format
ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "application/x-pdf": "application/pdf"}


@dataclass(frozen=True)
class UploadPolicy:
    """What one kind of upload may be: at most `max_bytes`, one of `content_types`."""

    max_bytes: int
    content_types: frozenset[str]

    def accepts_type(self, content_type: str) -> bool:
        return _canonical(content_type) in {_canonical(t) for t in self.content_types}


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    content_type: str
    filename: str


def _canonical(content_type: str) -> str:
    base = content_type.split(";", 1)[0].strip().lower()
    return ALIASES.get(base, base)


def safe_filename(name: str, limit: int = 120) -> str:
    """A file name fit for metadata and a download header: no path, no control characters."""
    name = unicodedata.normalize("NFC", name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f\"]+", "", name).strip(" .")
    return name[-limit:] or "file"


def presigned_post(bucket: str, key: str, policy: UploadPolicy, content_type: str | None, filename: str | None,
                   redirect: str | None = None, expires: int = 600) -> dict:
    """The URL and form fields for the browser to POST one file to `key`.

    400 naming `content_type` when the type is not allowed. With `redirect`, S3 answers the
    browser's form post with a 303 to it (adding `bucket` and `key`), so a plain HTML form works
    without CORS. A page that signs the form before the user picks a file passes None for the
    type and name: the form then carries empty `Content-Type` and `x-amz-meta-filename` fields
    that the page fills from the chosen file (static/uploads.js), and the policy lets them vary;
    check_upload judges what arrived either way.
    """
    if content_type is not None and not policy.accepts_type(content_type):
        raise ValidationFailed({"content_type": TYPE_NOT_ALLOWED})
    name = quote(safe_filename(filename)) if filename is not None else ""
    fields = {"Content-Type": content_type or "", "x-amz-meta-filename": name}
    conditions: list = [
        {"Content-Type": content_type} if content_type is not None else ["starts-with", "$Content-Type", ""],
        {"x-amz-meta-filename": name} if filename is not None else ["starts-with", "$x-amz-meta-filename", ""],
        ["content-length-range", 1, policy.max_bytes]]
    if redirect:
        fields["success_action_redirect"] = redirect
        conditions.append({"success_action_redirect": redirect})
    return client("s3").generate_presigned_post(bucket, key, Fields=fields, Conditions=conditions,
                                                ExpiresIn=expires)


def check_upload(bucket: str, key: str, policy: UploadPolicy) -> StoredObject:
    """The uploaded object if it is what the policy allows; otherwise it is deleted and 400 is raised."""
    s3 = client("s3")
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError:
        raise ValidationFailed({"file": NOT_ARRIVED}) from None
    size, declared = head["ContentLength"], _canonical(head.get("ContentType", ""))
    problem = None
    if size < 1 or size > policy.max_bytes:
        problem = f"The file must be between 1 byte and {policy.max_bytes // (1024 * 1024) or 1} MB"
    elif not policy.accepts_type(declared):
        problem = TYPE_NOT_ALLOWED
    else:
        first = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{SNIFF_BYTES - 1}")["Body"].read()
        if not _content_matches(declared, first, complete=size <= SNIFF_BYTES):
            problem = CONTENT_MISMATCH
    if problem:
        s3.delete_object(Bucket=bucket, Key=key)
        raise ValidationFailed({"file": problem})
    filename = unquote(head.get("Metadata", {}).get("filename", "")) or key.rsplit("/", 1)[-1]
    return StoredObject(key=key, size=size, content_type=declared, filename=safe_filename(filename))


def take_upload(bucket: str, key: str, policy: UploadPolicy, final_key: str) -> StoredObject:
    """check_upload, on a copy the browser cannot change: the upload is copied to `final_key` (a key
    no presigned POST names) and deleted, and the copy is checked. A presigned POST stays valid for
    minutes, so a file checked where it was uploaded could be replaced with another after the check."""
    s3 = client("s3")
    try:
        s3.copy_object(Bucket=bucket, Key=final_key, CopySource={"Bucket": bucket, "Key": key})
    except s3.exceptions.ClientError:
        raise ValidationFailed({"file": NOT_ARRIVED}) from None
    s3.delete_object(Bucket=bucket, Key=key)
    return check_upload(bucket, final_key, policy)


def _content_matches(declared: str, first: bytes, complete: bool) -> bool:
    if declared in TEXT_TYPES:
        if b"\x00" in first:
            return False
        try:
            first.decode("utf-8")
        except UnicodeDecodeError as err:
            # a multi-byte character cut at the end of the sample is still text
            return not complete and err.start >= len(first) - 3
        return True
    import filetype

    guessed = filetype.guess_mime(first)
    return guessed is not None and _canonical(guessed) == declared


def presigned_get(bucket: str, key: str, filename: str, expires: int = 120) -> str:
    """A download link valid for `expires` seconds; the browser saves it under `filename`."""
    name = safe_filename(filename)
    disposition = f"attachment; filename*=UTF-8''{quote(name)}"
    return client("s3").generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key, "ResponseContentDisposition": disposition},
        ExpiresIn=expires)


def delete_objects(bucket: str, keys: list[str]) -> None:
    """Delete objects (a thousand per call, S3's limit); missing ones are fine."""
    s3 = client("s3")
    for start in range(0, len(keys), 1000):
        chunk = keys[start:start + 1000]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})
