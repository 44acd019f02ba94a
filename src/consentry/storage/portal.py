"""SQL for portal codes and the attempts their limits count."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from consentry.storage.engine import AnyRow
from consentry.storage.schema import portal_attempts, portal_codes

REQUEST = "request"
FAILURE = "failure"


def replace_code(conn: Connection, row: dict[str, Any]) -> None:
    """The address's one live code: any earlier one is gone. One upsert: two requests for
    the same address at once both succeed, the later one's code standing (a delete then an
    insert would have the second insert fail on PostgreSQL)."""
    maker = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = maker(portal_codes).values(**row)
    replaced = {k: stmt.excluded[k] for k in row if k != "address_hash"}
    conn.execute(
        stmt.on_conflict_do_update(index_elements=[portal_codes.c.address_hash], set_=replaced)
    )


def code_of(conn: Connection, address_hash: bytes) -> AnyRow | None:
    stmt = select(portal_codes).where(portal_codes.c.address_hash == address_hash)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()


def set_tries(conn: Connection, code_id: str, tries: int) -> None:
    conn.execute(update(portal_codes).where(portal_codes.c.code_id == code_id).values(tries=tries))


def delete_code(conn: Connection, code_id: str) -> None:
    conn.execute(delete(portal_codes).where(portal_codes.c.code_id == code_id))


def delete_expired_codes(conn: Connection, now: datetime) -> None:
    conn.execute(delete(portal_codes).where(portal_codes.c.expires_at <= now))


def add_attempts(conn: Connection, key_hashes: list[bytes], kind: str, at: datetime) -> None:
    conn.execute(
        insert(portal_attempts), [{"key_hash": k, "kind": kind, "at": at} for k in key_hashes]
    )


def attempts_since(
    conn: Connection, key_hash: bytes, kind: str, since: datetime
) -> tuple[int, datetime | None, datetime | None]:
    """(count, first, last) of the key's attempts of `kind` at or after `since`."""
    at = portal_attempts.c.at
    row = conn.execute(
        select(func.count(), func.min(at), func.max(at)).where(
            portal_attempts.c.key_hash == key_hash,
            portal_attempts.c.kind == kind,
            at >= since,
        )
    ).one()
    return int(row[0]), row[1], row[2]


def delete_attempts_before(conn: Connection, before: datetime) -> None:
    conn.execute(delete(portal_attempts).where(portal_attempts.c.at < before))
