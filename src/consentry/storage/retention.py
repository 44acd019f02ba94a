"""SQL of the retention sweep: its state row (cursor and counts), the candidate events of a
seq window and the restrictions of their subjects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, bindparam, func, insert, or_, select, text, true, update

from consentry.storage.engine import AnyRow
from consentry.storage.schema import events, retention_sweeps, subjects

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


# Built once; on PostgreSQL the rows are locked (a withdrawal purge narrowing one meanwhile
# would be undone by this sweep's update otherwise).
_CANDIDATES = (
    select(
        events.c.seq,
        events.c.event_id,
        events.c.subject_id,
        events.c.occurred_at,
        events.c.received_at,
        events.c.purposes,
        events.c.properties,
        events.c.sealed,
        events.c.field_purposes,
    )
    .where(
        events.c.seq > bindparam("after"),
        events.c.seq <= bindparam("upto"),
        or_(
            events.c.occurred_at <= bindparam("cutoff"),
            events.c.received_at <= bindparam("cutoff"),
        ),
    )
    .order_by(events.c.seq)
    .with_for_update()
)


def candidates(conn: Connection, after: int, upto: int, cutoff: datetime) -> Sequence[AnyRow]:
    """Events of the seq window (after, upto] received or dated by `cutoff`: only those can
    have reached the end of a retention period (the caller decides per purpose)."""
    return conn.execute(_CANDIDATES, {"after": after, "upto": upto, "cutoff": cutoff}).all()


def restrictions(conn: Connection, subject_ids: Sequence[str]) -> dict[str, tuple[bool, str]]:
    """Of these subjects, those under a restriction: (whole subject restricted, the JSON list
    of purposes restricted pending an objection or "")."""
    if not subject_ids:
        return {}
    stmt = (
        select(subjects.c.subject_id, subjects.c.restricted, subjects.c.restricted_purposes)
        .where(
            subjects.c.subject_id.in_(list(subject_ids)),
            or_(subjects.c.restricted == true(), subjects.c.restricted_purposes.is_not(None)),
        )
        .with_for_update(read=True)
    )
    return {
        row.subject_id: (bool(row.restricted), row.restricted_purposes or "")
        for row in conn.execute(stmt)
    }
