"""The base of every request body: strict types, unknown fields refused."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


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
