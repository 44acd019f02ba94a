"""SQL of data-subject rights work: what access and erasure read, and the deletes that remove
a subject's data (SQLite overwrites deleted content: secure_delete)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    bindparam,
    delete,
    insert,
    select,
    true,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from consentry.storage.engine import AnyRow
from consentry.storage.schema import (
    consent_ledger,
    dsr_state,
    events,
    identities,
    retained,
    subjects,
    token_vault,
    tombstones,
)


def set_subject(conn: Connection, subject_id: str, values: dict[str, Any]) -> None:
    """Change the subject's row and give the change a consent version of its own, so every
    cache and every batch in flight sees it (the consistency rule, DESIGN.md)."""
    conn.execute(
        update(subjects)
        .where(subjects.c.subject_id == subject_id)
        .values(consent_version=subjects.c.consent_version + 1, **values)
    )


def subject_row(conn: Connection, subject_id: str, *, lock: bool = False) -> AnyRow | None:
    stmt = _SUBJECT_LOCKED if lock else _SUBJECT
    return conn.execute(stmt, {"b_subject_id": subject_id}).first()


def identity_rows(conn: Connection, subject_id: str) -> Sequence[AnyRow]:
    return conn.execute(_IDENTITIES, {"b_subject_id": subject_id}).all()


def update_identity(
    conn: Connection, identity_id: int, blind_index: bytes, value_ct: bytes
) -> None:
    conn.execute(
        update(identities)
        .where(identities.c.identity_id == identity_id)
        .values(blind_index=blind_index, value_ct=value_ct)
    )


def ledger_rows(conn: Connection, subject_id: str) -> Sequence[AnyRow]:
    return conn.execute(_LEDGER, {"b_subject_id": subject_id}).all()


# Built once (every request reads them): statements and cache keys are reused.
_SUBJECT = select(subjects).where(subjects.c.subject_id == bindparam("b_subject_id"))
_SUBJECT_LOCKED = _SUBJECT.with_for_update()
_IDENTITIES = (
    select(identities)
    .where(identities.c.subject_id == bindparam("b_subject_id"))
    .order_by(identities.c.identity_id)
)
_LEDGER = (
    select(consent_ledger)
    .where(consent_ledger.c.subject_id == bindparam("b_subject_id"))
    .order_by(consent_ledger.c.version)
)


def event_rows(
    conn: Connection, subject_id: str, *, after_seq: int = 0, limit: int = 1000
) -> Sequence[AnyRow]:
    """A page of the subject's events in storage order (keyset on `seq`)."""
    stmt = (
        select(events)
        .where(events.c.subject_id == subject_id, events.c.seq > after_seq)
        .order_by(events.c.seq)
        .limit(limit)
    )
    return conn.execute(stmt).all()


def access_event_rows(
    conn: Connection, subject_id: str, *, after_seq: int, limit: int
) -> Sequence[AnyRow]:
    """A page of the subject's events for an access report, times as their stored RFC 3339
    text (the report's spelling), keyset on `seq`."""
    return conn.execute(
        _ACCESS_PAGE, {"subject_id": subject_id, "after_seq": after_seq, "limit": limit}
    ).all()


# Built once: the statement and its cache key are reused by every page.
_ACCESS_PAGE = (
    select(
        events.c.seq,
        events.c.event_id,
        events.c.event_type,
        type_coerce(events.c.occurred_at, String).label("occurred_at"),
        type_coerce(events.c.received_at, String).label("received_at"),
        events.c.purposes,
        events.c.properties,
        events.c.sealed,
        events.c.field_purposes,
    )
    .where(events.c.subject_id == bindparam("subject_id"), events.c.seq > bindparam("after_seq"))
    .order_by(events.c.seq)
    .limit(bindparam("limit"))
)


def event_kinds(conn: Connection, subject_id: str) -> Sequence[AnyRow]:
    """The distinct (event_type, purposes) of the subject's events (a categories report)."""
    stmt = (
        select(events.c.event_type, events.c.purposes)
        .where(events.c.subject_id == subject_id)
        .distinct()
    )
    return conn.execute(stmt).all()


def all_event_rows(conn: Connection, subject_id: str, page: int = 1000) -> Iterator[AnyRow]:
    """Every event of the subject, one page in memory at a time."""
    after = 0
    while True:
        rows = event_rows(conn, subject_id, after_seq=after, limit=page)
        yield from rows
        if len(rows) < page:
            return
        after = int(rows[-1].seq)


def events_with_purpose(
    conn: Connection,
    subject_id: str,
    purpose: str,
    *,
    received_by: datetime | None = None,
    after_seq: int,
    limit: int,
) -> Sequence[AnyRow]:
    """The subject's events stored for `purpose` (by `received_by`), a page after
    `after_seq`."""
    stmt = (
        select(
            events.c.seq,
            events.c.event_id,
            events.c.event_type,
            events.c.occurred_at,
            events.c.received_at,
            events.c.purposes,
            events.c.properties,
            events.c.sealed,
            events.c.field_purposes,
        )
        .where(
            events.c.subject_id == subject_id,
            events.c.seq > after_seq,
            true() if received_by is None else events.c.received_at <= received_by,
            # `purposes` is a JSON list of keys; keys never hold a quote.
            events.c.purposes.contains(f'"{purpose}"'),
        )
        .order_by(events.c.seq)
        .limit(limit)
    )
    return conn.execute(stmt).all()


def update_events(conn: Connection, changes: Sequence[dict[str, Any]]) -> None:
    """Each change is `seq` and the columns it sets; one executemany per set of columns."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        columns = tuple(sorted(k for k in change if k != "seq"))
        groups.setdefault(columns, []).append(
            {"b_seq": change["seq"]} | {f"b_{k}": change[k] for k in columns}
        )
    for columns, rows in groups.items():
        stmt = (
            update(events)
            .where(events.c.seq == bindparam("b_seq"))
            .values({k: bindparam(f"b_{k}") for k in columns})
        )
        conn.execute(stmt, rows)


def delete_events_by_seq(conn: Connection, seqs: Sequence[int]) -> int:
    if not seqs:
        return 0
    return int(conn.execute(delete(events).where(events.c.seq.in_(list(seqs)))).rowcount)


def delete_subject_data(conn: Connection, subject_id: str) -> dict[str, int]:
    """Delete the subject's events, vault entries and identities; strip what the ledger
    entries hold about the person (their evidence, re-sealed beforehand when kept)."""
    counts = {
        "events": conn.execute(delete(events).where(events.c.subject_id == subject_id)).rowcount,
        "tokens": conn.execute(
            delete(token_vault).where(token_vault.c.subject_id == subject_id)
        ).rowcount,
        "identities": conn.execute(
            delete(identities).where(identities.c.subject_id == subject_id)
        ).rowcount,
    }
    conn.execute(
        update(consent_ledger)
        .where(consent_ledger.c.subject_id == subject_id, consent_ledger.c.evidence_ct.is_not(None))
        .values(evidence_ct=None)
    )
    return {k: int(v) for k, v in counts.items()}


def insert_retained(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(retained), list(rows))


def retained_rows(conn: Connection, request_id: str) -> Sequence[AnyRow]:
    stmt = select(
        retained.c.retained_id, retained.c.item, retained.c.ground, retained.c.until
    ).where(retained.c.request_id == request_id)
    return conn.execute(stmt.order_by(retained.c.retained_id)).all()


def subject_retained(conn: Connection, subject_id: str) -> Sequence[AnyRow]:
    stmt = select(
        retained.c.request_id, retained.c.item, retained.c.ground, retained.c.until
    ).where(retained.c.subject_id == subject_id)
    return conn.execute(stmt.order_by(retained.c.retained_id)).all()


def insert_tombstones(conn: Connection, hashes: Sequence[bytes], now: datetime) -> None:
    if not hashes:
        return
    rows = [{"tombstone": h, "created_at": now} for h in dict.fromkeys(hashes)]
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(dialect_insert(tombstones).on_conflict_do_nothing(), rows)


def known_tombstones(conn: Connection, hashes: Sequence[bytes]) -> set[bytes]:
    if not hashes:
        return set()
    stmt = select(tombstones.c.tombstone).where(tombstones.c.tombstone.in_(list(hashes)))
    return {bytes(h) for h in conn.execute(stmt).scalars()}


def delete_tombstones(conn: Connection, hashes: Sequence[bytes]) -> int:
    if not hashes:
        return 0
    stmt = delete(tombstones).where(tombstones.c.tombstone.in_(list(hashes)))
    return int(conn.execute(stmt).rowcount)


def counter(conn: Connection, name: str) -> int:
    value = conn.execute(select(dsr_state.c.value).where(dsr_state.c.name == name)).scalar()
    return int(value) if value is not None else 0


def set_counter(conn: Connection, name: str, value: int) -> None:
    done = conn.execute(
        update(dsr_state).where(dsr_state.c.name == name).values(value=value)
    ).rowcount
    if not done:
        conn.execute(insert(dsr_state).values(name=name, value=value))


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
            consent_ledger.c.state.in_(["withdrawn", "denied"]),
        )
        .order_by(consent_ledger.c.entry_id)
        .limit(limit)
    )
    return conn.execute(stmt).all()


def vault_rows(conn: Connection, tokens: Sequence[str]) -> Sequence[AnyRow]:
    """The vault entries of these tokens (an access report shows tokenised values)."""
    if not tokens:
        return []
    stmt = select(token_vault.c.token, token_vault.c.value_ct).where(
        token_vault.c.token.in_(list(tokens))
    )
    return conn.execute(stmt).all()
