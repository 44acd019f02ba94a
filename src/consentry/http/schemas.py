"""The base of every request body: strict types, unknown fields refused."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, model_validator

from consentry import clock

# Why a body holding such a string is refused.
UNSTORABLE = "strings may not contain NUL or lone surrogate characters"


def unstorable(value: Any) -> bool:
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
        return any(unstorable(k) or unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(unstorable(v) for v in value)
    return False


def _instant(value: datetime) -> datetime:
    """A time with a zone that can be stored (clock.unstorable)."""
    reason = clock.unstorable(value)
    if reason is not None:
        raise ValueError(f"the time {reason}")
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
        if unstorable(data):
            raise ValueError(UNSTORABLE)
        return data
