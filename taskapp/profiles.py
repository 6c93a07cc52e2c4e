"""Profiles: taskapp's part of a user, in DynamoDB keyed by the Cognito sub.

    pk = "USER#<sub>"   sk = "PROFILE"
    display_name, phone (E.164), time_zone, notify_email, notify_sms, notify_in_app,
    email_subscription_arn / email_endpoint, sms_subscription_arn / sms_endpoint,
    unread (the bell's count; only taskapp.notifications changes it, with ADD)

The display name and phone also live in Cognito, where the tokens and the shared sign-in pages
read them; saving a profile writes them there through shared.platform.auth.cognito, the same call the
shared profile page makes, and taskapp's profile page replaces that page (one form edits them).

Preferences drive the user's SNS subscriptions to the task topic: email to their sign-in address,
SMS to their phone, each with the filter policy {"user": [<sub>]}; turning a channel off (or
changing the phone) removes the old subscription. In AWS an email subscription stays pending until
the user confirms the email SNS sends; the emulator delivers nothing to either.
"""

from __future__ import annotations

import json
import logging
import re
from functools import cache

from flask import g, has_app_context
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.platform.auth import Identity
from shared.platform.aws import client
from shared.platform.errors import ApiError, ValidationFailed
from taskapp import store

log = logging.getLogger(__name__)
DEFAULT_TIME_ZONE = "Asia/Seoul"
DEFAULTS = {"display_name": "", "phone": None, "time_zone": DEFAULT_TIME_ZONE, "notify_email": False,
            "notify_sms": False, "notify_in_app": True, "unread": 0}
KOREAN_MOBILE = re.compile(r"^01[016789]-?\d{3,4}-?\d{4}$")
E164 = re.compile(r"^\+[1-9]\d{7,14}$")
CHANNELS = (("email", "email"), ("sms", "sms"))  # (preference, SNS protocol)
FIELDS = ("display_name", "phone", "time_zone", "notify_email", "notify_sms", "notify_in_app")


@cache
def time_zones() -> tuple[str, ...]:
    import zoneinfo

    return tuple(sorted(zoneinfo.available_timezones()))


def normalise_phone(value: str) -> str:
    """010-1234-5678 or +821012345678 -> +821012345678; ValueError otherwise."""
    value = re.sub(r"[\s()]", "", value)
    if KOREAN_MOBILE.match(value):
        from shared.platform.auth.forms import to_e164

        return to_e164(value)
    if E164.match(value):
        return value
    raise ValueError("A mobile number like 010-1234-5678 or +821012345678")


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    phone: str | None = None  # "" removes it
    time_zone: str | None = None
    notify_email: bool | None = None
    notify_sms: bool | None = None
    notify_in_app: bool | None = None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return normalise_phone(value) if value else value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None and value not in time_zones():
            raise ValueError("A time zone such as Asia/Seoul")
        return value

    @field_validator("display_name", "time_zone", "notify_email", "notify_sms", "notify_in_app")
    @classmethod
    def _not_null(cls, value):
        if value is None:
            raise ValueError("May not be null")
        return value


def get_profile(sub: str) -> dict:
    """The stored profile with defaults for what was never set."""
    item = store.get(f"USER#{sub}", "PROFILE") or {}
    profile = {**DEFAULTS, **store.without_keys(item)}
    profile["unread"] = max(0, int(profile["unread"]))
    return profile


def page_profile(identity: Identity | None) -> dict | None:
    """The signed-in user's profile, read once per request (the bell and the time zone need it)."""
    if identity is None:
        return None
    if has_app_context() and getattr(g, "_profile_sub", None) == identity.sub:
        return g._profile
    try:
        profile = get_profile(identity.sub)
    except Exception:  # the page still renders, without a count
        log.exception("could not read the profile of %s", identity.sub)
        profile = dict(DEFAULTS)
    if has_app_context():
        g._profile, g._profile_sub = profile, identity.sub
    return profile


def public(identity: Identity, profile: dict) -> dict:
    shown = {name: profile.get(name) for name in FIELDS}
    shown.update(sub=identity.sub, email=identity.email, unread=profile["unread"],
                 display_name=profile["display_name"] or identity.name)
    shown["subscriptions"] = {pref: bool(profile.get(f"{pref}_subscription_arn")) for pref, _ in CHANNELS}
    return shown


def update_profile(identity: Identity, changes: ProfileUpdate) -> dict:
    """Apply the fields set in `changes`: Cognito's name and phone, the stored profile, and the
    subscriptions the preferences call for. 400 naming the field for what cannot be done."""
    current = get_profile(identity.sub)
    updated = dict(current)
    updated.update((name, getattr(changes, name)) for name in changes.model_fields_set)
    updated["phone"] = updated["phone"] or None
    if not updated["display_name"]:
        updated["display_name"] = identity.name or identity.email
    if updated["notify_sms"] and not updated["phone"]:
        raise ValidationFailed({"notify_sms": "Add a mobile number to get text messages"})
    if (updated["display_name"], updated["phone"]) != (current["display_name"] or identity.name, current["phone"]):
        _save_in_cognito(identity, updated["display_name"], updated["phone"])
    updated.update(_sync_subscriptions(identity, current, updated))
    names = [*FIELDS, *(f"{pref}_{suffix}" for pref, _ in CHANNELS for suffix in ("subscription_arn", "endpoint"))]
    sets = [n for n in names if updated.get(n) is not None]
    removes = [n for n in names if updated.get(n) is None]
    expression = "SET " + ", ".join(f"#{n} = :{n}" for n in sets) + (
        " REMOVE " + ", ".join(f"#{n}" for n in removes) if removes else "")
    store.ddb().update_item(
        TableName=store.table(), Key=store.key(f"USER#{identity.sub}", "PROFILE"), UpdateExpression=expression,
        ExpressionAttributeNames={f"#{n}": n for n in (*sets, *removes)},
        ExpressionAttributeValues=store.dump({f":{n}": updated[n] for n in sets}))
    if has_app_context():
        g.pop("_profile_sub", None)
    return public(identity, get_profile(identity.sub))


def _save_in_cognito(identity: Identity, name: str, phone: str | None) -> None:
    from shared.platform.auth import cognito
    from shared.platform.auth.cognito import AuthError

    try:
        cognito.update_profile(store.settings().cognito_userpool_id, identity.email, name, phone)
    except AuthError as err:
        if err.status == 400:
            raise ValidationFailed({"phone" if phone else "display_name": str(err.message)}) from None
        raise ApiError(err.status, err.code, str(err.message)) from None


def _sync_subscriptions(identity: Identity, current: dict, updated: dict) -> dict:
    """Subscribe or unsubscribe each channel so it matches the preferences; the new ARNs and endpoints."""
    sns = client("sns")
    topic = store.settings().resource("TASK_TOPIC_ARN")
    policy = {"user": [identity.sub]}
    endpoints = {"email": identity.email, "sms": updated["phone"]}
    changes: dict = {}
    for pref, protocol in CHANNELS:
        arn, endpoint = current.get(f"{pref}_subscription_arn"), endpoints[pref]
        wanted = bool(updated[f"notify_{pref}"] and endpoint)
        if arn and (not wanted or current.get(f"{pref}_endpoint") != endpoint):
            try:
                sns.unsubscribe(SubscriptionArn=arn)
            except sns.exceptions.NotFoundException:
                pass
            except sns.exceptions.InvalidParameterException:  # still pending confirmation: SNS drops it itself
                log.info("subscription %s is pending; left for SNS to expire", arn)
            arn = None
        if wanted and not arn:
            try:
                arn = sns.subscribe(TopicArn=topic, Protocol=protocol, Endpoint=endpoint,
                                    Attributes={"FilterPolicy": json.dumps(policy)},
                                    ReturnSubscriptionArn=True)["SubscriptionArn"]
            except sns.exceptions.InvalidParameterException:
                field = "phone" if pref == "sms" else f"notify_{pref}"
                raise ValidationFailed({field: "Notifications cannot be sent to this address"}) from None
            attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
            if json.loads(attributes.get("FilterPolicy") or "{}") != policy:
                # SNS keeps one subscription per endpoint: this one already serves another account
                raise ValidationFailed({f"notify_{pref}": "Another account already gets notifications here"})
        changes[f"{pref}_subscription_arn"], changes[f"{pref}_endpoint"] = arn, endpoint if arn else None
    return changes
