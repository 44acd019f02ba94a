"""SQL for compliance status and the summary: current consent, statuses, event counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Insert,
    Table,
    and_,
    case,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from consentry.storage.engine import AnyRow
from consentry.storage.schema import (
    consent_current,
    consent_ledger,
    event_counts,
    subject_status,
    subjects,
)

ERASED = "ERASED"


def _upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: list[str],
    update: dict[str, Any],
    where: Any = None,
) -> None:
    """Insert `rows`, or update the existing ones (`update`, `where` over `excluded`)."""
    if not rows:
        return
    maker = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt: Any = maker(table)
    values = {k: (v(stmt.excluded) if callable(v) else v) for k, v in update.items()}
    conflict: Insert = stmt.on_conflict_do_update(
        index_elements=keys,
        set_=values,
        where=None if where is None else where(stmt.excluded),
    )
    conn.execute(conflict, list(rows))


def set_current(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Ledger entries just appended become their purposes' current state (a newer version
    already there stays)."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: int(r["version"])):
        latest[(row["subject_id"], row["purpose"])] = {
            k: row[k] for k in ("subject_id", "purpose", "state", "expires_at", "version")
        }
    c = consent_current.c
    _upsert(
        conn,
        consent_current,
        list(latest.values()),
        ["subject_id", "purpose"],
        {k: (lambda x, k=k: x[k]) for k in ("state", "expires_at", "version")},
        lambda x: c.version < x.version,
    )


def set_status(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Store statuses (subject_id, status, version, basis, changes_at); one computed at an
    older consent version than the stored one is dropped."""
    s = subject_status.c
    _upsert(
        conn,
        subject_status,
        rows,
        ["subject_id"],
        {k: (lambda x, k=k: x[k]) for k in ("status", "version", "basis", "changes_at")},
        lambda x: s.version <= x.version,
    )


def add_event_counts(conn: Connection, day: str, counts: dict[tuple[str, str], int]) -> None:
    """Add one batch's counts per (outcome, code) to `day`'s."""
    rows = [
        {"day": day, "outcome": outcome, "code": code, "n": n}
        for (outcome, code), n in sorted(counts.items())
        if n
    ]
    _upsert(
        conn,
        event_counts,
        rows,
        ["day", "outcome", "code"],
        {"n": lambda x: event_counts.c.n + x.n},
    )


def _valid(basis: str, now: datetime) -> ColumnElement[bool]:
    s = subject_status.c
    return and_(s.basis == basis, or_(s.changes_at.is_(None), s.changes_at > now))


def stale_statuses(conn: Connection, basis: str, now: datetime, limit: int) -> list[str]:
    """Subjects whose stored status is not valid now (other basis, a grant lapsed since)."""
    s = subject_status.c
    stmt = select(s.subject_id).where(~_valid(basis, now)).limit(limit)
    return list(conn.execute(stmt).scalars())


def status_counts(conn: Connection, basis: str, now: datetime) -> dict[str, int]:
    """Subjects per stored status, of the statuses valid now."""
    s = subject_status.c
    stmt = select(s.status, func.count()).where(_valid(basis, now)).group_by(s.status)
    return {str(status): int(n) for status, n in conn.execute(stmt).all()}


def subject_count(conn: Connection) -> tuple[int, int]:
    """(subjects, of them those with a stored status)."""
    total = conn.execute(select(func.count()).select_from(subjects)).scalar_one()
    rated = conn.execute(select(func.count()).select_from(subject_status)).scalar_one()
    return int(total), int(rated)


def coverage(conn: Connection, now: datetime) -> tuple[list[AnyRow], list[AnyRow]]:
    """(purpose, state, lapsed, n) over every current state, and the same over erased
    subjects only (to take away: an erased subject is no longer counted)."""
    c = consent_current.c
    lapsed = case((and_(c.expires_at.is_not(None), c.expires_at <= now), 1), else_=0).label(
        "lapsed"
    )
    columns = (c.purpose, c.state, lapsed, func.count().label("n"))
    every = select(*columns).group_by(c.purpose, c.state, lapsed)
    erased = (
        select(*columns)
        .join(subject_status, subject_status.c.subject_id == c.subject_id)
        .where(subject_status.c.status == ERASED)
        .group_by(c.purpose, c.state, lapsed)
    )
    return list(conn.execute(every).all()), list(conn.execute(erased).all())


def erased_count(conn: Connection) -> int:
    stmt = select(func.count()).select_from(subject_status).where(subject_status.c.status == ERASED)
    return int(conn.execute(stmt).scalar_one())


def event_totals(conn: Connection, first: str | None, last: str | None) -> list[AnyRow]:
    """(outcome, code, n) summed over the days from `first` to `last` (None: open)."""
    e = event_counts.c
    stmt = select(e.outcome, e.code, func.sum(e.n).label("n")).group_by(e.outcome, e.code)
    return list(conn.execute(_days(stmt, e.day, first, last)).all())


def event_days(conn: Connection, first: str | None, last: str | None) -> list[AnyRow]:
    """(day, outcome, n) per day from `first` to `last`."""
    e = event_counts.c
    stmt = select(e.day, e.outcome, func.sum(e.n).label("n")).group_by(e.day, e.outcome)
    return list(conn.execute(_days(stmt, e.day, first, last)).all())


def first_day(conn: Connection) -> str | None:
    value = conn.execute(select(func.min(event_counts.c.day))).scalar_one_or_none()
    return None if value is None else str(value)


def consent_days(conn: Connection, start: datetime | None, end: datetime | None) -> list[AnyRow]:
    """(day, state, n): ledger entries per day of recording and state, from `start` to
    before `end`."""
    led = consent_ledger.c
    day = func.substr(led.at, literal(1), literal(10)).label("day")
    stmt = select(day, led.state, func.count().label("n")).group_by(day, led.state)
    if start is not None:
        stmt = stmt.where(led.at >= start)
    if end is not None:
        stmt = stmt.where(led.at < end)
    return list(conn.execute(stmt).all())


def _days(stmt: Any, column: Any, first: str | None, last: str | None) -> Any:
    if first is not None:
        stmt = stmt.where(column >= first)
    if last is not None:
        stmt = stmt.where(column <= last)
    return stmt


def unrated(conn: Connection) -> dict[str | None, int]:
    """Subjects with no stored status (never touched by a consent write or mark), counted per
    jurisdiction: all their status depends on."""
    s = subjects.c
    stmt = (
        select(s.jurisdiction, func.count())
        .where(
            ~select(subject_status.c.subject_id)
            .where(subject_status.c.subject_id == s.subject_id)
            .exists()
        )
        .group_by(s.jurisdiction)
    )
    return {None if j is None else str(j): int(n) for j, n in conn.execute(stmt).all()}
