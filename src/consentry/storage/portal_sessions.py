"""SQL of customers' portal sessions (dsr/portal.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from consentry.storage.engine import AnyRow
from consentry.storage.schema import portal_sessions


def insert_session(conn: Connection, values: dict[str, Any]) -> None:
    """A new session (ConstraintViolation when its link opened one already)."""
    conn.execute(insert(portal_sessions).values(values))


def get(conn: Connection, token_hash: bytes) -> AnyRow | None:
    stmt = select(portal_sessions).where(portal_sessions.c.token_hash == token_hash)
    return conn.execute(stmt).first()


def touch(conn: Connection, token_hash: bytes, idle_until: datetime) -> None:
    stmt = (
        update(portal_sessions)
        .where(portal_sessions.c.token_hash == token_hash)
        .values(idle_until=idle_until)
    )
    conn.execute(stmt)


def remove(conn: Connection, token_hash: bytes) -> int:
    stmt = delete(portal_sessions).where(portal_sessions.c.token_hash == token_hash)
    return int(conn.execute(stmt).rowcount)


def remove_ended(conn: Connection, now: datetime) -> int:
    """Delete sessions past their end, idle or absolute; a link's row goes with its session
    (the link itself ended 15 minutes after it was minted, long before)."""
    c = portal_sessions.c
    stmt = delete(portal_sessions).where((c.expires_at <= now) | (c.idle_until <= now))
    return int(conn.execute(stmt).rowcount)
