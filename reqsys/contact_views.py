"""Confirming an address a parent gave for notices (reqsys.services.contacts): a page the emailed link
opens (the confirmation itself is a POST), and the same as JSON with the code."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request
from pydantic import BaseModel, ConfigDict, Field

from reqsys.services.contacts import confirm_contact
from shared.platform.auth.forms import EmptyForm
from shared.platform.payloads import load_json

bp = Blueprint("contact", __name__)


class ContactCode(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore")

    code: str = Field(min_length=10, max_length=64)


@bp.route("/contact/confirm", methods=["GET", "POST"])
def confirm_page():
    """Anyone holding the code (the mailbox's owner) confirms; no sign-in, since it may be another person."""
    form = EmptyForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            return render_template("reqsys/contact_confirm.html", form=form, code=request.form.get("code", "")), 400
        confirm_contact(request.form.get("code", ""))
        return render_template("reqsys/contact_confirm.html", form=form, done=True)
    return render_template("reqsys/contact_confirm.html", form=form, code=request.args.get("code", "")[:64])


@bp.post("/enterwait/contact/confirm")
def confirm_json():
    row = confirm_contact(load_json(ContactCode).code)
    return jsonify(confirmed=True, email=row.email)
