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


def end(conn: Connection, token_hash: bytes, now: datetime) -> int:
    """End a session now (sign-out); its row stays while its link could still be opened."""
    stmt = (
        update(portal_sessions)
        .where(portal_sessions.c.token_hash == token_hash, portal_sessions.c.expires_at > now)
        .values(expires_at=now, idle_until=now)
    )
    return int(conn.execute(stmt).rowcount)


def remove_ended(conn: Connection, now: datetime, opened_before: datetime) -> int:
    """Delete sessions past their end, idle or absolute, opened before `opened_before`: by
    then the link that opened one can no longer be opened, so its id need not be kept."""
    c = portal_sessions.c
    ended = (c.expires_at <= now) | (c.idle_until <= now)
    stmt = delete(portal_sessions).where(ended, c.created_at < opened_before)
    return int(conn.execute(stmt).rowcount)
