"""SQL for the outbox, the record of recipients and rights notices."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from consentry.storage.dialect import driver_statements, insert_statements
from consentry.storage.engine import AnyRow
from consentry.storage.schema import outbox, recipients, rights_notices, utc_text

PENDING = "pending"
SENDING = "sending"
DEAD = "dead"
# A rights notice with no rights endpoint to send it to, to be acknowledged by hand.
MANUAL = "manual"
# A rights notice the recipient answered with a 2xx (or acknowledged by hand).
ACKNOWLEDGED = "acknowledged"
# The rights notices awaiting an acknowledgement (the only ones that can be overdue): not
# acknowledged, nor withheld (delivery/propagation.py: never sent, so never answered).
AWAITING_ACK = (PENDING, MANUAL)

OUTBOX_COLUMNS = (
    "system_id",
    "event_id",
    "subject_id",
    "purposes",
    "payload",
    "status",
    "attempts",
    "next_at",
    "created_at",
)
_INSERT_OUTBOX = insert_statements("outbox", OUTBOX_COLUMNS)


def insert_outbox(conn: Connection, rows: Sequence[tuple[object, ...]]) -> None:
    """Rows as tuples in OUTBOX_COLUMNS order, times in UTCTime's text (the ingest hot path)."""
    if rows:
        conn.exec_driver_sql(_INSERT_OUTBOX[conn.dialect.paramstyle], list(rows))


def due_systems(conn: Connection, now: datetime) -> list[str]:
    stmt = (
        select(outbox.c.system_id)
        .where(outbox.c.status == PENDING, outbox.c.next_at <= now)
        .distinct()
    )
    return [row.system_id for row in conn.execute(stmt)]


# What a sender needs of a row (times are not parsed back: a third of a claim's cost).
CLAIMED_COLUMNS = ("seq", "event_id", "subject_id", "purposes", "payload", "attempts")

# The claim is one statement straight to the driver: the due rows are chosen by a subquery,
# so no list of a thousand keys is compiled and bound per batch. Constants only.
_CLAIM = (
    "UPDATE outbox SET status = {m}, claimed_at = {m} WHERE seq IN ("  # noqa: S608 - constants only
    "SELECT seq FROM outbox WHERE system_id = {m} AND status = {m} AND next_at <= {m} "
    "ORDER BY seq LIMIT {m}{lock}) RETURNING " + ", ".join(CLAIMED_COLUMNS)
)
_CLAIMS = {
    "qmark": _CLAIM.format(m="?", lock=""),
    "format": _CLAIM.format(m="%s", lock=" FOR UPDATE SKIP LOCKED"),
    "pyformat": _CLAIM.format(m="%s", lock=" FOR UPDATE SKIP LOCKED"),
}


def claim(conn: Connection, system_id: str, now: datetime, limit: int) -> list[AnyRow]:
    """Take up to `limit` due rows of the system for sending, oldest first (in seq order);
    another worker skips rows taken (PostgreSQL) or waits for this transaction (SQLite, one
    writer)."""
    stamp = utc_text(now)
    params = (SENDING, stamp, system_id, PENDING, stamp, limit)
    rows = conn.exec_driver_sql(_CLAIMS[conn.dialect.paramstyle], params).all()
    # RETURNING follows no ORDER BY: the sender keeps the outbox order.
    return sorted(rows, key=_seq)


def _seq(row: AnyRow) -> int:
    return int(row.seq)


def delete_rows(conn: Connection, seqs: Sequence[int]) -> None:
    """Delete these outbox rows (one statement, straight to the driver: the delivery path)."""
    if not seqs:
        return
    if conn.dialect.paramstyle == "qmark":
        marks = ",".join("?" * len(seqs))
        conn.exec_driver_sql(f"DELETE FROM outbox WHERE seq IN ({marks})", tuple(seqs))  # noqa: S608 - markers only
    else:
        conn.exec_driver_sql("DELETE FROM outbox WHERE seq = ANY(%s)", (list(seqs),))


def set_purposes(conn: Connection, changes: Sequence[tuple[int, str]]) -> None:
    for seq, purposes in changes:
        conn.execute(update(outbox).where(outbox.c.seq == seq).values(purposes=purposes))


def reschedule(conn: Connection, changes: Sequence[dict[str, Any]]) -> None:
    """Rows back to pending (or dead) after a failed attempt: seq, status, attempts, next_at,
    last_error per row; only rows still claimed (a deleted system's rows are gone)."""
    for change in changes:
        conn.execute(
            update(outbox)
            .where(outbox.c.seq == change["seq"], outbox.c.status == SENDING)
            .values(
                status=change["status"],
                attempts=change["attempts"],
                next_at=change["next_at"],
                last_error=change["last_error"],
                claimed_at=None,
            )
        )


def release_stale(conn: Connection, before: datetime) -> int:
    """Claims older than `before` (a worker that died mid-send) back to pending."""
    stmt = (
        update(outbox)
        .where(outbox.c.status == SENDING, outbox.c.claimed_at < before)
        .values(status=PENDING, claimed_at=None)
    )
    return int(conn.execute(stmt).rowcount)


def undelivered_of(conn: Connection, subject_id: str) -> Sequence[AnyRow]:
    """The subject's rows not being sent right now (pending or dead), locked for the caller.
    PostgreSQL skips rows a worker is claiming at this moment: that claim decides consent
    again once the caller's change has committed, so waiting for them (and deadlocking with
    the claim, which waits for the subject) gains nothing."""
    stmt = select(outbox.c.seq, outbox.c.system_id, outbox.c.purposes).where(
        outbox.c.subject_id == subject_id, outbox.c.status != SENDING
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return conn.execute(stmt).all()


def counts(conn: Connection, system_id: str) -> dict[str, int]:
    stmt = (
        select(outbox.c.status, func.count())
        .where(outbox.c.system_id == system_id)
        .group_by(outbox.c.status)
    )
    return {row[0]: int(row[1]) for row in conn.execute(stmt)}


def resend(conn: Connection, system_id: str | None, now: datetime) -> int:
    """Dead rows (of one system, or all) back to pending with fresh attempts."""
    stmt = update(outbox).where(outbox.c.status == DEAD)
    if system_id is not None:
        stmt = stmt.where(outbox.c.system_id == system_id)
    return int(conn.execute(stmt.values(status=PENDING, attempts=0, next_at=now)).rowcount)


_INSERT_RECIPIENTS = insert_statements(
    "recipients", ("subject_id", "system_id", "purpose", "first_at"), " ON CONFLICT DO NOTHING"
)


def add_recipients(conn: Connection, triples: set[tuple[str, str, str]], now: str) -> None:
    """Record that each (subject, system, purpose) received data (the first time is kept);
    `now` in UTCTime's text. One executemany straight to the driver (the delivery path)."""
    if triples:
        rows = [(s, y, p, now) for s, y, p in sorted(triples)]
        conn.exec_driver_sql(_INSERT_RECIPIENTS[conn.dialect.paramstyle], rows)


# Never backwards: two workers acknowledging at once may commit in either order (UTCTime's
# text sorts as the time does).
_TOUCH = driver_statements(
    "UPDATE recipients SET last_at = {p} WHERE subject_id = {p} AND system_id = {p} "
    "AND purpose = {p} AND (last_at IS NULL OR last_at < {p})"
)


def touch_recipients(conn: Connection, triples: Sequence[tuple[str, str, str]], now: str) -> None:
    """Record that a delivery to each (subject, system, purpose) was acknowledged `now` (in
    UTCTime's text). One executemany straight to the driver (the delivery path)."""
    if triples:
        rows = [(now, s, y, p, now) for s, y, p in sorted(triples)]
        conn.exec_driver_sql(_TOUCH[conn.dialect.paramstyle], rows)


def recipient_rows(conn: Connection, subject_id: str) -> Sequence[AnyRow]:
    """(system_id, purpose, first_at, last_at) of every recipient of the subject's data."""
    stmt = (
        select(
            recipients.c.system_id,
            recipients.c.purpose,
            recipients.c.first_at,
            recipients.c.last_at,
        )
        .where(recipients.c.subject_id == subject_id)
        .order_by(recipients.c.system_id, recipients.c.purpose)
    )
    return conn.execute(stmt).all()


def acknowledged_notices(conn: Connection, subject_id: str) -> Sequence[AnyRow]:
    """The subject's acknowledged rights notices, in the order they were queued (no sealed
    content)."""
    stmt = (
        select(
            rights_notices.c.notice_id,
            rights_notices.c.system_id,
            rights_notices.c.type,
            rights_notices.c.request_id,
            rights_notices.c.purposes,
            rights_notices.c.acknowledged_at,
        )
        .where(
            rights_notices.c.subject_id == subject_id,
            rights_notices.c.status == ACKNOWLEDGED,
        )
        .order_by(rights_notices.c.seq)
    )
    return conn.execute(stmt).all()


def recipients_of(conn: Connection, subject_id: str) -> dict[str, set[str]]:
    """system_id -> purposes for which the subject's data reached it."""
    stmt = select(recipients.c.system_id, recipients.c.purpose).where(
        recipients.c.subject_id == subject_id
    )
    out: dict[str, set[str]] = {}
    for row in conn.execute(stmt):
        out.setdefault(row.system_id, set()).add(row.purpose)
    return out


def notices_of_type(
    conn: Connection, subject_id: str, kind: str, before: int | None = None
) -> Sequence[AnyRow]:
    """(system_id, purposes, status) of the subject's notices of type `kind`, of those queued
    before the notice numbered `before` when given."""
    stmt = select(
        rights_notices.c.system_id, rights_notices.c.purposes, rights_notices.c.status
    ).where(rights_notices.c.subject_id == subject_id, rights_notices.c.type == kind)
    if before is not None:
        stmt = stmt.where(rights_notices.c.seq < before)
    return conn.execute(stmt).all()


def insert_notices(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(rights_notices), list(rows))


def due_notices(conn: Connection, now: datetime, limit: int) -> Sequence[AnyRow]:
    """Up to `limit` due notices, oldest first, each the oldest pending one of its system and
    subject: a later one (a lifting behind its restriction) waits without taking a place in
    the window, so held-back notices never crowd out those of other systems."""
    older = rights_notices.alias("older")
    ahead = (
        select(older.c.seq)
        .where(
            older.c.system_id == rights_notices.c.system_id,
            older.c.subject_id == rights_notices.c.subject_id,
            older.c.status == PENDING,
            older.c.seq < rights_notices.c.seq,
        )
        .exists()
    )
    stmt = (
        select(rights_notices)
        .where(rights_notices.c.status == PENDING, rights_notices.c.next_at <= now, ~ahead)
        .order_by(rights_notices.c.seq)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=rights_notices, skip_locked=True)
    return conn.execute(stmt).all()


def update_notice(conn: Connection, notice_id: str, **values: Any) -> int:
    stmt = update(rights_notices).where(rights_notices.c.notice_id == notice_id)
    return int(conn.execute(stmt.values(**values)).rowcount)


def retry_notice(conn: Connection, notice_id: str, at: datetime, error: str | None) -> int:
    """A failed send: the notice is due again `at`, unless it was answered meanwhile (by hand)."""
    stmt = update(rights_notices).where(
        rights_notices.c.notice_id == notice_id, rights_notices.c.status == PENDING
    )
    return int(conn.execute(stmt.values(next_at=at, last_error=error)).rowcount)


def get_notice(conn: Connection, notice_id: str) -> AnyRow | None:
    stmt = select(rights_notices).where(rights_notices.c.notice_id == notice_id)
    return conn.execute(stmt).first()


def notices_where(
    conn: Connection, *, request_id: str | None = None, subject_id: str | None = None
) -> Sequence[AnyRow]:
    stmt = select(rights_notices).order_by(rights_notices.c.seq)
    if request_id is not None:
        stmt = stmt.where(rights_notices.c.request_id == request_id)
    if subject_id is not None:
        stmt = stmt.where(rights_notices.c.subject_id == subject_id)
    return conn.execute(stmt).all()


def newly_overdue(conn: Connection, now: datetime) -> Sequence[AnyRow]:
    """Notices past their due time not yet marked overdue; on PostgreSQL locked, skipping
    those another process is marking now (and seeing those it marked as marked), so each is
    marked, and audited, once."""
    stmt = select(rights_notices).where(
        rights_notices.c.status.in_(AWAITING_ACK),
        rights_notices.c.overdue_at.is_(None),
        rights_notices.c.due_at < now,
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return conn.execute(stmt).all()
