"""SQL for event schemas and the token vault."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from consentry.storage.dialect import insert_statements
from consentry.storage.engine import AnyRow
from consentry.storage.schema import event_schemas, token_vault


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
    rows = _driver_in(conn, "SELECT event_id FROM events WHERE event_id", list(event_ids))
    return {row[0] for row in rows}


def subject_versions(
    conn: Connection, subject_ids: Sequence[str], *, share: bool
) -> dict[str, int]:
    """Consent versions of the subjects, read under a share lock on PostgreSQL so that no
    withdrawal can commit between this read and the batch's commit (DESIGN.md)."""
    if not subject_ids:
        return {}
    rows = _driver_in(
        conn,
        "SELECT subject_id, consent_version FROM subjects WHERE subject_id",
        list(subject_ids),
        " FOR SHARE" if share else "",
    )
    return {row[0]: int(row[1]) for row in rows}


def _driver_in(conn: Connection, head: str, values: list[str], tail: str = "") -> Sequence[Any]:
    """`head IN (values)tail`, without SQLAlchemy's statement compilation (per batch, a
    statement with a thousand parameters costs more to compile than to run)."""
    if conn.dialect.paramstyle == "qmark":
        sql = f"{head} IN ({','.join('?' * len(values))}){tail}"
        return conn.exec_driver_sql(sql, tuple(values)).all()
    return conn.exec_driver_sql(f"{head} = ANY(%s){tail}", (values,)).all()


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
