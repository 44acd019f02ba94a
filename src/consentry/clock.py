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
