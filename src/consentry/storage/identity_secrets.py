"""SQL for identity secrets (sealed under the KEK; never in clear)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from consentry.storage.engine import AnyRow
from consentry.storage.schema import identity_secrets


def insert_secret(
    conn: Connection, secret_id: str, label: str, sealed: bytes, kek_id: str, now: datetime
) -> None:
    conn.execute(
        insert(identity_secrets).values(
            secret_id=secret_id, label=label, secret_ct=sealed, kek_id=kek_id, created_at=now
        )
    )


def list_secrets(conn: Connection, *, live_only: bool = False) -> Sequence[AnyRow]:
    stmt = select(identity_secrets).order_by(
        identity_secrets.c.created_at, identity_secrets.c.secret_id
    )
    if live_only:
        stmt = stmt.where(identity_secrets.c.revoked_at.is_(None))
    return conn.execute(stmt).all()


def get_secret(conn: Connection, secret_id: str) -> AnyRow | None:
    stmt = select(identity_secrets).where(identity_secrets.c.secret_id == secret_id)
    return conn.execute(stmt).first()


def revoke_secret(conn: Connection, secret_id: str, now: datetime) -> bool:
    result = conn.execute(
        update(identity_secrets)
        .where(identity_secrets.c.secret_id == secret_id, identity_secrets.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount > 0
