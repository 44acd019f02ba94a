"""The one source of the current time, so tests can move it and every timestamp is UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds and a `Z`: one fixed spelling per instant."""
    # isoformat is several times faster than strftime and always writes four-digit years.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


# Stored times are fixed-width text with four-digit years, so that text order is time order.
MIN_YEAR = 1000


def unstorable(moment: datetime) -> str | None:
    """Why an aware time cannot be stored (its UTC form does not exist at the calendar's edge,
    as for 0001-01-01T00:00:00+14:00, or falls before MIN_YEAR), or None when it can."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        return "has no UTC form within the years 1-9999"
    if utc.year < MIN_YEAR:
        return f"is before the year {MIN_YEAR}"
    return None
