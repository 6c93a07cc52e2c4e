"""The waitlist's own settings, read from the environment next to the platform's (shared.platform.settings):
days a parent has to answer an offer, the reminder before its deadline, and the priority criteria file."""

from __future__ import annotations

import os
from dataclasses import dataclass

from shared.platform.settings import UnsafeSettings


def _days(env: dict[str, str], name: str, default: int) -> int:
    value = env.get(name) or str(default)
    if not value.isdigit() or not 1 <= int(value) <= 60:
        raise UnsafeSettings(f"{name} must be a whole number of days from 1 to 60, not {value!r}")
    return int(value)


@dataclass(frozen=True)
class WaitlistSettings:
    offer_days: int = 7
    offer_reminder_days: int = 2
    priority_criteria_path: str = ""  # a replacement for shared/waitlist/priority_criteria.json

    @classmethod
    def load(cls, env: dict[str, str] | None = None) -> WaitlistSettings:
        env = dict(os.environ if env is None else env)
        return cls(offer_days=_days(env, "OFFER_DAYS", 7), offer_reminder_days=_days(env, "OFFER_REMINDER_DAYS", 2),
                   priority_criteria_path=env.get("PRIORITY_CRITERIA_PATH", ""))


def init_waitlist(app) -> None:
    """A waitlist app's settings (WAITLIST, unless the caller gave its own) and criteria: a broken criteria
    file stops the start instead of scoring wrongly."""
    from shared.waitlist.criteria import load_criteria

    settings = app.config.setdefault("WAITLIST", WaitlistSettings.load())
    load_criteria(settings.priority_criteria_path or None)


def waitlist_settings() -> WaitlistSettings:
    """The running app's waitlist settings."""
    from flask import current_app

    return current_app.config["WAITLIST"]
