"""SQL for compliance status and the summary: current consent, statuses, event counts."""

from __future__ import annotations

import random
import zlib
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from consentry.storage.engine import AnyRow
from consentry.storage.schema import (
    consent_current,
    consent_ledger,
    event_counts,
    misclassified_values,
    purposes,
    subject_status,
    subjects,
    tallies,
)

ERASED = "ERASED"
COVERAGE = "coverage:"
STATUS = "status:"
CONSENTS = "consents:"


# Built once per dialect and table: building an upsert costs more than running it.
_UPSERTS: dict[tuple[str, str], Any] = {}


def _upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: list[str],
    update: dict[str, Any],
) -> None:
    """Insert `rows`, or update the existing ones (`update`: column -> function of
    `excluded`). One statement per table: a table always takes the same `keys` and `update`."""
    if not rows:
        return
    dialect = conn.dialect.name
    conflict = _UPSERTS.get((dialect, table.name))
    if conflict is None:
        maker = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt: Any = maker(table)
        values = {k: v(stmt.excluded) for k, v in update.items()}
        conflict = _UPSERTS[(dialect, table.name)] = stmt.on_conflict_do_update(
            index_elements=keys, set_=values
        )
    conn.execute(conflict, list(rows))


SHARDS = 8


def shard(subject_id: str) -> int:
    """Which of a count's shards a subject adds to (stable across processes)."""
    return zlib.crc32(subject_id.encode()) % SHARDS


def add_tallies(conn: Connection, deltas: dict[tuple[str, str, int], int]) -> None:
    """Add `deltas` ((scope, name, shard) -> change) to the running counts, in key order so
    that concurrent writers take their row locks in the same order."""
    rows = [
        {"scope": scope, "name": name, "shard": part, "n": n}
        for (scope, name, part), n in sorted(deltas.items())
        if n
    ]
    _upsert(conn, tallies, rows, ["scope", "name", "shard"], {"n": lambda x: tallies.c.n + x.n})


def tally_rows(conn: Connection, prefix: str) -> list[tuple[str, str, int]]:
    """(scope, name, n) summed over shards, of the scopes starting with `prefix`."""
    t = tallies.c
    stmt = (
        select(t.scope, t.name, func.sum(t.n))
        .where(t.scope.startswith(prefix, autoescape=True))
        .group_by(t.scope, t.name)
    )
    return [(str(a), str(b), int(n)) for a, b, n in conn.execute(stmt).all()]


_CURRENT_BEFORE = select(
    consent_current.c.subject_id,
    consent_current.c.purpose,
    consent_current.c.state,
    consent_current.c.version,
).where(consent_current.c.subject_id.in_(bindparam("ids", expanding=True)))
_STATUS_BEFORE = (
    select(
        subject_status.c.subject_id,
        subject_status.c.status,
        subject_status.c.basis,
        subject_status.c.version,
        subject_status.c.changes_at,
    )
    .where(subject_status.c.subject_id.in_(bindparam("ids", expanding=True)))
    .with_for_update()
)


def set_current(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Ledger entries just appended become their purposes' current state (a newer version
    already there stays), and the coverage counts follow, as do the counts of entries per
    day and state. Callers hold the subjects' row
    locks (the ledger's version rule), so the state read here cannot change meanwhile."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: int(r["version"])):
        latest[(row["subject_id"], row["purpose"])] = {
            k: row[k] for k in ("subject_id", "purpose", "state", "expires_at", "version")
        }
    if not latest:
        return
    people = sorted({subject_id for subject_id, _ in latest})
    before = {
        (r.subject_id, r.purpose): r for r in conn.execute(_CURRENT_BEFORE, {"ids": people}).all()
    }
    deltas: dict[tuple[str, str, int], int] = defaultdict(int)
    for row in rows:
        day = CONSENTS + row["at"].astimezone(UTC).date().isoformat()
        deltas[(day, row["state"], shard(row["subject_id"]))] += 1
    changed = []
    for key, row in latest.items():
        old = before.get(key)
        if old is not None and int(old.version) >= int(row["version"]):
            continue
        part = shard(row["subject_id"])
        if old is not None:
            deltas[(COVERAGE + row["purpose"], str(old.state), part)] -= 1
        deltas[(COVERAGE + row["purpose"], row["state"], part)] += 1
        changed.append(row)
    _upsert(
        conn,
        consent_current,
        changed,
        ["subject_id", "purpose"],
        {k: (lambda x, k=k: x[k]) for k in ("state", "expires_at", "version")},
    )
    add_tallies(conn, deltas)


def set_status(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Store statuses (subject_id, status, version, basis, changes_at) and count them; one
    computed at an older consent version than the stored one is dropped, and so is one
    equal to the stored one (its version then stays that of the last change). The stored rows
    are read under their lock (PostgreSQL), so a concurrent writer waits and counts after."""
    if not rows:
        return
    ids = sorted({r["subject_id"] for r in rows})
    before = {r.subject_id: r for r in conn.execute(_STATUS_BEFORE, {"ids": ids}).all()}
    deltas: dict[tuple[str, str, int], int] = defaultdict(int)
    changed = []
    for row in sorted(rows, key=lambda r: str(r["subject_id"])):
        old = before.get(row["subject_id"])
        if old is not None and int(old.version) > int(row["version"]):
            continue
        if old is not None and (old.status, old.basis, old.changes_at) == (
            row["status"],
            row["basis"],
            row["changes_at"],
        ):
            # Unchanged: every version since the stored one has this same status.
            continue
        part = shard(row["subject_id"])
        if old is not None:
            deltas[(STATUS + str(old.basis), str(old.status), part)] -= 1
        deltas[(STATUS + row["basis"], row["status"], part)] += 1
        changed.append(row)
    _upsert(
        conn,
        subject_status,
        changed,
        ["subject_id"],
        {k: (lambda x, k=k: x[k]) for k in ("status", "version", "basis", "changes_at")},
    )
    add_tallies(conn, deltas)


def add_event_counts(conn: Connection, day: str, counts: dict[tuple[str, str], int]) -> None:
    """Add one batch's counts per (outcome, code) to `day`'s, on a shard picked at random."""
    part = random.randrange(SHARDS)  # noqa: S311 - spreads writers, nothing secret
    rows = [
        {"day": day, "outcome": outcome, "code": code, "shard": part, "n": n}
        for (outcome, code), n in sorted(counts.items())
        if n
    ]
    _upsert(
        conn,
        event_counts,
        rows,
        ["day", "outcome", "code", "shard"],
        {"n": lambda x: event_counts.c.n + x.n},
    )


def add_misclassified(conn: Connection, found: dict[tuple[str, str], int], now: datetime) -> None:
    """Add one batch's redacted values per (event type, field) of fields declared
    non-personal (ingest.models.FieldSpec.screened)."""
    rows = [
        {"event_type": t, "field": f, "n": n, "first_seen_at": now, "last_seen_at": now}
        for (t, f), n in sorted(found.items())
    ]
    m = misclassified_values.c
    _upsert(
        conn,
        misclassified_values,
        rows,
        ["event_type", "field"],
        {"n": lambda x: m.n + x.n, "last_seen_at": lambda x: x.last_seen_at},
    )


def misclassified(conn: Connection) -> list[AnyRow]:
    """Every (event type, field) in which personal data was found and redacted: event_type,
    field, n, first_seen_at, last_seen_at, most values first."""
    m = misclassified_values.c
    query = select(m.event_type, m.field, m.n, m.first_seen_at, m.last_seen_at).order_by(
        m.n.desc(), m.event_type, m.field
    )
    return list(conn.execute(query))


def stale_statuses(conn: Connection, basis: str, now: datetime, limit: int) -> list[str]:
    """Subjects whose stored status is not valid now: computed over another basis (looked
    for only when the counts say there are some), or a grant of theirs lapsed since."""
    s = subject_status.c
    lapsed = select(s.subject_id).where(s.changes_at <= now).limit(limit)
    found = list(conn.execute(lapsed).scalars())
    others = sum(n for scope, _, n in tally_rows(conn, STATUS) if scope != STATUS + basis)
    if others > 0 and len(found) < limit:
        other = select(s.subject_id).where(s.basis != basis).limit(limit - len(found))
        found += [i for i in conn.execute(other).scalars() if i not in found]
    return found


def status_counts(conn: Connection, basis: str) -> tuple[dict[str, int], int]:
    """(subjects per stored status over `basis`, subjects with a stored status at all)."""
    counts: dict[str, int] = defaultdict(int)
    rated = 0
    for scope, name, n in tally_rows(conn, STATUS):
        rated += n
        if scope == STATUS + basis:
            counts[name] += n
    return dict(counts), rated


def subject_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(subjects)).scalar_one())


def coverage(conn: Connection, now: datetime) -> tuple[list[tuple[str, str, int]], list[AnyRow]]:
    """((purpose, state, n) counted over every subject, with grants lapsed by `now` counted
    as "expired"; the same as rows (purpose, state, lapsed, n) over erased subjects only,
    to take away: an erased subject is no longer counted)."""
    c = consent_current.c
    out: dict[tuple[str, str], int] = defaultdict(int)
    for scope, name, n in tally_rows(conn, COVERAGE):
        out[(scope.removeprefix(COVERAGE), name)] += n
    stmt = (
        select(c.purpose, func.count())
        .where(c.state == "granted", c.expires_at <= now)
        .group_by(c.purpose)
    )
    for purpose, n in conn.execute(stmt).all():
        out[(str(purpose), "granted")] -= int(n)
        out[(str(purpose), "expired")] += int(n)
    lapsed = case((and_(c.expires_at.is_not(None), c.expires_at <= now), 1), else_=0).label(
        "lapsed"
    )
    erased = (
        select(c.purpose, c.state, lapsed, func.count().label("n"))
        .join(subject_status, subject_status.c.subject_id == c.subject_id)
        .where(subject_status.c.status == ERASED)
        .group_by(c.purpose, c.state, lapsed)
    )
    return [(p, st, n) for (p, st), n in out.items()], list(conn.execute(erased).all())


def reconsent_due(conn: Connection, now: datetime) -> tuple[dict[str, int], int]:
    """Subjects to ask again: per consent purpose, those (not erased) whose current state of
    it is an expiry or a grant lapsed by `now`; and how many subjects that is in all."""
    c = consent_current.c
    erased = exists().where(
        subject_status.c.subject_id == c.subject_id, subject_status.c.status == ERASED
    )
    due = and_(
        or_(c.state == "expired", and_(c.state == "granted", c.expires_at <= now)),
        c.purpose.in_(select(purposes.c.key).where(purposes.c.legal_basis == "consent")),
        ~erased,
    )
    per = conn.execute(select(c.purpose, func.count()).where(due).group_by(c.purpose)).all()
    people = conn.execute(select(func.count(c.subject_id.distinct())).where(due)).scalar_one()
    return {str(p): int(n) for p, n in per}, int(people)


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


def first_consent_day(conn: Connection) -> str | None:
    """The first day a ledger entry was counted for (its `consents:` tally), as text."""
    t = tallies.c
    stmt = select(func.min(t.scope)).where(t.scope.startswith(CONSENTS, autoescape=True))
    value = conn.execute(stmt).scalar_one_or_none()
    return None if value is None else str(value).removeprefix(CONSENTS)


def consent_days(conn: Connection, first: str, last: str) -> list[tuple[str, str, int]]:
    """(day, state, n): ledger entries per day of their time and state, from `first` to
    `last` (days as text), from the running counts."""
    t = tallies.c
    stmt = (
        select(t.scope, t.name, func.sum(t.n))
        .where(t.scope >= CONSENTS + first, t.scope <= CONSENTS + last)
        .group_by(t.scope, t.name)
    )
    return [
        (str(scope).removeprefix(CONSENTS), str(name), int(n))
        for scope, name, n in conn.execute(stmt).all()
    ]


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


_LOADABLE = {
    t.name: t
    for t in (subjects, consent_ledger, consent_current, subject_status, event_counts, tallies)
}


def load_rows(conn: Connection, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows as they are into one of the tables the summary reads (the benchmark loads
    a large store directly; the product writes them through the functions above)."""
    if rows:
        conn.execute(_LOADABLE[table].insert(), list(rows))
