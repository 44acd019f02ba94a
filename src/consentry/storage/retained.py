"""SQL for what an erasure keeps (the retained set), each item with its legal ground."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert, select

from consentry.storage.engine import AnyRow
from consentry.storage.schema import retained


def insert_retained(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(retained), list(rows))


def subject_retained(conn: Connection, subject_id: str) -> Sequence[AnyRow]:
    stmt = select(
        retained.c.request_id, retained.c.item, retained.c.ground, retained.c.until
    ).where(retained.c.subject_id == subject_id)
    return conn.execute(stmt.order_by(retained.c.retained_id)).all()
