"""Opening a proof document in the staff member's browser.

The proof is served by S3 through a presigned GET (a Lambda response could not carry 5 MB), so the
headers come from the link's parameters: `ResponseContentType` names the checked type (PDF, JPEG or
PNG: nothing a browser runs as a page) and `ResponseContentDisposition` says `inline` with the
parent's file name, so the browser shows it instead of saving it. Any other stored type is offered
as a download of `application/octet-stream`. The caller has checked the staff member may see it.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import current_app
from flask_babel import gettext as _

from shared.platform.aws import client
from shared.platform.errors import NotFound
from shared.platform.uploads import safe_filename

INLINE_TYPES = frozenset({"application/pdf", "image/jpeg", "image/png"})
LINK_SECONDS = 120


def open_link(application, code: str) -> str:
    """A two-minute link that shows the criterion's proof in the browser (404 if there is none)."""
    criterion = application.criterion(code)
    if criterion is None or not criterion.proof_key:
        raise NotFound(_("No proof document has been uploaded for this criterion yet."))
    bucket = current_app.config["SETTINGS"].resource("UPLOADS_BUCKET")
    s3 = client("s3")
    try:
        head = s3.head_object(Bucket=bucket, Key=criterion.proof_key)
    except s3.exceptions.ClientError:
        raise NotFound(_("The proof document is no longer stored.")) from None
    stored = head.get("ContentType", "").split(";", 1)[0].strip().lower()
    stored = "image/jpeg" if stored in ("image/jpg", "image/pjpeg") else stored
    inline = stored in INLINE_TYPES
    name = quote(safe_filename(criterion.proof_name or "proof"))
    return s3.generate_presigned_url("get_object", Params={
        "Bucket": bucket, "Key": criterion.proof_key,
        "ResponseContentType": stored if inline else "application/octet-stream",
        "ResponseContentDisposition": f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{name}",
    }, ExpiresIn=LINK_SECONDS)
