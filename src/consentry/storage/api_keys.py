"""SQL for API keys (hashes only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, insert, literal, select, tuple_, update

from consentry.storage.engine import AnyRow
from consentry.storage.schema import UTCTime, api_keys


def insert_key(
    conn: Connection,
    key_id: str,
    role: str,
    label: str,
    key_hash: bytes,
    now: datetime,
    origins: str | None = None,
) -> None:
    conn.execute(
        insert(api_keys).values(
            key_id=key_id,
            role=role,
            label=label,
            key_hash=key_hash,
            created_at=now,
            origins=origins,
        )
    )


def live_origins(conn: Connection) -> Sequence[str]:
    """The origins (JSON lists) of every browser key not revoked."""
    stmt = select(api_keys.c.origins).where(
        api_keys.c.origins.is_not(None), api_keys.c.revoked_at.is_(None)
    )
    return [str(v) for v in conn.execute(stmt).scalars()]


def get_key(conn: Connection, key_id: str) -> AnyRow | None:
    return conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()


def list_keys(
    conn: Connection, *, after: tuple[datetime, str] | None, limit: int
) -> Sequence[AnyRow]:
    stmt = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id).limit(limit)
    if after is not None:
        # Bound through the column's type, so the time compares in its stored spelling.
        position = tuple_(literal(after[0], UTCTime()), literal(after[1]))
        stmt = stmt.where(tuple_(api_keys.c.created_at, api_keys.c.key_id) > position)
    return conn.execute(stmt).all()


def revoke_key(conn: Connection, key_id: str, now: datetime) -> bool:
    result = conn.execute(
        update(api_keys)
        .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount > 0
