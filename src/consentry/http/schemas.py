"""The base of every request body: strict types, unknown fields refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Body(BaseModel):
    """A JSON request body: a field the contract lacks is an error. Numbers and booleans are
    declared with pydantic's Strict types, so `"1"` is not 1 and `"yes"` is not true."""

    model_config = ConfigDict(extra="forbid", frozen=True)
