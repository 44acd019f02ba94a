"""SQL for wrapped keys: subject data keys, named secrets and signing keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, text, update

from consentry.storage.engine import AnyRow
from consentry.storage.errors import ConstraintViolation
from consentry.storage.schema import key_material, signing_keys, subject_keys


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
    """(subject_id, wrapped_key) of those of `subject_ids` whose key still exists."""
    stmt = select(subject_keys.c.subject_id, subject_keys.c.wrapped_key).where(
        subject_keys.c.subject_id.in_(subject_ids)
    )
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
        signing_keys.c.kid, signing_keys.c.public_jwk, signing_keys.c.wrapped_private
    ).order_by(signing_keys.c.created_at)
    return conn.execute(stmt).all()
