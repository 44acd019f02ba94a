"""SQL for the data map: systems, and the per-system refusal counters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from consentry.storage.engine import AnyRow
from consentry.storage.schema import delivery_refusals, outbox, systems


def list_systems(conn: Connection) -> Sequence[AnyRow]:
    return conn.execute(select(systems).order_by(systems.c.system_id)).all()


def get_system(conn: Connection, system_id: str, *, lock: bool = False) -> AnyRow | None:
    stmt = select(systems).where(systems.c.system_id == system_id)
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()


def insert_system(
    conn: Connection, system_id: str, definition: str, secret_ct: bytes, kek_id: str, now: datetime
) -> None:
    conn.execute(
        insert(systems).values(
            system_id=system_id,
            definition=definition,
            secret_ct=secret_ct,
            kek_id=kek_id,
            created_at=now,
            updated_at=now,
        )
    )


def update_system(conn: Connection, system_id: str, definition: str, now: datetime) -> None:
    stmt = update(systems).where(systems.c.system_id == system_id)
    conn.execute(stmt.values(definition=definition, updated_at=now))


def delete_system(conn: Connection, system_id: str) -> int:
    """Delete the system and its undelivered rows; how many rows were dropped."""
    dropped = conn.execute(delete(outbox).where(outbox.c.system_id == system_id)).rowcount
    conn.execute(delete(systems).where(systems.c.system_id == system_id))
    return int(dropped)


def count_refusals(conn: Connection, counts: Mapping[tuple[str, str], int]) -> None:
    """Add to the per-system, per-reason refusal counters (rows created on first use)."""
    for (system_id, reason), n in sorted(counts.items()):
        key = (delivery_refusals.c.system_id == system_id) & (delivery_refusals.c.reason == reason)
        stmt = update(delivery_refusals).where(key).values(count=delivery_refusals.c.count + n)
        if conn.execute(stmt).rowcount == 0:
            conn.execute(
                insert(delivery_refusals).values(system_id=system_id, reason=reason, count=n)
            )


def all_refusals(conn: Connection) -> dict[str, dict[str, int]]:
    """Events not delivered, per system and reason (transfer_blocked, dpa_missing, ...)."""
    stmt = select(
        delivery_refusals.c.system_id, delivery_refusals.c.reason, delivery_refusals.c.count
    ).order_by(delivery_refusals.c.system_id, delivery_refusals.c.reason)
    out: dict[str, dict[str, int]] = {}
    for system_id, reason, n in conn.execute(stmt):
        out.setdefault(str(system_id), {})[str(reason)] = int(n)
    return out


def refusals(conn: Connection, system_id: str) -> dict[str, int]:
    stmt = select(delivery_refusals.c.reason, delivery_refusals.c.count).where(
        delivery_refusals.c.system_id == system_id
    )
    return {row[0]: int(row[1]) for row in conn.execute(stmt)}
