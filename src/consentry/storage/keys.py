"""SQL for wrapped keys: subject data keys, named secrets and signing keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Column,
    Connection,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)

from consentry.storage.engine import AnyRow
from consentry.storage.errors import ConstraintViolation
from consentry.storage.schema import (
    identity_secrets,
    key_material,
    master_keys,
    signing_keys,
    subject_keys,
    systems,
)


def insert_subject_key(
    conn: Connection, subject_id: str, wrapped: bytes, kek_id: str, now: datetime
) -> None:
    conn.execute(
        insert(subject_keys).values(
            subject_id=subject_id, wrapped_key=wrapped, kek_id=kek_id, created_at=now
        )
    )


def get_subject_key(conn: Connection, subject_id: str) -> AnyRow | None:
    stmt = select(subject_keys.c.wrapped_key, subject_keys.c.kek_id).where(
        subject_keys.c.subject_id == subject_id
    )
    return conn.execute(stmt).first()


def get_subject_keys(conn: Connection, subject_ids: Sequence[str]) -> Sequence[AnyRow]:
    """(subject_id, wrapped_key, kek_id) of those of `subject_ids` whose key still exists."""
    stmt = select(
        subject_keys.c.subject_id, subject_keys.c.wrapped_key, subject_keys.c.kek_id
    ).where(subject_keys.c.subject_id.in_(subject_ids))
    return conn.execute(stmt).all()


def delete_subject_key(conn: Connection, subject_id: str) -> bool:
    """Delete the row (SQLite overwrites it: secure_delete); True when a key was there."""
    result = conn.execute(delete(subject_keys).where(subject_keys.c.subject_id == subject_id))
    return result.rowcount > 0


def get_material(conn: Connection, name: str) -> AnyRow | None:
    stmt = select(key_material.c.wrapped_key, key_material.c.kek_id).where(
        key_material.c.name == name
    )
    return conn.execute(stmt).first()


def insert_material_if_absent(
    conn: Connection, name: str, wrapped: bytes, kek_id: str, now: datetime
) -> None:
    """Insert unless another process won the race; the caller then reads the winner's row."""
    try:
        with conn.begin_nested():
            conn.execute(
                insert(key_material).values(
                    name=name, wrapped_key=wrapped, kek_id=kek_id, created_at=now
                )
            )
    except ConstraintViolation:
        pass


def list_signing_keys(conn: Connection) -> Sequence[AnyRow]:
    stmt = (
        select(
            signing_keys.c.kid,
            signing_keys.c.public_jwk,
            signing_keys.c.wrapped_private,
            signing_keys.c.kek_id,
            signing_keys.c.active,
        )
        .where(signing_keys.c.retired_at.is_(None))
        .order_by(signing_keys.c.created_at)
    )
    return conn.execute(stmt).all()


def insert_signing_key(
    conn: Connection, kid: str, public_jwk: str, wrapped: bytes, kek_id: str, now: datetime
) -> None:
    """Add a key and make it the only active one; older keys stay published to verify."""
    conn.execute(update(signing_keys).values(active=False))
    conn.execute(
        insert(signing_keys).values(
            kid=kid,
            public_jwk=public_jwk,
            wrapped_private=wrapped,
            kek_id=kek_id,
            created_at=now,
            active=True,
        )
    )


def lock_signing_keys(conn: Connection) -> None:
    """Serialise signing-key creation across processes until commit (PostgreSQL; SQLite has
    one writer already)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(7307616769)"))


def list_every_signing_key(conn: Connection) -> Sequence[AnyRow]:
    """Every signing key ever made, retired ones included (old signatures still verify)."""
    stmt = select(
        signing_keys.c.kid,
        signing_keys.c.public_jwk,
        signing_keys.c.wrapped_private,
        signing_keys.c.kek_id,
    ).order_by(signing_keys.c.created_at)
    return conn.execute(stmt).all()


@dataclass(frozen=True, slots=True)
class Wrapped:
    """A table holding blobs wrapped by the key-encryption key, each row naming its KEK."""

    name: str
    table: Table
    key: str
    blob: str

    @property
    def key_column(self) -> Column[str]:
        return self.table.c[self.key]


# Every table whose rows the KEK wraps: what a master rotation re-wraps.
WRAPPED = (
    Wrapped("subject_keys", subject_keys, "subject_id", "wrapped_key"),
    Wrapped("key_material", key_material, "name", "wrapped_key"),
    Wrapped("signing_keys", signing_keys, "kid", "wrapped_private"),
    Wrapped("identity_secrets", identity_secrets, "secret_id", "secret_ct"),
    Wrapped("systems", systems, "system_id", "secret_ct"),
)


def count_wrapped_not_under(conn: Connection, wrapped: Wrapped, kek_id: str) -> int:
    """Rows of `wrapped` wrapped under any KEK but `kek_id`."""
    stmt = select(func.count()).where(wrapped.table.c.kek_id != kek_id)
    return int(conn.execute(stmt).scalar() or 0)


def wrapped_kek_ids(conn: Connection) -> set[str]:
    """Every KEK id some row is wrapped under."""
    found: set[str] = set()
    for wrapped in WRAPPED:
        found.update(conn.execute(select(wrapped.table.c.kek_id).distinct()).scalars())
    return found


def wrapped_batch(
    conn: Connection, wrapped: Wrapped, kek_id: str, after: str | None, limit: int
) -> Sequence[AnyRow]:
    """Up to `limit` rows (key, blob, kek_id) not under `kek_id`, past `after` in key order."""
    key = wrapped.key_column
    stmt = select(
        key.label("key"), wrapped.table.c[wrapped.blob].label("blob"), wrapped.table.c.kek_id
    ).where(wrapped.table.c.kek_id != kek_id)
    if after is not None:
        stmt = stmt.where(key > after)
    return conn.execute(stmt.order_by(key).limit(limit)).all()


def rewrap(conn: Connection, wrapped: Wrapped, rows: Sequence[tuple[str, str, bytes, str]]) -> None:
    """Store each (key, old kek_id, new blob, new kek_id), only where the row is still under
    the old KEK: a row deleted meanwhile (an erasure) stays deleted."""
    if not rows:
        return
    table = wrapped.table
    stmt = (
        update(table)
        .where(wrapped.key_column == bindparam("k"), table.c.kek_id == bindparam("old"))
        .values({wrapped.blob: bindparam("blob"), "kek_id": bindparam("new")})
    )
    conn.execute(
        stmt, [{"k": k, "old": old, "blob": blob, "new": new} for k, old, blob, new in rows]
    )


def record_master_key(conn: Connection, kek_id: str, now: datetime) -> None:
    """Note that `kek_id` is in use from `now`, unless it was noted before."""
    if conn.execute(select(master_keys.c.kek_id).where(master_keys.c.kek_id == kek_id)).first():
        return
    try:
        with conn.begin_nested():
            conn.execute(insert(master_keys).values(kek_id=kek_id, created_at=now))
    except ConstraintViolation:
        pass


def mark_master_key_retiring(conn: Connection, kek_id: str, now: datetime) -> datetime:
    """Note that nothing is wrapped under `kek_id` from `now` (its retirement starts), unless
    noted before; returns since when it has been retiring."""
    row = conn.execute(
        select(master_keys.c.retired_at).where(master_keys.c.kek_id == kek_id)
    ).first()
    if row is not None and row.retired_at is not None:
        since: datetime = row.retired_at
        return since
    if row is None:
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(master_keys).values(kek_id=kek_id, created_at=now, retired_at=now)
                )
        except ConstraintViolation:
            pass
    conn.execute(
        update(master_keys)
        .where(master_keys.c.kek_id == kek_id, master_keys.c.retired_at.is_(None))
        .values(retired_at=now)
    )
    return now


def master_key_created(conn: Connection, kek_id: str) -> datetime | None:
    stmt = select(master_keys.c.created_at).where(master_keys.c.kek_id == kek_id)
    value: datetime | None = conn.execute(stmt).scalar()
    return value


def material_first_wrapped(conn: Connection, kek_id: str) -> datetime | None:
    """The earliest creation among the named secrets wrapped under `kek_id`."""
    stmt = select(func.min(key_material.c.created_at)).where(key_material.c.kek_id == kek_id)
    value: datetime | None = conn.execute(stmt).scalar()
    return value
