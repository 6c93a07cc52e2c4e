"""Time, one way everywhere: the databases store naive UTC, events and JSON carry ISO 8601 with a Z,
and people read Korean time (KST, UTC+9; Korea has no daylight saving time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo

KST = timezone(timedelta(hours=9), "KST")


def utcnow() -> datetime:
    """Now, as the databases store it: naive UTC (MySQL DATETIME has no zone)."""
    return datetime.now(UTC).replace(tzinfo=None)


def aware(value: datetime) -> datetime:
    """A stored (naive UTC) or aware time as aware UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def naive_utc(value: datetime) -> datetime:
    """What the databases store: naive UTC."""
    return aware(value).replace(tzinfo=None)


def iso(value: datetime | None) -> str | None:
    """A stored (naive UTC) time as ISO 8601 with a Z, for JSON and events."""
    return aware(value).isoformat().replace("+00:00", "Z") if value else None


def local_time(value: datetime | str | None, zone: tzinfo = KST, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored time (naive UTC, aware, or ISO text) as people read it: in `zone`, to the minute.

    Text that is not a time comes back as it is; nothing comes back as ''."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return aware(value).astimezone(zone).strftime(fmt)
