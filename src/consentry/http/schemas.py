"""The base of every request body: strict types, unknown fields refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, model_validator

# Stored times are fixed-width text with four-digit years (as an event's occurred_at).
MIN_YEAR = 1000


def _unstorable(value: Any) -> bool:
    """NUL (PostgreSQL text cannot hold it) or a lone surrogate (not UTF-8 at all), anywhere."""
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_unstorable(k) or _unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unstorable(v) for v in value)
    return False


def _instant(value: datetime) -> datetime:
    """A time with a zone whose UTC form exists (at the calendar's edge it may not:
    0001-01-01T00:00:00+14:00) and has a year from MIN_YEAR to 9999."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time has no UTC form within the years 1-9999") from None
    if utc.year < MIN_YEAR:
        raise ValueError(f"the time is before the year {MIN_YEAR}")
    return value


# Every time a request carries, in a body or a query string: a 422 invalid_request when it
# has no zone or falls outside the range above, never an overflow later.
Instant = Annotated[AwareDatetime, AfterValidator(_instant)]


class Body(BaseModel):
    """A JSON request body: a field the contract lacks is an error. Numbers and booleans are
    declared with pydantic's Strict types, so `"1"` is not 1 and `"yes"` is not true."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        if _unstorable(data):
            raise ValueError("strings may not contain NUL or lone surrogate characters")
        return data
