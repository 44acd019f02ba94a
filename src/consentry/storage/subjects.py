"""SQL for subjects and their identities (blind indexes and sealed values only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, select, tuple_, update

from consentry.storage.engine import AnyRow
from consentry.storage.schema import identities, subjects


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
_SET_JURISDICTION = (
    update(subjects)
    .where(subjects.c.subject_id == bindparam("b_subject_id"))
    # Decisions depend on jurisdiction: the change gets a consent version of its own.
    .values(
        jurisdiction=bindparam("b_jurisdiction"), consent_version=subjects.c.consent_version + 1
    )
)


def get_subject(conn: Connection, subject_id: str) -> AnyRow | None:
    return conn.execute(_GET, {"b_subject_id": subject_id}).first()


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
