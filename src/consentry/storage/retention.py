"""SQL of the retention sweep: its state row (cursor and counts), the candidate events of a
seq window and the restrictions of their subjects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, text, update

from consentry.storage.dialect import driver_in, driver_statements
from consentry.storage.engine import AnyRow
from consentry.storage.schema import RESTRICTED, UTCTime, events, retention_sweeps

# PostgreSQL: one sweep transaction at a time across processes (SQLite has one writer).
_ADVISORY_KEY = 7307616770
COUNTS = ("examined", "deleted", "narrowed", "skipped_restricted")


def lock(conn: Connection) -> None:
    """Serialise sweep transactions across processes, until this transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SELECT pg_advisory_xact_lock({_ADVISORY_KEY})"))


_RUNNING = (
    select(retention_sweeps)
    .where(retention_sweeps.c.finished_at.is_(None))
    .order_by(retention_sweeps.c.sweep_id)
    .limit(1)
)


def running(conn: Connection) -> AnyRow | None:
    """The sweep started and not finished (at most one: sweeps start under `lock`)."""
    return conn.execute(_RUNNING).first()


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


_ADVANCE = (
    update(retention_sweeps)
    .where(retention_sweeps.c.sweep_id == bindparam("id"))
    .values(
        after_seq=bindparam("after"),
        finished_at=bindparam("finished", type_=UTCTime()),
        **{name: retention_sweeps.c[name] + bindparam(f"add_{name}") for name in COUNTS},
    )
)


def advance(
    conn: Connection,
    sweep_id: int,
    after_seq: int,
    counts: dict[str, int],
    finished: datetime | None,
) -> None:
    """Move the cursor and add the counts of the work done in this transaction (one statement
    built once: the sweep runs it hundreds of times)."""
    params = {f"add_{name}": counts.get(name, 0) for name in COUNTS}
    conn.execute(_ADVANCE, {"id": sweep_id, "after": after_seq, "finished": finished, **params})


def get(conn: Connection, sweep_id: int) -> AnyRow | None:
    stmt = select(retention_sweeps).where(retention_sweeps.c.sweep_id == sweep_id)
    return conn.execute(stmt).first()


@dataclass(frozen=True, slots=True)
class Running:
    """Which purposes of an event are still within their retention, by when it started (the
    earlier of occurred_at and receipt, as stored text): `steps` are (cutoff, bits), latest
    cutoff first; an event started after a step's cutoff (and no later step's) keeps those
    purpose bits running; one started by the last cutoff keeps none."""

    steps: tuple[tuple[str, int], ...]

    def case(self) -> tuple[str, list[Any]]:
        """`CASE` giving a stored event's running bits, and its parameters. An event starts
        after a cutoff when both its times do (SQLite's min() of two columns costs some
        microseconds an event, more than the rest of the sweep's statement)."""
        when = "WHEN occurred_at > {p} AND received_at > {p} THEN {p}"
        params: list[Any] = [v for cutoff, bits in self.steps for v in (cutoff, cutoff, bits)]
        return f"CASE {' '.join([when] * len(self.steps))} ELSE 0 END", params


def _spelled(conn: Connection, template: str) -> str:
    return driver_statements(template)[conn.dialect.paramstyle]


def delete_ended(conn: Connection, after: int, upto: int, running: Running) -> int:
    """Delete, in the seq window (after, upto], the events none of whose purposes is still
    running, of subjects under no restriction: one statement, no row read into Python. An
    event with no purpose bits is left to `partly_ended`. On PostgreSQL each row is locked
    and its condition read again should another transaction change it meanwhile."""
    if not running.steps:
        return 0
    case, params = running.case()
    if conn.dialect.name == "postgresql":
        # The window's subjects are held FOR SHARE first (a new statement, so a restriction
        # committed before it is seen by the delete): none is restricted between the two.
        conn.exec_driver_sql(
            "SELECT 1 FROM subjects WHERE subject_id IN"
            " (SELECT subject_id FROM events WHERE seq > %s AND seq <= %s) FOR SHARE",
            (after, upto),
        )
    # The statement's text is constants and markers: values travel as parameters.
    template = (
        "DELETE FROM events WHERE seq > {p} AND seq <= {p} AND purpose_bits <> 0"  # noqa: S608
        f" AND (purpose_bits & {case}) = 0"
        f" AND subject_id NOT IN (SELECT subject_id FROM subjects WHERE {RESTRICTED})"
    )
    sql = _spelled(conn, template)
    return int(conn.exec_driver_sql(sql, (after, upto, *params)).rowcount)


def partly_ended(conn: Connection, after: int, upto: int, running: Running) -> Sequence[Any]:
    """What `delete_ended` left of the window's events with a purpose whose retention ended
    (those keeping other purposes, those of restricted subjects, those without purpose bits),
    as (seq, subject_id, occurred_at, received_at, purposes) with the times in their stored
    text. On PostgreSQL the rows are locked: a withdrawal purge narrowing one meanwhile would
    be undone by the sweep's update otherwise."""
    if not running.steps:
        return []
    case, params = running.case()
    latest = running.steps[0][0]
    template = (
        "SELECT seq, subject_id, occurred_at, received_at, purposes FROM events"  # noqa: S608
        " WHERE seq > {p} AND seq <= {p} AND (occurred_at <= {p} OR received_at <= {p})"
        f" AND (purpose_bits = 0 OR (purpose_bits & ~({case})) <> 0) ORDER BY seq"
    )
    sql = _spelled(conn, template)
    if conn.dialect.name == "postgresql":
        sql += " FOR UPDATE"
    return conn.exec_driver_sql(sql, (after, upto, latest, latest, *params)).all()


_OLD_ENOUGH = driver_statements(
    "SELECT count(*) FROM events"
    " WHERE seq > {p} AND seq <= {p} AND (occurred_at <= {p} OR received_at <= {p})"
)


def old_enough(conn: Connection, after: int, upto: int, cutoff: str) -> int:
    """How many events of the window started by `cutoff` (stored text)."""
    sql = _OLD_ENOUGH[conn.dialect.paramstyle]
    return int(conn.exec_driver_sql(sql, (after, upto, cutoff, cutoff)).scalar() or 0)


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
