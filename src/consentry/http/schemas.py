"""The base of every request body: strict types, unknown fields refused."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class Body(BaseModel):
    """A JSON request body: a field the contract lacks is an error. Numbers and booleans are
    declared with pydantic's Strict types, so `"1"` is not 1 and `"yes"` is not true."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        # A NUL character is never meaningful here and PostgreSQL text cannot hold one.
        if _has_nul(data):
            raise ValueError("strings may not contain the NUL character")
        return data
