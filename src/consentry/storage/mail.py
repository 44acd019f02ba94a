"""SQL for the outgoing mail queue."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from consentry.storage.engine import AnyRow
from consentry.storage.schema import outgoing_mail

PENDING = "pending"
SENT = "sent"
FAILED = "failed"


def insert_mail(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(outgoing_mail).values(**row))


def anything_pending(conn: Connection) -> bool:
    """Whether any mail waits to be sent (one look at the status index)."""
    stmt = select(outgoing_mail.c.seq).where(outgoing_mail.c.status == PENDING).limit(1)
    return conn.execute(stmt).first() is not None


def claim_due(conn: Connection, now: datetime, until: datetime, limit: int) -> list[AnyRow]:
    """Take up to `limit` pending mails due at `now`, oldest first: each is left to its sender
    until `until` (a sender that dies mid-send leaves it to be sent again after that) and
    counted as one more attempt. Another worker skips them (PostgreSQL) or waits for this
    transaction (SQLite, one writer)."""
    stmt = (
        select(
            outgoing_mail.c.mail_id,
            outgoing_mail.c.attempts,
            outgoing_mail.c.expires_at,
            outgoing_mail.c.sealed,
        )
        .where(outgoing_mail.c.status == PENDING, outgoing_mail.c.next_at <= now)
        .order_by(outgoing_mail.c.seq)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = conn.execute(stmt).all()
    for row in rows:
        conn.execute(
            update(outgoing_mail)
            .where(outgoing_mail.c.mail_id == row.mail_id)
            .values(next_at=until, attempts=row.attempts + 1)
        )
    return list(rows)


def finish(
    conn: Connection, mail_id: str, status: str, now: datetime, error: str | None = None
) -> None:
    """The mail sent or given up: its sealed content is deleted with it."""
    conn.execute(
        update(outgoing_mail)
        .where(outgoing_mail.c.mail_id == mail_id)
        .values(status=status, finished_at=now, sealed=None, last_error=error)
    )


def retry(conn: Connection, mail_id: str, next_at: datetime, error: str) -> None:
    conn.execute(
        update(outgoing_mail)
        .where(outgoing_mail.c.mail_id == mail_id, outgoing_mail.c.status == PENDING)
        .values(next_at=next_at, last_error=error[:200])
    )


def give_up_expired(conn: Connection, now: datetime) -> int:
    """Pending mails past their use, never sent now: given up, their content deleted."""
    stmt = (
        update(outgoing_mail)
        .where(outgoing_mail.c.status == PENDING, outgoing_mail.c.expires_at <= now)
        .values(status=FAILED, finished_at=now, sealed=None, last_error="expired")
    )
    return int(conn.execute(stmt).rowcount)


def delete_finished(conn: Connection, before: datetime) -> int:
    """Rows of mails sent or given up before `before` (they hold no content, only counts)."""
    stmt = delete(outgoing_mail).where(
        outgoing_mail.c.status != PENDING, outgoing_mail.c.finished_at < before
    )
    return int(conn.execute(stmt).rowcount)


def statuses(conn: Connection) -> Sequence[AnyRow]:
    """(mail_id, status, attempts, sealed is not null) of every mail, oldest first."""
    stmt = select(
        outgoing_mail.c.mail_id,
        outgoing_mail.c.status,
        outgoing_mail.c.attempts,
        outgoing_mail.c.sealed.is_not(None).label("holds_content"),
    ).order_by(outgoing_mail.c.seq)
    return conn.execute(stmt).all()
