"""SQL for data-subject requests and the counters of their background work."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Update, and_, bindparam, insert, or_, select, update

from consentry.storage.engine import AnyRow
from consentry.storage.schema import dsr_state, requests

# Statuses of requests the runner may have work for.
_ACTIVE = ("verified", "in_progress", "awaiting_downstream", "overdue")


def insert_request(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(requests).values(**values))


# Built once (the hot path of every request step): statement and cache key are reused.
_GET = select(requests).where(requests.c.request_id == bindparam("b_request_id"))
_GET_LOCKED = _GET.with_for_update()
# Updates by the set of columns they change; the sets are few, named in code only.
_UPDATES: dict[tuple[tuple[str, ...], bool], Update] = {}


def get_request(conn: Connection, request_id: str, *, lock: bool = False) -> AnyRow | None:
    return conn.execute(_GET_LOCKED if lock else _GET, {"b_request_id": request_id}).first()


def update_request(
    conn: Connection, request_id: str, values: dict[str, Any], *, step: str | None = None
) -> bool:
    """Change a request; with `step`, only while it is still at that step (False when another
    process moved it on first)."""
    key = (tuple(values), step is not None)
    stmt = _UPDATES.get(key)
    if stmt is None:
        stmt = update(requests).where(requests.c.request_id == bindparam("b_request_id"))
        if step is not None:
            stmt = stmt.where(requests.c.step == bindparam("b_step"))
        stmt = _UPDATES[key] = stmt.values({k: bindparam(f"b_{k}") for k in values})
    params = {f"b_{k}": v for k, v in values.items()} | {"b_request_id": request_id}
    if step is not None:
        params["b_step"] = step
    return bool(conn.execute(stmt, params).rowcount == 1)


def open_requests(
    conn: Connection, subject_id: str, type_: str, open_statuses: Sequence[str]
) -> Sequence[AnyRow]:
    """The subject's open requests of that type, oldest first (duplicate detection)."""
    params = {"b_subject_id": subject_id, "b_type": type_, "b_statuses": list(open_statuses)}
    return conn.execute(_OPEN, params).all()


_OPEN = (
    select(requests)
    .where(
        requests.c.subject_id == bindparam("b_subject_id"),
        requests.c.type == bindparam("b_type"),
        requests.c.status.in_(bindparam("b_statuses", expanding=True)),
    )
    .order_by(requests.c.received_at, requests.c.request_id)
)


def list_requests(
    conn: Connection, *, status: str | None, after: str | None, limit: int
) -> Sequence[AnyRow]:
    stmt = select(requests).order_by(requests.c.request_id).limit(limit)
    if status is not None:
        stmt = stmt.where(requests.c.status == status)
    if after is not None:
        stmt = stmt.where(requests.c.request_id > after)
    return conn.execute(stmt).all()


def backlog(conn: Connection, open_statuses: Sequence[str], limit: int) -> Sequence[AnyRow]:
    """Open requests, the nearest deadline first (the dashboard's backlog)."""
    stmt = (
        select(requests)
        .where(requests.c.status.in_(list(open_statuses)))
        .order_by(requests.c.due_at, requests.c.request_id)
        .limit(limit)
    )
    return conn.execute(stmt).all()


def subject_requests(conn: Connection, subject_id: str) -> Sequence[AnyRow]:
    stmt = (
        select(requests).where(requests.c.subject_id == subject_id).order_by(requests.c.received_at)
    )
    return conn.execute(stmt).all()


def runnable(
    conn: Connection, limit: int = 100, after: tuple[datetime, str] | None = None
) -> list[tuple[datetime, str]]:
    """Requests not yet finished that are verified or waiting for acknowledgements (a
    direct-marketing objection needs no verification), oldest first, a page after `after`
    (the last (received_at, request_id) of the previous page)."""
    stmt = select(requests.c.received_at, requests.c.request_id).where(
        requests.c.status.in_(_ACTIVE),
        or_(requests.c.verified_at.is_not(None), requests.c.step == "notified"),
    )
    if after is not None:
        stmt = stmt.where(
            or_(
                requests.c.received_at > after[0],
                and_(requests.c.received_at == after[0], requests.c.request_id > after[1]),
            )
        )
    stmt = stmt.order_by(requests.c.received_at, requests.c.request_id).limit(limit)
    return [(row.received_at, str(row.request_id)) for row in conn.execute(stmt)]


def past_due(conn: Connection, now: datetime, open_statuses: Sequence[str]) -> list[str]:
    stmt = select(requests.c.request_id).where(
        requests.c.status.in_([s for s in open_statuses if s != "overdue"]),
        requests.c.due_at < now,
    )
    return [str(r) for r in conn.execute(stmt).scalars()]


def clear_notes(conn: Connection, subject_id: str) -> None:
    """Drop the sealed notes of the subject's requests (they may hold identity values)."""
    conn.execute(update(requests).where(requests.c.subject_id == subject_id).values(notes_ct=None))


def counter(conn: Connection, name: str, *, lock: bool = False) -> int:
    """The counter's value (0 before its first set); with `lock`, held until this transaction
    ends (the row made first if need be), so that one transaction at a time, across
    processes, works from it and moves it on."""
    stmt = select(dsr_state.c.value).where(dsr_state.c.name == name)
    if lock and conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "INSERT INTO dsr_state (name, value) VALUES (%s, 0) ON CONFLICT (name) DO NOTHING",
            (name,),
        )
        stmt = stmt.with_for_update()
    value = conn.execute(stmt).scalar()
    return int(value) if value is not None else 0


def set_counter(conn: Connection, name: str, value: int) -> None:
    done = conn.execute(
        update(dsr_state).where(dsr_state.c.name == name).values(value=value)
    ).rowcount
    if not done:
        conn.execute(insert(dsr_state).values(name=name, value=value))
