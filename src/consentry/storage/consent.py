"""SQL for purposes, notices, the consent ledger and the subject's consent attributes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, exists, func, insert, select, update

from consentry.storage import compliance
from consentry.storage.dialect import driver_in, driver_statements
from consentry.storage.engine import AnyRow, Store
from consentry.storage.schema import consent_ledger, dsr_state, notices, purposes, subjects

# What consent decisions need of a subject besides its ledger.
_ATTRIBUTES = (
    subjects.c.subject_id,
    subjects.c.consent_version,
    subjects.c.jurisdiction,
    subjects.c.age_band,
    subjects.c.gpc_opt_out,
    subjects.c.erasure,
    subjects.c.restricted,
    subjects.c.objected,
    subjects.c.restricted_purposes,
    subjects.c.sensitive_limited,
    subjects.c.tcf_vendors,
)
# The hot read of a consent check: the subject's version and the configuration's, in one trip,
# straight to the driver (SQLAlchemy's statement handling costs more than the read itself).
_VERSIONS = driver_statements(
    "SELECT (SELECT consent_version FROM subjects WHERE subject_id = {p}), version "
    "FROM config_state WHERE id = 1"
)


def peek_versions(store: Store, subject_id: str) -> tuple[int | None, int] | None:
    """`versions` without a transaction where the store allows it (SQLite), else None."""
    row = store.peek(_VERSIONS["qmark"], (subject_id,))
    if row is None:
        return None
    return (None if row[0] is None else int(row[0])), int(row[1])


def versions(conn: Connection, subject_id: str) -> tuple[int | None, int]:
    """(the subject's consent version or None when unknown, the configuration version)."""
    consent, config = conn.exec_driver_sql(_VERSIONS[conn.dialect.paramstyle], (subject_id,)).one()
    return (None if consent is None else int(consent)), int(config)


def list_purposes(conn: Connection) -> Sequence[AnyRow]:
    return conn.execute(select(purposes).order_by(purposes.c.key)).all()


def get_purpose(conn: Connection, key: str, *, lock: bool = False) -> AnyRow | None:
    """The purpose's row; `lock`: held until commit, so a concurrent first use cannot lock
    its legal basis between this read and the caller's write."""
    stmt = select(purposes).where(purposes.c.key == key)
    return conn.execute(stmt.with_for_update() if lock else stmt).first()


def purpose_bits(conn: Connection) -> set[int]:
    return {int(bit) for bit in conn.execute(select(purposes.c.bit)).scalars()}


def upsert_purpose(conn: Connection, values: dict[str, Any], exists: bool) -> None:
    if exists:
        conn.execute(update(purposes).where(purposes.c.key == values["key"]).values(**values))
    else:
        conn.execute(insert(purposes).values(**values))


def lock_legal_basis(conn: Connection, keys: Sequence[str]) -> None:
    """Mark purposes as used: from now on their legal basis cannot change."""
    if keys:
        conn.execute(
            update(purposes)
            .where(purposes.c.key.in_(list(keys)), purposes.c.legal_basis_locked.is_(False))
            .values(legal_basis_locked=True)
        )


def get_notice(conn: Connection, notice_id: str, version: str) -> AnyRow | None:
    stmt = select(notices).where(notices.c.notice_id == notice_id, notices.c.version == version)
    return conn.execute(stmt).first()


def newest_notice(conn: Connection, notice_id: str) -> AnyRow | None:
    """The notice's latest version (id, version, sha256, text, purposes)."""
    stmt = (
        select(notices)
        .where(notices.c.notice_id == notice_id)
        .order_by(notices.c.created_at.desc(), notices.c.version.desc())
        .limit(1)
    )
    return conn.execute(stmt).first()


def insert_notice(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(notices).values(**values))


def lock_subject_version(conn: Connection, subject_id: str, count: int) -> int:
    """Reserve `count` consent versions for the subject; returns the first.

    The update takes the subject row's lock, so concurrent writers for one subject queue
    and every ledger entry gets its own version.
    """
    stmt = (
        update(subjects)
        .where(subjects.c.subject_id == subject_id)
        .values(consent_version=subjects.c.consent_version + count)
        .returning(subjects.c.consent_version)
    )
    return int(conn.execute(stmt).scalar_one()) - count + 1


def lock_subject(conn: Connection, subject_id: str) -> None:
    """Take the subject row's lock until commit (PostgreSQL FOR UPDATE; SQLite has one writer)."""
    stmt = select(subjects.c.subject_id).where(subjects.c.subject_id == subject_id)
    conn.execute(stmt.with_for_update())


def set_subject_attributes(conn: Connection, subject_id: str, values: dict[str, Any]) -> None:
    if values:
        conn.execute(update(subjects).where(subjects.c.subject_id == subject_id).values(**values))


def mark_subject(conn: Connection, subject_id: str, values: dict[str, Any]) -> None:
    """Change the subject's row and give the change a consent version of its own, so every
    cache and every batch in flight sees it (the consistency rule, DESIGN.md)."""
    conn.execute(
        update(subjects)
        .where(subjects.c.subject_id == subject_id)
        .values(consent_version=subjects.c.consent_version + 1, **values)
    )


def subject_attributes(conn: Connection, subject_id: str) -> AnyRow | None:
    return conn.execute(_SUBJECT_ATTRIBUTES, {"b_subject_id": subject_id}).first()


def subject_version(conn: Connection, subject_id: str) -> int | None:
    value = conn.execute(_SUBJECT_VERSION, {"b_subject_id": subject_id}).scalar_one_or_none()
    return None if value is None else int(value)


def subject_versions(
    conn: Connection, subject_ids: Sequence[str], *, share: bool
) -> dict[str, int]:
    """Consent versions of the subjects, read under a share lock on PostgreSQL so that no
    withdrawal can commit between this read and the batch's commit (DESIGN.md)."""
    if not subject_ids:
        return {}
    rows = driver_in(
        conn,
        "SELECT subject_id, consent_version FROM subjects WHERE subject_id",
        list(subject_ids),
        " FOR SHARE" if share else "",
    )
    return {row[0]: int(row[1]) for row in rows}


def insert_entries(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Append ledger entries in one statement; returns their ids in the order given."""
    stmt = insert(consent_ledger).returning(consent_ledger.c.entry_id, sort_by_parameter_order=True)
    ids = [int(entry_id) for entry_id in conn.execute(stmt, list(rows)).scalars()]
    compliance.set_current(conn, rows)
    return ids


def latest_entries(conn: Connection, subject_id: str, up_to: int) -> Sequence[AnyRow]:
    """The latest entry of each purpose of the subject among versions up to `up_to`: all a
    fold of the state at that version needs (entries committed later are left out)."""
    return conn.execute(_LATEST, {"b_subject_id": subject_id, "b_up_to": up_to}).all()


# Built once (every consent cache refresh reads them): statements and cache keys are reused.
_SUBJECT_ATTRIBUTES = select(*_ATTRIBUTES).where(subjects.c.subject_id == bindparam("b_subject_id"))
_SUBJECT_VERSION = select(subjects.c.consent_version).where(
    subjects.c.subject_id == bindparam("b_subject_id")
)
_LATEST_VERSIONS = (
    select(consent_ledger.c.purpose, func.max(consent_ledger.c.version).label("version"))
    .where(
        consent_ledger.c.subject_id == bindparam("b_subject_id"),
        consent_ledger.c.version <= bindparam("b_up_to"),
    )
    .group_by(consent_ledger.c.purpose)
    .subquery()
)
_LATEST = (
    select(consent_ledger)
    .join(
        _LATEST_VERSIONS,
        (consent_ledger.c.purpose == _LATEST_VERSIONS.c.purpose)
        & (consent_ledger.c.version == _LATEST_VERSIONS.c.version),
    )
    .where(consent_ledger.c.subject_id == bindparam("b_subject_id"))
    .order_by(consent_ledger.c.version)
)


def subject_entries(
    conn: Connection, subject_id: str, *, after_version: int = 0, limit: int | None = None
) -> Sequence[AnyRow]:
    stmt = (
        select(consent_ledger)
        .where(consent_ledger.c.subject_id == subject_id, consent_ledger.c.version > after_version)
        .order_by(consent_ledger.c.version)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return conn.execute(stmt).all()


def all_entries(conn: Connection, batch: int = 10_000) -> Iterator[AnyRow]:
    """Every ledger entry ordered by subject then version, read in batches (start-up fold)."""
    last: tuple[str, int] = ("", -1)
    while True:
        stmt = (
            select(consent_ledger)
            .where(
                (consent_ledger.c.subject_id > last[0])
                | ((consent_ledger.c.subject_id == last[0]) & (consent_ledger.c.version > last[1]))
            )
            .order_by(consent_ledger.c.subject_id, consent_ledger.c.version)
            .limit(batch)
        )
        rows = conn.execute(stmt).all()
        yield from rows
        if len(rows) < batch:
            return
        last = (rows[-1].subject_id, int(rows[-1].version))


def all_subject_attributes(conn: Connection) -> Sequence[AnyRow]:
    stmt = select(*_ATTRIBUTES).where(subjects.c.consent_version > 0)
    return conn.execute(stmt).all()


# The ledger states the withdrawal purge acts on (and whose backlog the metrics count).
WITHDRAWALS = ("withdrawn", "denied")


def withdrawals_since(
    conn: Connection, after_entry: int, until: datetime, limit: int = 1000
) -> Sequence[AnyRow]:
    """Withdrawals and denials recorded up to `until`, after ledger entry `after_entry`."""
    stmt = (
        select(
            consent_ledger.c.entry_id,
            consent_ledger.c.subject_id,
            consent_ledger.c.purpose,
            consent_ledger.c.at,
        )
        .where(
            consent_ledger.c.entry_id > after_entry,
            consent_ledger.c.at <= until,
            consent_ledger.c.state.in_(WITHDRAWALS),
        )
        .order_by(consent_ledger.c.entry_id)
        .limit(limit)
    )
    return conn.execute(stmt).all()


def strip_evidence(conn: Connection, subject_id: str) -> None:
    """Strip what the subject's ledger entries hold about the person (their evidence, re-sealed
    beforehand when kept); the entries themselves stay (append-only)."""
    conn.execute(
        update(consent_ledger)
        .where(consent_ledger.c.subject_id == subject_id, consent_ledger.c.evidence_ct.is_not(None))
        .values(evidence_ct=None)
    )


# The expiry sweep's place in the ledger: the (expires_at, entry_id) of the last grant it
# handled, in dsr_state beside the other background counters.
_EXPIRY_AT = "consent_expiry_at_us"
_EXPIRY_ENTRY = "consent_expiry_entry"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _superseded(entry: Any) -> Any:
    """A later entry of the same subject and purpose exists (the fold's index answers it)."""
    later = consent_ledger.alias("later")
    return exists().where(
        later.c.subject_id == entry.c.subject_id,
        later.c.purpose == entry.c.purpose,
        later.c.version > entry.c.version,
    )


def due_expiries(
    conn: Connection, after: tuple[datetime, int] | None, now: datetime, limit: int
) -> Sequence[AnyRow]:
    """Grants whose expires_at has come by `now` and that are still their purpose's latest
    entry, after `after` (an (expires_at, entry_id) cursor), in that order: `entry_id`,
    `subject_id`, `purpose`, `expires_at`. Only grants have an expires_at."""
    stmt = select(
        consent_ledger.c.entry_id,
        consent_ledger.c.subject_id,
        consent_ledger.c.purpose,
        consent_ledger.c.expires_at,
    ).where(
        consent_ledger.c.expires_at <= now,
        consent_ledger.c.state == "granted",
        ~_superseded(consent_ledger),
    )
    if after is not None:
        at, entry_id = after
        stmt = stmt.where(
            (consent_ledger.c.expires_at > at)
            | ((consent_ledger.c.expires_at == at) & (consent_ledger.c.entry_id > entry_id))
        )
    stmt = stmt.order_by(consent_ledger.c.expires_at, consent_ledger.c.entry_id).limit(limit)
    return conn.execute(stmt).all()


def expiry_cursor(conn: Connection) -> tuple[datetime, int] | None:
    """Where the expiry sweep stopped: (expires_at, entry_id) of the last grant it handled."""
    stmt = select(dsr_state.c.name, dsr_state.c.value).where(
        dsr_state.c.name.in_([_EXPIRY_AT, _EXPIRY_ENTRY])
    )
    rows = {str(name): int(value) for name, value in conn.execute(stmt)}
    if _EXPIRY_AT not in rows:
        return None
    at = _EPOCH + timedelta(microseconds=int(rows[_EXPIRY_AT]))
    return at, int(rows.get(_EXPIRY_ENTRY, 0))


def set_expiry_cursor(conn: Connection, at: datetime, entry_id: int) -> None:
    for name, value in (
        (_EXPIRY_AT, (at - _EPOCH) // timedelta(microseconds=1)),
        (_EXPIRY_ENTRY, entry_id),
    ):
        done = conn.execute(
            update(dsr_state).where(dsr_state.c.name == name).values(value=value)
        ).rowcount
        if not done:
            conn.execute(insert(dsr_state).values(name=name, value=value))


# Expiry purges held back by a restriction (Art. 18): one dsr_state row per expired entry,
# named by its entry id, valued at the time by which its events were received (µs).
_HELD = "expiry_held:"


def hold_expiry_purge(conn: Connection, entry_id: int, received_by: datetime) -> None:
    """Remember that the purge of expired entry `entry_id` waits for a lifting."""
    value = (received_by - _EPOCH) // timedelta(microseconds=1)
    name = f"{_HELD}{entry_id}"
    if not conn.execute(
        update(dsr_state).where(dsr_state.c.name == name).values(value=value)
    ).rowcount:
        conn.execute(insert(dsr_state).values(name=name, value=value))


def held_expiry_purges(conn: Connection) -> list[tuple[int, str, str, datetime]]:
    """The purges held back: (entry_id, subject_id, purpose, received_by), by entry."""
    stmt = select(dsr_state.c.name, dsr_state.c.value).where(
        dsr_state.c.name.startswith(_HELD, autoescape=True)
    )
    received = {int(str(name)[len(_HELD) :]): int(value) for name, value in conn.execute(stmt)}
    if not received:
        return []
    entries = select(
        consent_ledger.c.entry_id, consent_ledger.c.subject_id, consent_ledger.c.purpose
    ).where(consent_ledger.c.entry_id.in_(sorted(received)))
    return sorted(
        (
            int(row.entry_id),
            str(row.subject_id),
            str(row.purpose),
            _EPOCH + timedelta(microseconds=received[int(row.entry_id)]),
        )
        for row in conn.execute(entries)
    )


def release_expiry_purge(conn: Connection, entry_id: int) -> bool:
    """Forget a held purge; False when another process released it first."""
    stmt = dsr_state.delete().where(dsr_state.c.name == f"{_HELD}{entry_id}")
    return bool(conn.execute(stmt).rowcount)


REPORT_COLUMNS = (
    "entry_id",
    "at",
    "subject_id",
    "purpose",
    "state",
    "source",
    "notice_id",
    "notice_version",
    "jurisdiction",
    "expires_at",
)


def ledger_report(
    conn: Connection,
    *,
    purpose: str | None,
    state: str | None,
    source: str | None,
    start: datetime | None,
    end: datetime | None,
    after: int,
    limit: int,
) -> Sequence[AnyRow]:
    """Ledger entries in entry order after `after`, of those filters (`start` included, `end`
    not), without evidence: REPORT_COLUMNS."""
    c = consent_ledger.c
    stmt = select(*(c[name] for name in REPORT_COLUMNS)).where(c.entry_id > after)
    if purpose is not None:
        stmt = stmt.where(c.purpose == purpose)
    if state is not None:
        stmt = stmt.where(c.state == state)
    if source is not None:
        stmt = stmt.where(c.source == source)
    if start is not None:
        stmt = stmt.where(c.at >= start)
    if end is not None:
        stmt = stmt.where(c.at < end)
    return conn.execute(stmt.order_by(c.entry_id).limit(limit)).all()


def notices_newest_first(conn: Connection) -> Sequence[AnyRow]:
    """Every notice (id, version, sha256, text, purposes), the newest first."""
    stmt = select(notices).order_by(notices.c.created_at.desc(), notices.c.notice_id)
    return conn.execute(stmt).all()
