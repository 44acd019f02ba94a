"""SQL for the vendor register (Art. 28 processors)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from consentry.storage.engine import AnyRow
from consentry.storage.schema import vendors


def list_vendors(conn: Connection) -> Sequence[AnyRow]:
    return conn.execute(select(vendors).order_by(vendors.c.vendor_id)).all()


def get_vendor(conn: Connection, vendor_id: str, *, lock: bool = False) -> AnyRow | None:
    stmt = select(vendors).where(vendors.c.vendor_id == vendor_id)
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()


def insert_vendor(conn: Connection, vendor_id: str, definition: str, now: datetime) -> None:
    conn.execute(
        insert(vendors).values(
            vendor_id=vendor_id, definition=definition, created_at=now, updated_at=now
        )
    )


def update_vendor(conn: Connection, vendor_id: str, definition: str, now: datetime) -> None:
    stmt = update(vendors).where(vendors.c.vendor_id == vendor_id)
    conn.execute(stmt.values(definition=definition, updated_at=now))


def delete_vendor(conn: Connection, vendor_id: str) -> None:
    conn.execute(delete(vendors).where(vendors.c.vendor_id == vendor_id))
