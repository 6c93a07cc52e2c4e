"""Age classes (세반), start months and offer deadlines, in Korean time."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from shared.platform.clock import KST, aware, naive_utc

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
OLDEST_CLASS = 5


def school_year(month: date) -> int:
    """The school (보육) year of a month: it starts on 1 March."""
    return month.year if month.month >= 3 else month.year - 1


def age_class(birthday: date, start: date) -> int | None:
    """The class (0세반..5세반) of a child starting in the month `start`, or None past 5세반.

    The class follows the birth year, not the birthday: for a start in school year Y (March of Y
    to February of Y+1) a child born in year B is in the (Y - B - 1)세반, and children born in Y
    or later in 0세반. Reference: 보건복지부 「보육사업안내」, 반편성 연령 기준 (e.g. for March 2023 to
    February 2024: 만 0세반 born 2022-01-01 or later, 만 1세반 born in 2021, ... 만 5세반 born in 2017).
    """
    years = school_year(start) - birthday.year - 1
    if years > OLDEST_CLASS:
        return None
    return max(years, 0)


def class_for(child_birthday: str, desired_start: str) -> int | None:
    """age_class from the stored texts (birthday YYYYMMDD, start YYYY-MM); None when unreadable or past 5세반."""
    try:
        return age_class(datetime.strptime(child_birthday, "%Y%m%d").date(), parse_month(desired_start))
    except (TypeError, ValueError):
        return None


def parse_month(value: str) -> date:
    """'YYYY-MM' as the first day of that month (ValueError otherwise)."""
    match = MONTH.match(value or "")
    if not match:
        raise ValueError("must be a month written YYYY-MM")
    return date(int(match[1]), int(match[2]), 1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def this_month(now: datetime | None = None) -> date:
    """The current month in Korea."""
    local = (now or datetime.now(UTC)).astimezone(KST)
    return date(local.year, local.month, 1)


def default_start(now: datetime | None = None) -> str:
    """The desired start month when an application names none (the seed's body): next month."""
    return f"{add_months(this_month(now), 1):%Y-%m}"


def offer_deadline(offered_at: datetime, days: int) -> datetime:
    """When an offer made at `offered_at` expires: the end of the `days`-th day after it, Korean time
    (naive UTC). An offer made on 1 December with 7 days runs to 8 December 23:59:59 KST."""
    local = aware(offered_at).astimezone(KST)
    end = datetime.combine(local.date() + timedelta(days=days), time(23, 59, 59), KST)
    return naive_utc(end)
