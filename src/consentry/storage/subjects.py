"""SQL for subjects, their identities (blind indexes and sealed values only) and the
tombstones of erased identities."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, insert, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from consentry.storage.engine import AnyRow
from consentry.storage.schema import identities, subjects, tombstones


def insert_subject(
    conn: Connection,
    subject_id: str,
    jurisdiction: str | None,
    now: datetime,
    erasure: str | None = None,
) -> None:
    conn.execute(
        insert(subjects).values(
            subject_id=subject_id, jurisdiction=jurisdiction, created_at=now, erasure=erasure
        )
    )


def blind_indexes(conn: Connection, subject_id: str) -> list[bytes]:
    stmt = select(identities.c.blind_index).where(identities.c.subject_id == subject_id)
    return [bytes(b) for b in conn.execute(stmt).scalars()]


def clear_erasure(conn: Connection, subject_id: str) -> None:
    """Lift a tombstone: the change gets a consent version of its own."""
    conn.execute(
        update(subjects)
        .where(subjects.c.subject_id == subject_id)
        .values(erasure=None, consent_version=subjects.c.consent_version + 1)
    )


# Built once (every request and consent write reads the subject): statement and cache key
# are reused.
_GET = select(subjects).where(subjects.c.subject_id == bindparam("b_subject_id"))
_GET_LOCKED = _GET.with_for_update()
_SET_JURISDICTION = (
    update(subjects)
    .where(subjects.c.subject_id == bindparam("b_subject_id"))
    # Decisions depend on jurisdiction: the change gets a consent version of its own.
    .values(
        jurisdiction=bindparam("b_jurisdiction"), consent_version=subjects.c.consent_version + 1
    )
)


def get_subject(conn: Connection, subject_id: str, *, lock: bool = False) -> AnyRow | None:
    """The subject's row; `lock` holds it until commit (FOR UPDATE on PostgreSQL)."""
    stmt = _GET_LOCKED if lock else _GET
    return conn.execute(stmt, {"b_subject_id": subject_id}).first()


def set_jurisdiction(conn: Connection, subject_id: str, jurisdiction: str) -> None:
    conn.execute(_SET_JURISDICTION, {"b_subject_id": subject_id, "b_jurisdiction": jurisdiction})


def find_by_blind_index(
    conn: Connection, keys: Sequence[tuple[str, bytes]]
) -> dict[tuple[str, bytes], str]:
    """Map each (type, blind_index) that is known to its subject_id."""
    if not keys:
        return {}
    stmt = select(identities.c.type, identities.c.blind_index, identities.c.subject_id).where(
        tuple_(identities.c.type, identities.c.blind_index).in_(list(keys))
    )
    return {(row.type, bytes(row.blind_index)): row.subject_id for row in conn.execute(stmt)}


def insert_identity(
    conn: Connection,
    subject_id: str,
    type_: str,
    blind_index: bytes,
    value_ct: bytes,
    now: datetime,
) -> None:
    """Insert one identity; ConstraintViolation when another transaction stored it first."""
    conn.execute(
        insert(identities).values(
            subject_id=subject_id,
            type=type_,
            blind_index=blind_index,
            value_ct=value_ct,
            created_at=now,
        )
    )


def list_identities(conn: Connection, subject_id: str) -> Sequence[AnyRow]:
    stmt = (
        select(identities.c.type, identities.c.value_ct, identities.c.created_at)
        .where(identities.c.subject_id == subject_id)
        .order_by(identities.c.identity_id)
    )
    return conn.execute(stmt).all()


def identity_rows(conn: Connection, subject_id: str) -> Sequence[AnyRow]:
    return conn.execute(_IDENTITIES, {"b_subject_id": subject_id}).all()


def update_identity(
    conn: Connection, identity_id: int, blind_index: bytes, value_ct: bytes
) -> None:
    conn.execute(
        update(identities)
        .where(identities.c.identity_id == identity_id)
        .values(blind_index=blind_index, value_ct=value_ct)
    )


# Built once: the statement and its cache key are reused.
_IDENTITIES = (
    select(identities)
    .where(identities.c.subject_id == bindparam("b_subject_id"))
    .order_by(identities.c.identity_id)
)


def insert_tombstones(conn: Connection, hashes: Sequence[bytes], now: datetime) -> None:
    if not hashes:
        return
    rows = [{"tombstone": h, "created_at": now} for h in dict.fromkeys(hashes)]
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(dialect_insert(tombstones).on_conflict_do_nothing(), rows)


def known_tombstones(conn: Connection, hashes: Sequence[bytes]) -> set[bytes]:
    if not hashes:
        return set()
    stmt = select(tombstones.c.tombstone).where(tombstones.c.tombstone.in_(list(hashes)))
    return {bytes(h) for h in conn.execute(stmt).scalars()}


def delete_tombstones(conn: Connection, hashes: Sequence[bytes]) -> int:
    if not hashes:
        return 0
    stmt = delete(tombstones).where(tombstones.c.tombstone.in_(list(hashes)))
    return int(conn.execute(stmt).rowcount)
