"""SQL for data-protection impact assessments: their rows, when they were computed, and the
counts (subjects per purpose, minors among them) they are computed from."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, case, delete, func, insert, select, update

from consentry.storage.compliance import COVERAGE, ERASED, tally_rows
from consentry.storage.engine import AnyRow
from consentry.storage.errors import ConstraintViolation
from consentry.storage.schema import (
    assessment_state,
    assessments,
    consent_current,
    subject_status,
    subjects,
)

# The age bands of minors (consent/models.py AgeBand), and the youngest.
MINOR_BANDS = ("under_13", "13_15", "16_17")
UNDER_13 = "under_13"
APPROVED = "approved"


def state(conn: Connection, *, lock: bool = False) -> AnyRow | None:
    stmt = select(assessment_state).where(assessment_state.c.id == 1)
    if lock:
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()


def put_state(conn: Connection, version: int, now: datetime, *, exists: bool) -> None:
    values = {"config_version": version, "computed_at": now}
    if exists:
        conn.execute(update(assessment_state).where(assessment_state.c.id == 1).values(**values))
    else:
        conn.execute(insert(assessment_state).values(id=1, **values))


def lock_state(conn: Connection) -> AnyRow | None:
    """The state row, locked (created first if absent, so there is a row to lock): one
    computation at a time on PostgreSQL; SQLite's writer lock already does that."""
    row = state(conn, lock=True)
    if row is None:
        # Another process may create it first: then its row is the one locked.
        try:
            with conn.begin_nested():
                put_state(conn, -1, datetime(1970, 1, 1, tzinfo=UTC), exists=False)
        except ConstraintViolation:
            pass
        row = state(conn, lock=True)
    return row


def all_rows(conn: Connection) -> dict[str, AnyRow]:
    rows = conn.execute(select(assessments).order_by(assessments.c.assessment_id)).all()
    return {str(r.assessment_id): r for r in rows}


def get(conn: Connection, assessment_id: str, *, lock: bool = False) -> AnyRow | None:
    stmt = select(assessments).where(assessments.c.assessment_id == assessment_id)
    if lock:
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()


def insert_row(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(assessments).values(**values))


def update_row(conn: Connection, assessment_id: str, values: dict[str, Any]) -> None:
    stmt = update(assessments).where(assessments.c.assessment_id == assessment_id)
    conn.execute(stmt.values(**values))


def delete_rows(conn: Connection, assessment_ids: Collection[str]) -> None:
    if assessment_ids:
        ids = list(assessment_ids)
        conn.execute(delete(assessments).where(assessments.c.assessment_id.in_(ids)))


def overdue(conn: Connection, since: datetime) -> int:
    """Assessments required, not approved, and required since `since` or earlier."""
    a = assessments.c
    stmt = select(func.count()).where(
        a.required.is_(True), a.status != APPROVED, a.required_since <= since
    )
    return int(conn.execute(stmt).scalar_one())


def granted_subjects(conn: Connection) -> dict[str, int]:
    """Per purpose, the subjects whose current state of it is granted (the running tallies:
    a few rows, however many subjects)."""
    out: dict[str, int] = {}
    for scope, name, n in tally_rows(conn, COVERAGE):
        if name == "granted":
            key = scope.removeprefix(COVERAGE)
            out[key] = out.get(key, 0) + n
    return out


def live_subjects(conn: Connection) -> int:
    """Subjects known and not erased."""
    known = conn.execute(select(func.count()).select_from(subjects)).scalar_one()
    erased = conn.execute(
        select(func.count()).select_from(subject_status).where(subject_status.c.status == ERASED)
    ).scalar_one()
    return max(0, int(known) - int(erased))


def minors(conn: Connection) -> tuple[dict[str, tuple[int, int]], tuple[int, int]]:
    """Minors (any minor band, under 13): per purpose among the subjects who granted it, and
    among every subject."""
    s, c = subjects.c, consent_current.c
    young = func.sum(case((s.age_band == UNDER_13, 1), else_=0))
    stmt = (
        select(c.purpose, func.count(), young)
        .join(subjects, s.subject_id == c.subject_id)
        .where(c.state == "granted", s.age_band.in_(MINOR_BANDS))
        .group_by(c.purpose)
    )
    per = {str(p): (int(n), int(u or 0)) for p, n, u in conn.execute(stmt).all()}
    overall = select(s.age_band, func.count()).where(s.age_band.in_(MINOR_BANDS))
    bands = {str(b): int(n) for b, n in conn.execute(overall.group_by(s.age_band)).all()}
    return per, (sum(bands.values()), bands.get(UNDER_13, 0))
