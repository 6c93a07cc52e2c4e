"""Task attachments: the page's upload round trip through S3, downloads, and the JSON API."""

from __future__ import annotations

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from pydantic import BaseModel, ConfigDict, Field

from shared.platform import uploads
from shared.platform.auth import api_auth_required, login_required
from shared.platform.auth.forms import EmptyForm
from shared.platform.errors import ValidationFailed
from shared.platform.payloads import load_json
from taskapp import files

bp = Blueprint("files", __name__)


def upload_message(err: ValidationFailed, max_bytes: int, types_hint: str) -> str:
    """The page's words for what check_upload or a key check refused."""
    problem = err.fields.get("file") or err.fields.get("key") or ""
    if problem in (uploads.TYPE_NOT_ALLOWED, uploads.CONTENT_MISMATCH):
        return types_hint
    if problem == uploads.NOT_ARRIVED or "key" in err.fields:
        return _("The upload did not arrive. Please try again.")
    if problem == files.TOO_MANY:
        return _("A task can have at most %(n)d files.", n=files.MAX_FILES)
    return _("The file is too large (at most %(mb)d MB).", mb=max(1, max_bytes // (1024 * 1024)))


# --- pages ---------------------------------------------------------------------------------------


def arrived_page(action: str):
    """S3 sends the browser here (GET, with `bucket` and `key`) after a form upload: a page that hands
    the key on by POST with the CSRF token. A GET never changes anything."""
    key = request.args.get("key", "")[:300]
    return render_template("uploads/arrived.html", action=action, key=key, form=EmptyForm())


@bp.get("/tasks/<task_id>/attachments/uploaded")
@login_required()
def arrived(task_id: str):
    files.visible_task(g.identity, task_id)
    return arrived_page(url_for("files.uploaded", task_id=task_id))


@bp.post("/tasks/<task_id>/attachments/uploaded")
@login_required()
def uploaded(task_id: str):
    """The upload's key, posted by the arrived page: check the file and record it."""
    from taskapp.views import render_detail

    if not EmptyForm().validate_on_submit():
        return redirect(url_for("main.detail", task_id=task_id))
    try:
        attachment = files.complete_upload(g.identity, task_id, request.form.get("key"))
    except ValidationFailed as err:
        message = upload_message(err, files.MAX_BYTES, _("This type of file cannot be attached. "
                                                           "Use a picture, PDF, text, CSV, Office or ZIP file."))
        return render_detail(task_id, upload_error=message, status=400)
    flash(_("Attached %(name)s.", name=attachment["filename"]), "success")
    return redirect(url_for("main.detail", task_id=task_id) + "#files")


@bp.get("/tasks/<task_id>/files/<file_id>")
@login_required()
def download(task_id: str, file_id: str):
    return redirect(files.download_url(g.identity, task_id, file_id))


@bp.post("/tasks/<task_id>/files/<file_id>/delete")
@login_required()
def delete(task_id: str, file_id: str):
    if EmptyForm().validate_on_submit():
        files.delete_file(g.identity, task_id, file_id)
        flash(_("The file is removed."), "success")
    return redirect(url_for("main.detail", task_id=task_id) + "#files")


# --- JSON ----------------------------------------------------------------------------------------


class UploadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(min_length=3, max_length=255)


class UploadDone(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=300)


def _with_link(task_id: str, attachment: dict) -> dict:
    return {**attachment, "download_url": url_for("files.api_download", task_id=task_id,
                                                  file_id=attachment["file_id"], _external=True)}


@bp.post("/api/tasks/<task_id>/attachments")
@api_auth_required()
def api_start(task_id: str):
    """A presigned POST: send `fields` and then `file` as multipart/form-data to `url`, then
    POST the `key` to `complete`."""
    body = load_json(UploadRequest)
    upload = files.start_upload(g.identity, task_id, body.content_type, body.filename)
    upload["complete"] = url_for("files.api_complete", task_id=task_id, _external=True)
    return jsonify(upload), 201


@bp.post("/api/tasks/<task_id>/attachments/complete")
@api_auth_required()
def api_complete(task_id: str):
    attachment = files.complete_upload(g.identity, task_id, load_json(UploadDone).key)
    return jsonify(_with_link(task_id, attachment)), 201


@bp.get("/api/tasks/<task_id>/attachments")
@api_auth_required()
def api_list(task_id: str):
    return jsonify(attachments=[_with_link(task_id, a) for a in files.list_files(g.identity, task_id)])


@bp.get("/api/tasks/<task_id>/attachments/<file_id>")
@api_auth_required()
def api_download(task_id: str, file_id: str):
    """302 to a presigned GET valid for two minutes."""
    return redirect(files.download_url(g.identity, task_id, file_id))


@bp.delete("/api/tasks/<task_id>/attachments/<file_id>")
@api_auth_required()
def api_delete(task_id: str, file_id: str):
    files.delete_file(g.identity, task_id, file_id)
    return "", 204
