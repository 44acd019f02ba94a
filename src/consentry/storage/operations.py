"""SQL for the operational figures (metrics, alerts), the alert states and the count of
deliveries and reads stopped for want of consent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from consentry.storage.consent import WITHDRAWALS
from consentry.storage.delivery import AWAITING_ACK
from consentry.storage.engine import AnyRow
from consentry.storage.schema import (
    alert_states,
    audit_entries,
    consent_ledger,
    dsr_state,
    key_material,
    master_keys,
    outbox,
    processed_without_consent,
    requests,
    rights_notices,
    signing_keys,
    systems,
)


def open_requests_by_type(conn: Connection, closed: Sequence[str]) -> dict[str, int]:
    """Requests whose status is not one of `closed` (the statuses that end one), by type."""
    stmt = (
        select(requests.c.type, func.count())
        .where(requests.c.status.not_in(closed))
        .group_by(requests.c.type)
    )
    return {str(t): int(n) for t, n in conn.execute(stmt).all()}


def requests_by_type_in(conn: Connection, statuses: Sequence[str]) -> dict[str, int]:
    """Requests whose status is one of `statuses`, by type."""
    stmt = (
        select(requests.c.type, func.count())
        .where(requests.c.status.in_(statuses))
        .group_by(requests.c.type)
    )
    return {str(t): int(n) for t, n in conn.execute(stmt).all()}


def overdue_requests(conn: Connection, now: datetime, closed: Sequence[str]) -> int:
    """Open requests (status not in `closed`) past their due date (marked overdue or not yet)."""
    stmt = select(func.count()).where(
        requests.c.status.not_in(closed),
        or_(requests.c.status == "overdue", requests.c.due_at < now),
    )
    return int(conn.execute(stmt).scalar_one())


def backlog_counts(
    conn: Connection, now: datetime, soon: datetime, closed: Sequence[str]
) -> dict[str, tuple[int, int, int]]:
    """Open requests per type: (past their due date as `overdue_requests` counts them, due by
    `soon`, due later)."""
    late = or_(requests.c.status == "overdue", requests.c.due_at < now)
    stmt = (
        select(
            requests.c.type,
            func.count().filter(late),
            func.count().filter(~late, requests.c.due_at <= soon),
            func.count().filter(~late, requests.c.due_at > soon),
        )
        .where(requests.c.status.not_in(closed))
        .group_by(requests.c.type)
    )
    return {str(t): (int(a), int(b), int(c)) for t, a, b, c in conn.execute(stmt)}


def acknowledgements_due(conn: Connection, until: datetime) -> int:
    """Requests still only received whose acknowledgement is due by `until` (or was)."""
    stmt = select(func.count()).where(
        requests.c.status == "received",
        requests.c.acknowledge_by.is_not(None),
        requests.c.acknowledge_by <= until,
    )
    return int(conn.execute(stmt).scalar_one())


def withdrawals_waiting(conn: Connection, counter: str, until: datetime) -> int:
    """Withdrawals and denials recorded up to `until` that the purge (its watermark kept in
    dsr_state under `counter`) has not passed yet."""
    after = select(func.coalesce(func.max(dsr_state.c.value), 0)).where(dsr_state.c.name == counter)
    stmt = select(func.count()).where(
        consent_ledger.c.entry_id > after.scalar_subquery(),
        consent_ledger.c.at <= until,
        consent_ledger.c.state.in_(WITHDRAWALS),
    )
    return int(conn.execute(stmt).scalar_one())


def rights_notices_overdue(conn: Connection, now: datetime) -> int:
    """Rights notices awaiting an acknowledgement past their due date."""
    stmt = select(func.count()).where(
        rights_notices.c.status.in_(AWAITING_ACK), rights_notices.c.due_at < now
    )
    return int(conn.execute(stmt).scalar_one())


def outbox_counts(conn: Connection) -> Sequence[AnyRow]:
    """(system_id, status, count) of every outbox row."""
    stmt = select(outbox.c.system_id, outbox.c.status, func.count().label("n")).group_by(
        outbox.c.system_id, outbox.c.status
    )
    return conn.execute(stmt).all()


def audit_size(conn: Connection) -> int:
    size = conn.execute(select(func.coalesce(func.max(audit_entries.c.idx) + 1, 0))).scalar()
    return int(size or 0)


def active_signing_key_created(conn: Connection) -> datetime | None:
    stmt = select(func.max(signing_keys.c.created_at)).where(signing_keys.c.active.is_(True))
    value: datetime | None = conn.execute(stmt).scalar()
    return value


def master_key_first_use(conn: Connection) -> datetime | None:
    """When the newest key-encryption key not retired came into use (master_keys); for a
    database that has not noted one yet, when the current key first wrapped a named secret."""
    noted = select(func.max(master_keys.c.created_at)).where(master_keys.c.retired_at.is_(None))
    value: datetime | None = conn.execute(noted).scalar()
    if value is None:
        newest = select(key_material.c.kek_id).order_by(key_material.c.created_at.desc()).limit(1)
        stmt = select(func.min(key_material.c.created_at)).where(
            key_material.c.kek_id == newest.scalar_subquery()
        )
        value = conn.execute(stmt).scalar()
    return value


def system_definitions(conn: Connection) -> Sequence[AnyRow]:
    return conn.execute(
        select(systems.c.system_id, systems.c.definition).order_by(systems.c.system_id)
    ).all()


def count_processed_without_consent(conn: Connection, use: str, count: int, now: datetime) -> None:
    """Add `count` to the stops of `use` ("delivery:<system>" or "read:<purpose>"). One upsert:
    two first stops of a use at once both add (an update then an insert would have the second
    insert fail on PostgreSQL)."""
    table = processed_without_consent
    maker = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = maker(table).values(use=use, count=count, last_at=now)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[table.c.use],
            set_={
                "count": table.c["count"] + stmt.excluded["count"],
                "last_at": stmt.excluded.last_at,
            },
        )
    )


def processed_without_consent_counts(conn: Connection) -> Sequence[AnyRow]:
    """(use, n, last_at) of every use stopped at least once."""
    table = processed_without_consent
    return conn.execute(select(table.c.use, table.c["count"].label("n"), table.c.last_at)).all()


def alert_rows(conn: Connection, *, lock: bool = False) -> dict[str, AnyRow]:
    stmt = select(alert_states)
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return {str(row.name): row for row in conn.execute(stmt).all()}


def put_alert(conn: Connection, values: dict[str, Any], *, exists: bool) -> None:
    if exists:
        conn.execute(
            update(alert_states).where(alert_states.c.name == values["name"]).values(**values)
        )
    else:
        conn.execute(insert(alert_states).values(**values))


def claim_alert(conn: Connection, name: str, until: datetime) -> None:
    """The latest change of alert `name` is being sent, by this process, until `until`."""
    conn.execute(
        update(alert_states).where(alert_states.c.name == name).values(claimed_until=until)
    )


def sent_alert(conn: Connection, name: str, status: str, since: datetime) -> None:
    """The change (`status` since `since`) of alert `name` was sent, if the alert still holds
    it: a later change is left to be sent."""
    _of_change(conn, name, status, since, sent=True, claimed_until=None)


def unclaim_alert(conn: Connection, name: str, status: str, since: datetime) -> None:
    """The change (`status` since `since`) of alert `name` free to send again, if the alert
    still holds it: a later change, claimed and sent by another process, is left alone."""
    _of_change(conn, name, status, since, claimed_until=None)


def _of_change(conn: Connection, name: str, status: str, since: datetime, **values: object) -> None:
    conn.execute(
        update(alert_states)
        .where(
            alert_states.c.name == name,
            alert_states.c.status == status,
            alert_states.c.since == since,
        )
        .values(**values)
    )


def lock_alerts(conn: Connection) -> None:
    """Serialise evaluations across processes on PostgreSQL (SQLite's writer lock already
    does): the first row of the table, or the table itself while it is empty."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE alert_states IN SHARE ROW EXCLUSIVE MODE")
