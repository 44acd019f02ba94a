"""SQL for the audit log: ordered appends and paged reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update

from consentry.storage.engine import AnyRow
from consentry.storage.schema import audit_entries, audit_state


def reserve_indexes(conn: Connection, count: int) -> int:
    """Reserve `count` consecutive indexes and return the first.

    The update takes the single state row's lock, so appends from concurrent transactions
    get indexes in commit order and the log has no gaps.
    """
    stmt = (
        update(audit_state)
        .where(audit_state.c.id == 1)
        .values(size=audit_state.c.size + count)
        .returning(audit_state.c.size)
    )
    size = conn.execute(stmt).scalar_one()
    return int(size) - count


def insert_entries(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    conn.execute(insert(audit_entries), list(rows))


def list_entries(
    conn: Connection, *, from_index: int, limit: int, subject_id: str | None
) -> Sequence[AnyRow]:
    stmt = (
        select(audit_entries)
        .where(audit_entries.c.idx >= from_index)
        .order_by(audit_entries.c.idx)
        .limit(limit)
    )
    if subject_id is not None:
        stmt = stmt.where(audit_entries.c.subject_id == subject_id)
    return conn.execute(stmt).all()


def log_size(conn: Connection) -> int:
    return int(conn.execute(select(audit_state.c.size).where(audit_state.c.id == 1)).scalar_one())
