"""Proof documents for declared priority criteria (재직증명서, 수급자 증명서...).

The parent's browser posts the file straight to the UPLOADS_BUCKET with a presigned POST
(shared.platform.uploads); then the server checks what arrived (size, type, content) and records it on
the criterion, which goes back to PENDING if the daycare had rejected the previous proof. A
PROOF event tells childsys, whose staff open proofs through short-lived links. Keys are scoped to
the parent and the application: proofs/<parent sub>/<request id>/<criterion>/<random>, and the
checked file is kept at that key + ".checked", which no presigned POST can write.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, datetime

from flask import current_app
from pydantic import Field

from reqsys.models import Application, ApplicationCriterion, db
from reqsys.services import (
    ApplicationIds,
    actor,
    get_application,
    own_locked,
    publish_pending,
    stage,
)
from shared.platform.auth import Identity
from shared.platform.clock import naive_utc
from shared.platform.db import retry_on_race
from shared.platform.errors import Conflict, NotFound, ValidationFailed
from shared.platform.events import EventType
from shared.platform.payloads import validate
from shared.platform.uploads import StoredObject, UploadPolicy, delete_objects, presigned_post, take_upload
from shared.waitlist.criteria import CRITERION_CODE, CriterionStatus, configured_criteria
from shared.waitlist.rules import Status

log = logging.getLogger(__name__)

UPLOAD_NAME = re.compile(r"[0-9a-f]{32}")  # what upload_form puts after the prefix (uuid4().hex)
PROOF_POLICY = UploadPolicy(max_bytes=5 * 1024 * 1024,
                            content_types=frozenset({"application/pdf", "image/jpeg", "image/png"}))


class _Target(ApplicationIds):
    """One criterion of one of the parent's applications."""

    criterion: str = Field(pattern=CRITERION_CODE)


class UploadRequest(_Target):
    """What the browser is about to upload."""

    content_type: str = Field(min_length=1, max_length=100)
    filename: str = Field(min_length=1, max_length=200)


class Uploaded(_Target):
    """The key the browser uploaded to."""

    key: str = Field(min_length=1, max_length=300)


def _bucket() -> str:
    return current_app.config["SETTINGS"].resource("UPLOADS_BUCKET")


def _prefix(identity: Identity, application: Application, code: str) -> str:
    return f"proofs/{identity.sub}/{application.request_id}/{code}/"


def _criterion(application: Application, code: str) -> ApplicationCriterion:
    """The declared criterion a proof may be added to (while the application waits, and not yet verified)."""
    if application.status_enum is not Status.REQUESTED:
        raise Conflict("Proofs can be added only while the application is waiting", "not_waiting")
    criterion = application.criterion(code)
    if criterion is None:
        raise ValidationFailed({"criterion": "was not declared on this application"})
    if criterion.status == CriterionStatus.VERIFIED:
        raise Conflict("This criterion is already verified", "already_verified")
    return criterion


def upload_form(identity: Identity, data: UploadRequest | dict) -> dict:
    """The presigned POST (url, fields) for one proof, and the key it will have."""
    body = validate(UploadRequest, data)
    application = get_application(identity, body.request_id)
    if application.parent_sub != identity.sub:
        raise NotFound("No such application")
    _criterion(application, body.criterion)
    key = _prefix(identity, application, body.criterion) + uuid.uuid4().hex
    post = presigned_post(_bucket(), key, PROOF_POLICY, body.content_type, body.filename)
    return {"url": post["url"], "fields": post["fields"], "key": key, "max_bytes": PROOF_POLICY.max_bytes,
            "content_types": sorted(PROOF_POLICY.content_types)}


def register(identity: Identity, data: Uploaded | dict, now: datetime | None = None) -> Application:
    """Check the uploaded file and record it on the criterion; 400 naming `file` or `key` if it is not right.

    The file is checked and kept at `<key>.checked`, where no browser can post (the presigned POST
    for `<key>` stays valid for minutes after the check).
    """
    body = validate(Uploaded, data)
    application = get_application(identity, body.request_id)
    if application.parent_sub != identity.sub:
        raise NotFound("No such application")
    prefix = _prefix(identity, application, body.criterion)
    if not body.key.startswith(prefix) or not UPLOAD_NAME.fullmatch(body.key[len(prefix):]):
        raise ValidationFailed({"key": "is not an upload for this criterion"})
    _criterion(application, body.criterion)
    stored = take_upload(_bucket(), body.key, PROOF_POLICY, body.key + ".checked")  # before the row lock: S3 is slow
    try:
        application, previous = _record(identity, body, stored, now)
    except (Conflict, ValidationFailed):
        delete_objects(_bucket(), [stored.key])  # nothing will ever point at it
        raise
    if previous and previous != stored.key:
        try:
            delete_objects(_bucket(), [previous])
        except Exception:  # an old proof left behind is harmless; the criterion points at the new one
            log.warning("could not delete the replaced proof of %s/%s", application.request_id, body.criterion)
    return application


@retry_on_race(db)
def _record(identity: Identity, body: Uploaded, stored: StoredObject, now: datetime | None
            ) -> tuple[Application, str | None]:
    """The checked proof on its criterion, with a PROOF event; the application and the proof it replaced."""
    application = own_locked(identity, body)
    try:
        criterion = _criterion(application, body.criterion)
    except (Conflict, ValidationFailed):
        db.session.rollback()
        raise
    previous = criterion.proof_key
    criterion.proof_key, criterion.proof_name = stored.key, stored.filename
    criterion.proof_uploaded_at = naive_utc(now or datetime.now(UTC))
    if criterion.status == CriterionStatus.REJECTED:  # a new proof is looked at again
        criterion.status, criterion.reason = CriterionStatus.PENDING.value, None
    stage(application, EventType.PROOF, actor(identity), now, note=stored.filename, about=criterion.code,
          criterion=criterion.payload(configured_criteria()))
    db.session.commit()
    publish_pending()
    return application, previous
