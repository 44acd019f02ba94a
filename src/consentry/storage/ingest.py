"""SQL for event schemas, the token vault and stored events."""

from __future__ import annotations

from collections.abc import Sequence
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

from consentry.storage.dialect import driver_in, insert_statements
from consentry.storage.engine import AnyRow
from consentry.storage.schema import event_schemas, events, of_subject, token_vault


def list_schemas(conn: Connection) -> Sequence[AnyRow]:
    return conn.execute(select(event_schemas).order_by(event_schemas.c.event_type)).all()


def get_schema(conn: Connection, event_type: str) -> AnyRow | None:
    stmt = select(event_schemas).where(event_schemas.c.event_type == event_type)
    return conn.execute(stmt).first()


def put_schema(
    conn: Connection, event_type: str, version: int, definition: str, now: datetime, *, exists: bool
) -> None:
    values = {"version": version, "definition": definition, "updated_at": now}
    if exists:
        stmt = update(event_schemas).where(event_schemas.c.event_type == event_type)
        conn.execute(stmt.values(**values))
    else:
        conn.execute(insert(event_schemas).values(event_type=event_type, **values))


def tokens_by_index(conn: Connection, indexes: Sequence[bytes]) -> dict[bytes, str]:
    """The existing token of each value index that has one."""
    if not indexes:
        return {}
    stmt = select(token_vault.c.value_index, token_vault.c.token).where(
        token_vault.c.value_index.in_(list(indexes))
    )
    return {bytes(row.value_index): row.token for row in conn.execute(stmt)}


def insert_tokens(conn: Connection, rows: Sequence[dict[str, object]]) -> None:
    if rows:
        conn.execute(insert(token_vault), list(rows))


def get_token(conn: Connection, token: str) -> AnyRow | None:
    return conn.execute(select(token_vault).where(token_vault.c.token == token)).first()


def stored_event_ids(conn: Connection, event_ids: Sequence[str]) -> set[str]:
    """Which of these event ids are stored already (the hot path: straight to the driver)."""
    if not event_ids:
        return set()
    rows = driver_in(conn, "SELECT event_id FROM events WHERE event_id", list(event_ids))
    return {row[0] for row in rows}


EVENT_COLUMNS = (
    "event_id",
    "event_type",
    "schema_version",
    "occurred_at",
    "received_at",
    "subject_id",
    "purposes",
    "properties",
    "sealed",
    "field_purposes",
    "purpose_bits",
    "subject_key",
)


_INSERT_EVENTS = insert_statements("events", EVENT_COLUMNS)


def insert_events(conn: Connection, rows: Sequence[tuple[object, ...]]) -> None:
    """Insert rows given as tuples in EVENT_COLUMNS order, times already in UTCTime's text.

    The hot path: one executemany straight to the driver, without SQLAlchemy's per-row
    parameter processing (a third of the batch's time otherwise)."""
    if rows:
        conn.exec_driver_sql(_INSERT_EVENTS[conn.dialect.paramstyle], list(rows))


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
    .where(of_subject(bindparam("subject_id"), after_seq=bindparam("after_seq")))
    .order_by(events.c.seq)
    .limit(bindparam("limit"))
)


def event_kinds(conn: Connection, subject_id: str) -> Sequence[AnyRow]:
    """The distinct (event_type, purposes) of the subject's events (a categories report)."""
    stmt = select(events.c.event_type, events.c.purposes).where(of_subject(subject_id)).distinct()
    return conn.execute(stmt).all()


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
            of_subject(subject_id, after_seq=after_seq),
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


def vault_rows(conn: Connection, tokens: Sequence[str]) -> Sequence[AnyRow]:
    """The vault entries of these tokens (an access report shows tokenised values)."""
    if not tokens:
        return []
    stmt = select(token_vault.c.token, token_vault.c.value_ct).where(
        token_vault.c.token.in_(list(tokens))
    )
    return conn.execute(stmt).all()
