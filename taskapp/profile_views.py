"""The profile: name and phone (the shared profile form's fields), time zone and notification
preferences, on one page that replaces the shared profile page in taskapp; and the JSON API."""

from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, StringField

from shared.platform.auth import api_auth_required, login_required, start_session
from shared.platform.auth.forms import ProfileForm, from_e164
from shared.platform.errors import ValidationFailed
from shared.platform.payloads import load_json
from taskapp import profiles
from taskapp.services import parse
from taskapp.views import show_errors

bp = Blueprint("profile", __name__)
FIELD_MESSAGES = {
    "notify_sms": _l("Add a mobile number to get text messages."),
    "phone": _l("Text messages cannot be sent to this number."),
    "notify_email": _l("Email notifications cannot be turned on for this address right now."),
    "time_zone": _l("Choose a time zone from the list, like Asia/Seoul (type a city to search)."),
}
# the time zones most of the agency's staff use, first in the list (the rest follow, A to Z)
COMMON_TIME_ZONES = [
    ("Asia/Seoul", _l("Seoul (Korea)")), ("Asia/Tokyo", _l("Tokyo (Japan)")),
    ("Asia/Shanghai", _l("Shanghai (China)")), ("Asia/Ho_Chi_Minh", _l("Ho Chi Minh City (Vietnam)")),
    ("Asia/Singapore", _l("Singapore")), ("Europe/London", _l("London (UK)")),
    ("Europe/Berlin", _l("Berlin (Germany)")), ("America/New_York", _l("New York (US East)")),
    ("America/Los_Angeles", _l("Los Angeles (US West)")), ("UTC", _l("UTC (Coordinated Universal Time)")),
]


class TaskProfileForm(ProfileForm):
    time_zone = StringField(_l("Time zone"), render_kw={"list": "time-zones", "autocomplete": "off",
                                                         "spellcheck": "false"})
    notify_in_app = BooleanField(_l("In the app (the bell)"))
    notify_email = BooleanField(_l("By email"))
    notify_sms = BooleanField(_l("By text message"))



def zone_options() -> list[tuple[str, str]]:
    """The datalist of the time zone field: the common ones with a name, then every other zone."""
    common = [(zone, str(label)) for zone, label in COMMON_TIME_ZONES]
    named = {zone for zone, _label in common}
    return common + [(zone, zone.replace("_", " ")) for zone in profiles.time_zones() if zone not in named]


@bp.route("/profile", methods=["GET", "POST"])
@login_required()
def page():
    form = TaskProfileForm()
    if request.method == "GET":
        profile = profiles.get_profile(g.identity.sub)
        if not profile["display_name"]:  # never saved here: start from what the account has
            from shared.platform.auth import cognito

            attributes = cognito.get_profile(current_app.config["SETTINGS"].cognito_userpool_id, g.identity.email)
            profile.update(display_name=attributes.get("name", ""), phone=attributes.get("phone_number") or None)
        form.process(data={**profile, "name": profile["display_name"], "phone": from_e164(profile["phone"] or "")})
    elif form.is_submitted():
        form.validate()  # every field checked in one pass: the form's rules, then the service's
        data = {"display_name": form.name.data, "phone": form.phone.data or "",
                "time_zone": (form.time_zone.data or "").strip(),
                "notify_in_app": form.notify_in_app.data, "notify_email": form.notify_email.data,
                "notify_sms": form.notify_sms.data}
        try:
            changes = parse(profiles.ProfileUpdate, data)
            if not form.errors:
                saved = profiles.update_profile(g.identity, changes)
        except ValidationFailed as err:
            show_errors(form, err, FIELD_MESSAGES, aliases={"display_name": "name"})
        if not form.errors:
            start_session(replace(g.identity, name=saved["display_name"]), renew=False)
            flash(_("Your profile is saved."), "success")
            return redirect(url_for("profile.page"))
    return render_template("taskapp/profile.html", form=form, zones=zone_options()), 400 if form.errors else 200


@bp.get("/api/profile")
@api_auth_required()
def api_get():
    return jsonify(profiles.public(g.identity, profiles.get_profile(g.identity.sub)))


@bp.patch("/api/profile")
@api_auth_required()
def api_patch():
    return jsonify(profiles.update_profile(g.identity, load_json(profiles.ProfileUpdate)))
