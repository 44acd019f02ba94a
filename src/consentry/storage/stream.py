"""SQL of the stream mode's marks (which subject's records went to which consented topic, and
when the latest did) and of what erasures and withdrawal purges wait for on those topics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from consentry.storage.dialect import driver_statements
from consentry.storage.engine import AnyRow
from consentry.storage.schema import stream_marks, topic_waits, utc_text

# Upserted; never backwards, either time (UTCTime's text sorts as the time does): replicas
# committing in either order, or under different retentions, leave the latest and the longest.
_MARK = driver_statements(
    "INSERT INTO stream_marks (subject_id, topic, last_at, gone_by) VALUES ({p}, {p}, {p}, {p}) "
    "ON CONFLICT (subject_id, topic) DO UPDATE SET "
    "last_at = CASE WHEN excluded.last_at > stream_marks.last_at "
    "THEN excluded.last_at ELSE stream_marks.last_at END, "
    "gone_by = CASE WHEN excluded.gone_by > stream_marks.gone_by "
    "THEN excluded.gone_by ELSE stream_marks.gone_by END"
)
_EXTEND = driver_statements(
    "UPDATE stream_marks SET gone_by = {p} WHERE subject_id = {p} AND topic = {p} AND gone_by < {p}"
)


def mark(
    conn: Connection,
    pairs: Sequence[tuple[str, str]],
    at: datetime,
    gone_by: Mapping[str, datetime],
) -> None:
    """Record that records of each (subject, topic) went to that topic at `at`, and are gone
    from it by `gone_by[topic]` (under the retention the writer applied to the topic). One
    executemany straight to the driver (the stream's batch path)."""
    if pairs:
        now = utc_text(at)
        rows = [(s, t, now, utc_text(gone_by[t])) for s, t in pairs]
        conn.exec_driver_sql(_MARK[conn.dialect.paramstyle], rows)


def extend(conn: Connection, topic: str, lifetime: timedelta, now: datetime) -> int:
    """The topic's retention was made longer: a record still on it (a mark whose `gone_by` is
    ahead of `now`) stays `lifetime` after its subject's latest record went there, if that is
    later than its `gone_by`; a purge of the subject already waiting for the topic (an
    erasure's, a withdrawal's) waits as long. Returns how many marks moved."""
    stmt = select(stream_marks.c.subject_id, stream_marks.c.last_at, stream_marks.c.gone_by).where(
        stream_marks.c.topic == topic, stream_marks.c.gone_by > now
    )
    rows = []
    moved = []
    for row in conn.execute(stmt):
        until = row.last_at + lifetime
        if until > row.gone_by:
            text = utc_text(until)
            rows.append((text, row.subject_id, topic, text))
            moved.append((until, row.subject_id))
    if rows:
        conn.exec_driver_sql(_EXTEND[conn.dialect.paramstyle], rows)
        waits = topic_waits.c
        conn.execute(
            update(topic_waits)
            .where(
                waits.subject_id == bindparam("s"),
                waits.topic == topic,
                waits.passed_at.is_(None),
                waits.until < bindparam("later"),
            )
            .values(until=bindparam("later")),
            [{"s": subject_id, "later": row_until} for row_until, subject_id in moved],
        )
    return len(rows)


# PostgreSQL: the stream's batches deciding consumers hold it shared, a data map change that
# lets a system join a topic's consumers holds it alone (storage/keys.py and retention.py hold
# their neighbours).
_CONSUMERS_KEY = 7307616772


def hold_consumers(conn: Connection, *, alone: bool) -> None:
    """Until the transaction ends, on PostgreSQL: shared (a stream batch that decides a topic's
    consumers and marks its records), or alone (a system joining them: it waits for the
    batches in flight, whose marks it then reads, and the next batches wait for it and decide
    under the new data map). SQLite's one writer does the same already."""
    if conn.dialect.name == "postgresql":
        call = "pg_advisory_xact_lock" if alone else "pg_advisory_xact_lock_shared"
        conn.exec_driver_sql(f"SELECT {call}({_CONSUMERS_KEY})")


def live_on(conn: Connection, topic: str, now: datetime) -> dict[str, datetime]:
    """subject -> when the last of its records on `topic` is gone, for every subject whose
    records may still be there at `now`."""
    stmt = select(stream_marks.c.subject_id, stream_marks.c.gone_by).where(
        stream_marks.c.topic == topic, stream_marks.c.gone_by > now
    )
    return {row.subject_id: row.gone_by for row in conn.execute(stmt)}


def purges_waiting_on(conn: Connection, topic: str) -> datetime | None:
    """The latest time a purge not yet passed (an erasure's, a withdrawal's) waits for on
    `topic`, or None when none waits."""
    waits = topic_waits.c
    stmt = select(func.max(waits.until)).where(waits.topic == topic, waits.passed_at.is_(None))
    found: datetime | None = conn.execute(stmt).scalar_one_or_none()
    return found


def gone_by_of(conn: Connection, subject_id: str) -> dict[str, datetime]:
    """topic -> when the last of the subject's records there is gone, as its writers said."""
    stmt = select(stream_marks.c.topic, stream_marks.c.gone_by).where(
        stream_marks.c.subject_id == subject_id
    )
    return {row.topic: row.gone_by for row in conn.execute(stmt)}


def delete_marks(conn: Connection, subject_id: str) -> int:
    """Forget the subject's marks (its erasure completed: its records are past retention)."""
    stmt = delete(stream_marks).where(stream_marks.c.subject_id == subject_id)
    return int(conn.execute(stmt).rowcount)


def add_waits(conn: Connection, rows: Sequence[dict[str, object]]) -> None:
    """Waits of `request_id` or `entry_id`, `subject_id`, `topic`, `until`."""
    if rows:
        conn.execute(
            insert(topic_waits),
            [{"request_id": None, "entry_id": None} | dict(r) for r in rows],
        )


def waits_of(conn: Connection, request_id: str) -> Sequence[AnyRow]:
    """(topic, until, passed_at) of what the request waits or waited for, by topic."""
    stmt = (
        select(topic_waits.c.topic, topic_waits.c.until, topic_waits.c.passed_at)
        .where(topic_waits.c.request_id == request_id)
        .order_by(topic_waits.c.topic)
    )
    return conn.execute(stmt).all()


def due(conn: Connection, now: datetime) -> bool:
    """Whether a wait not yet seen to pass has come (a read: most passes find none)."""
    stmt = (
        select(topic_waits.c.seq)
        .where(topic_waits.c.passed_at.is_(None), topic_waits.c.until <= now)
        .limit(1)
    )
    return conn.execute(stmt).first() is not None


def claim_passed(conn: Connection, now: datetime, limit: int) -> Sequence[AnyRow]:
    """Mark at most `limit` waits whose time has come as passed at `now` and return them, by
    seq: (seq, request_id, entry_id, subject_id, topic, until). A claim: the UPDATE keeps
    `passed_at IS NULL` in its own condition, so of two processes passing the same wait (on
    PostgreSQL the second waits for the first's row lock, then reads the row again) only one
    gets it, and audits it."""
    due_seqs = (
        select(topic_waits.c.seq)
        .where(topic_waits.c.passed_at.is_(None), topic_waits.c.until <= now)
        .order_by(topic_waits.c.seq)
        .limit(limit)
        .scalar_subquery()
    )
    stmt = (
        update(topic_waits)
        .where(topic_waits.c.seq.in_(due_seqs), topic_waits.c.passed_at.is_(None))
        .values(passed_at=now)
        .returning(
            topic_waits.c.seq,
            topic_waits.c.request_id,
            topic_waits.c.entry_id,
            topic_waits.c.subject_id,
            topic_waits.c.topic,
            topic_waits.c.until,
        )
    )
    return sorted(conn.execute(stmt).all(), key=lambda row: int(row.seq))


def waiting_count(conn: Connection, now: datetime) -> int:
    """Waits still running at `now`."""
    stmt = (
        select(func.count())
        .select_from(topic_waits)
        .where(topic_waits.c.passed_at.is_(None), topic_waits.c.until > now)
    )
    return int(conn.execute(stmt).scalar_one())
