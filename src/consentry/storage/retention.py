"""SQL of the retention sweep: its state row (cursor and counts), the candidate events of a
seq window and the restrictions of their subjects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, text, update

from consentry.storage.dialect import driver_in, driver_statements
from consentry.storage.engine import AnyRow
from consentry.storage.schema import events, retention_sweeps, utc_text

# PostgreSQL: one sweep transaction at a time across processes (SQLite has one writer).
_ADVISORY_KEY = 7307616770
COUNTS = ("examined", "deleted", "narrowed", "skipped_restricted")


def lock(conn: Connection) -> None:
    """Serialise sweep transactions across processes, until this transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SELECT pg_advisory_xact_lock({_ADVISORY_KEY})"))


def running(conn: Connection) -> AnyRow | None:
    """The sweep started and not finished (at most one: sweeps start under `lock`)."""
    stmt = (
        select(retention_sweeps)
        .where(retention_sweeps.c.finished_at.is_(None))
        .order_by(retention_sweeps.c.sweep_id)
        .limit(1)
    )
    return conn.execute(stmt).first()


def latest(conn: Connection) -> AnyRow | None:
    """The sweep started last."""
    stmt = select(retention_sweeps).order_by(retention_sweeps.c.sweep_id.desc()).limit(1)
    return conn.execute(stmt).first()


def start(conn: Connection, now: datetime) -> AnyRow:
    """A new sweep over the events stored so far, judged as of `now`."""
    until = conn.execute(select(func.coalesce(func.max(events.c.seq), 0))).scalar()
    values = {
        "started_at": now,
        "as_of": now,
        "until_seq": int(until or 0),
        "after_seq": 0,
        **dict.fromkeys(COUNTS, 0),
    }
    key = conn.execute(insert(retention_sweeps).values(values)).inserted_primary_key
    row = None if key is None else get(conn, int(key[0]))
    if row is None:
        raise LookupError("the sweep just started is not found")
    return row


def advance(
    conn: Connection,
    sweep_id: int,
    after_seq: int,
    counts: dict[str, int],
    finished: datetime | None,
) -> None:
    """Move the cursor and add the counts of the work done in this transaction."""
    col = retention_sweeps.c
    values = {name: col[name] + counts.get(name, 0) for name in COUNTS}
    conn.execute(
        update(retention_sweeps)
        .where(col.sweep_id == sweep_id)
        .values(after_seq=after_seq, finished_at=finished, **values)
    )


def get(conn: Connection, sweep_id: int) -> AnyRow | None:
    stmt = select(retention_sweeps).where(retention_sweeps.c.sweep_id == sweep_id)
    return conn.execute(stmt).first()


_WINDOW = driver_statements(
    "SELECT seq, subject_id, occurred_at, received_at, purposes FROM events"
    " WHERE seq > {p} AND seq <= {p} AND (occurred_at <= {p} OR received_at <= {p})"
    " ORDER BY seq"
)


def window(conn: Connection, after: int, upto: int, cutoff: datetime) -> Sequence[Any]:
    """Events of the seq window (after, upto] received or dated by `cutoff` (only those can
    have reached the end of a retention period), as (seq, subject_id, occurred_at,
    received_at, purposes) with the times in their stored text, whose order is time order:
    the sweep reads a million of them, so nothing is parsed that need not be. On PostgreSQL
    the rows are locked: a withdrawal purge narrowing one meanwhile would be undone by this
    sweep's update otherwise."""
    sql = _WINDOW[conn.dialect.paramstyle]
    if conn.dialect.name == "postgresql":
        sql += " FOR UPDATE"
    text_cutoff = utc_text(cutoff)
    return conn.exec_driver_sql(sql, (after, upto, text_cutoff, text_cutoff)).all()


def full_rows(conn: Connection, seqs: Sequence[int]) -> Sequence[AnyRow]:
    """The events of these seqs with everything a narrowing rewrites."""
    if not seqs:
        return []
    stmt = select(
        events.c.seq,
        events.c.event_id,
        events.c.purposes,
        events.c.properties,
        events.c.sealed,
        events.c.field_purposes,
    ).where(events.c.seq.in_(list(seqs)))
    return conn.execute(stmt).all()


def delete_events(conn: Connection, seqs: Sequence[int]) -> int:
    """Delete the events of these seqs (a statement sent straight to the driver: compiling
    one with thousands of parameters costs more than running it)."""
    if not seqs:
        return 0
    if conn.dialect.paramstyle == "qmark":
        total = 0
        # SQLite allows 32,766 parameters to a statement.
        for start in range(0, len(seqs), 30_000):
            part = tuple(seqs[start : start + 30_000])
            marks = ",".join("?" * len(part))
            total += conn.exec_driver_sql(
                f"DELETE FROM events WHERE seq IN ({marks})",  # noqa: S608 - markers only
                part,
            ).rowcount
        return total
    return int(
        conn.exec_driver_sql("DELETE FROM events WHERE seq = ANY(%s)", (list(seqs),)).rowcount
    )


def restrictions(conn: Connection, subject_ids: Sequence[str]) -> dict[str, tuple[bool, str]]:
    """Of these subjects, those under a restriction: (whole subject restricted, the JSON list
    of purposes restricted pending an objection or ""). Read with FOR SHARE on PostgreSQL, so
    that no restriction commits between this read and the sweep's delete."""
    if not subject_ids:
        return {}
    head = "SELECT subject_id, restricted, restricted_purposes FROM subjects WHERE subject_id"
    tail = " AND (restricted OR restricted_purposes IS NOT NULL)"
    if conn.dialect.name == "postgresql":
        tail += " FOR SHARE"
    rows = driver_in(conn, head, list(subject_ids), tail)
    return {row[0]: (bool(row[1]), row[2] or "") for row in rows}
