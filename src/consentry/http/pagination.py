"""Opaque list cursors and the list shape `{"items": [...], "next": cursor | null}`."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from consentry.errors import InvalidCursor

MAX_LIMIT = 1000
# Positions are 64-bit integers in storage.
MAX_POSITION = 2**63 - 1


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, keys: set[str]) -> dict[str, Any]:
    """The position a cursor holds; InvalidCursor unless it has exactly `keys`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidCursor("the cursor is not one this server made") from None
    if not isinstance(position, dict) or set(position) != keys:
        raise InvalidCursor("the cursor is not one this server made")
    if not all(_made_here(value) for value in position.values()):
        raise InvalidCursor("the cursor is not one this server made")
    return position


def _made_here(value: object) -> bool:
    """A value this server puts in a cursor: a position (a non-negative 64-bit integer) or an
    id or a time, text without NUL (PostgreSQL text cannot hold it) or a lone surrogate (not
    UTF-8: SQLite cannot bind it). Checked here once, for every list."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 <= value <= MAX_POSITION
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def page(items: list[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next": next_cursor}


def int_position(cursor: str, key: str) -> int:
    """The single non-negative integer a cursor holds under `key`; InvalidCursor otherwise."""
    value = decode_cursor(cursor, {key})[key]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_POSITION:
        raise InvalidCursor("the cursor is not one this server made")
    return value


def str_position(cursor: str, key: str, shape: re.Pattern[str]) -> str:
    """The single string a cursor holds under `key`, of the shape this server gives it (an id
    it made); InvalidCursor otherwise, so a forged value never reaches storage."""
    value = decode_cursor(cursor, {key})[key]
    if not isinstance(value, str) or not shape.fullmatch(value):
        raise InvalidCursor("the cursor is not one this server made")
    return value
