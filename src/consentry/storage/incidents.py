"""SQL for the breach register: incidents, their append-only notifications, and the stored
traces (events, deliveries, recipients, audit entries) an incident's `affected` is counted from."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    and_,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from consentry.storage.engine import AnyRow
from consentry.storage.schema import (
    audit_entries,
    events,
    incident_notifications,
    incidents,
    outbox,
    recipients,
)

OPEN = "open"
CLOSED = "closed"


def insert_incident(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(incidents).values(**values))


def get_incident(conn: Connection, incident_id: str, *, lock: bool = False) -> AnyRow | None:
    stmt = select(incidents).where(incidents.c.incident_id == incident_id)
    if lock:
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()


def list_incidents(
    conn: Connection, *, status: str | None, after: int, limit: int
) -> Sequence[AnyRow]:
    """A page of the register in the order incidents were recorded, after position `after`."""
    stmt = select(incidents).where(incidents.c.seq > after).order_by(incidents.c.seq).limit(limit)
    if status is not None:
        stmt = stmt.where(incidents.c.status == status)
    return conn.execute(stmt).all()


def count_created_since(conn: Connection, since: datetime) -> int:
    stmt = select(func.count()).select_from(incidents).where(incidents.c.created_at >= since)
    return int(conn.execute(stmt).scalar_one())


def created_since(conn: Connection, since: datetime) -> Sequence[AnyRow]:
    stmt = select(incidents).where(incidents.c.created_at >= since).order_by(incidents.c.seq)
    return conn.execute(stmt).all()


def close_incident(conn: Connection, incident_id: str, values: dict[str, Any]) -> bool:
    """Close an open incident (False when it was closed already)."""
    stmt = (
        update(incidents)
        .where(incidents.c.incident_id == incident_id, incidents.c.status == OPEN)
        .values(status=CLOSED, **values)
    )
    return bool(conn.execute(stmt).rowcount == 1)


def count_open(conn: Connection) -> int:
    stmt = select(func.count()).select_from(incidents).where(incidents.c.status == OPEN)
    return int(conn.execute(stmt).scalar_one())


def count_all(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(incidents)).scalar_one())


def next_authority_deadline(conn: Connection, now: datetime) -> datetime | None:
    """The earliest authority deadline of an open incident whose authority had no notice by
    `now` (a passed one included: it is the most urgent)."""
    notified = (
        select(incident_notifications.c.seq)
        .where(
            incident_notifications.c.incident_id == incidents.c.incident_id,
            incident_notifications.c.recipient == "authority",
            incident_notifications.c.at <= now,
        )
        .exists()
    )
    stmt = select(func.min(incidents.c.authority_due_at)).where(
        incidents.c.status == OPEN, incidents.c.authority_due_at.is_not(None), ~notified
    )
    # min() takes its argument's type: the stored text comes back as a time.
    value = conn.execute(stmt).scalar()
    return value if isinstance(value, datetime) else None


def insert_notification(conn: Connection, values: dict[str, Any]) -> None:
    """Notifications are only ever inserted: there is no update or delete of them here."""
    conn.execute(insert(incident_notifications).values(**values))


def notifications_of(conn: Connection, incident_ids: Collection[str]) -> Sequence[AnyRow]:
    if not incident_ids:
        return []
    stmt = (
        select(incident_notifications)
        .where(incident_notifications.c.incident_id.in_(list(incident_ids)))
        .order_by(incident_notifications.c.seq)
    )
    return conn.execute(stmt).all()


def event_subjects(conn: Connection, mask: int | None, start: datetime, end: datetime) -> set[str]:
    """Subjects with events stored for any purpose in `mask` (None: any purpose) that occurred
    or were received within [start, end]."""
    stmt = (
        select(events.c.subject_id)
        .distinct()
        .where(
            or_(
                and_(events.c.occurred_at >= start, events.c.occurred_at <= end),
                and_(events.c.received_at >= start, events.c.received_at <= end),
            )
        )
    )
    if mask is not None:
        bits = cast(literal(mask), BigInteger)
        stmt = stmt.where(events.c.purpose_bits.op("&")(bits) != 0)
    return {str(s) for s in conn.execute(stmt).scalars()}


def outbox_subjects(
    conn: Connection, systems: Collection[str] | None, start: datetime, end: datetime
) -> set[str]:
    """Subjects with deliveries queued within [start, end] (not yet delivered, or given up)
    for these systems (None: for any)."""
    stmt = select(outbox.c.subject_id).distinct()
    stmt = stmt.where(outbox.c.created_at >= start, outbox.c.created_at <= end)
    if systems is not None:
        stmt = stmt.where(outbox.c.system_id.in_(list(systems)))
    return {str(s) for s in conn.execute(stmt).scalars()}


def recipient_subjects(
    conn: Connection, systems: Collection[str] | None, start: datetime, end: datetime
) -> set[str]:
    """Subjects whose data first reached these systems (None: any) within [start, end]."""
    stmt = select(recipients.c.subject_id).distinct()
    stmt = stmt.where(recipients.c.first_at >= start, recipients.c.first_at <= end)
    if systems is not None:
        stmt = stmt.where(recipients.c.system_id.in_(list(systems)))
    return {str(s) for s in conn.execute(stmt).scalars()}


def audit_traces(
    conn: Connection, actions: Collection[str], start: datetime, end: datetime | None
) -> Sequence[AnyRow]:
    """(subject_id, action, details) of the audit entries of these actions about a subject
    within [start, end] (None: any time from `start` on)."""
    stmt = select(
        audit_entries.c.subject_id, audit_entries.c.action, audit_entries.c.details
    ).where(
        audit_entries.c.action.in_(list(actions)),
        audit_entries.c.subject_id.is_not(None),
        audit_entries.c.at >= start,
    )
    if end is not None:
        stmt = stmt.where(audit_entries.c.at <= end)
    return conn.execute(stmt).all()
