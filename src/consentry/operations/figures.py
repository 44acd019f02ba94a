"""Current operational figures read from the database: what `/metrics`, the alerts and the
compliance summary report. Each is a function of (conn, now), returning plain values; every
worker process reads the same ones."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import Connection

from consentry.dsr.deadlines import DUE_SOON, Standing
from consentry.dsr.models import FINAL, PURGE_COUNTER, Status
from consentry.governance import assessments, incidents
from consentry.storage import compliance
from consentry.storage import datamap as datamap_sql
from consentry.storage import operations as sql
from consentry.storage import stream as stream_sql

# A US-CA acknowledgement counts as due when it falls due within this (regs §7021).
ACK_DUE_WITHIN = timedelta(days=1)
# A DPF certification counts as expiring within this.
EXPIRING_WITHIN = timedelta(days=30)
# A processed_without_consent stop keeps its alert firing this long.
PROCESSED_WITHOUT_WINDOW = timedelta(hours=1)
# A recorded incident keeps its `incident_created` alert firing this long.
INCIDENT_CREATED_WINDOW = timedelta(hours=1)
# An authority deadline this close, or passed, raises `incident_deadline_near`.
DEADLINE_NEAR = timedelta(hours=12)
PENDING = "pending"
SENDING = "sending"
DEAD = "dead"
# Request statuses that end a request.
_CLOSED = sorted(s.value for s in FINAL)


def requests_open(conn: Connection) -> dict[str, int]:
    """Open data-subject requests (not completed, rejected or failed) by type."""
    return sql.open_requests_by_type(conn, _CLOSED)


def requests_completed(conn: Connection) -> dict[str, int]:
    """Data-subject requests completed, ever, by type."""
    return sql.requests_by_type_in(conn, [Status.COMPLETED.value])


def requests_overdue(conn: Connection, now: datetime) -> int:
    """Open requests past their due date."""
    return sql.overdue_requests(conn, now, _CLOSED)


def backlog(conn: Connection, now: datetime) -> dict[str, dict[str, int]]:
    """Open requests per type by standing (dsr/deadlines.standing): overdue as
    `requests_overdue` counts them, due within DUE_SOON, or on track."""
    out = {}
    for kind, (late, soon, later) in sorted(
        sql.backlog_counts(conn, now, now + DUE_SOON, _CLOSED).items()
    ):
        out[kind] = {
            Standing.ON_TRACK.value: later,
            Standing.DUE_SOON.value: soon,
            Standing.OVERDUE.value: late,
        }
    return out


def acknowledgements_due(conn: Connection, now: datetime) -> int:
    """Requests (US-CA: those with an `acknowledge_by`) still only received whose
    acknowledgement is due within a day, or was due already."""
    return sql.acknowledgements_due(conn, now + ACK_DUE_WITHIN)


def withdrawal_purge_overdue(conn: Connection, now: datetime, purge_hours: int) -> int:
    """Withdrawals and denials older than the purge deadline that the purge has not passed."""
    return sql.withdrawals_waiting(conn, PURGE_COUNTER, now - timedelta(hours=purge_hours))


def topic_purges_waiting(conn: Connection, now: datetime) -> int:
    """Stream mode: what erasures and withdrawal purges wait for on consented topics (a
    subject's records there not yet past the topic's retention), one per purge and topic."""
    return stream_sql.waiting_count(conn, now)


def rights_acks_overdue(conn: Connection, now: datetime) -> int:
    """Rights notices (purges, withdrawals, rectifications) past their acknowledgement date."""
    return sql.rights_notices_overdue(conn, now)


@dataclass(frozen=True, slots=True)
class Deliveries:
    """Outbox rows per system: waiting or being sent, and dead-lettered."""

    pending: dict[str, int] = field(default_factory=dict)
    dead: dict[str, int] = field(default_factory=dict)


def deliveries(conn: Connection) -> Deliveries:
    """Outbox rows per system, waiting (or being sent) and dead-lettered."""
    pending: dict[str, int] = {}
    dead: dict[str, int] = {}
    for row in sql.outbox_counts(conn):
        into = dead if row.status == DEAD else pending
        into[row.system_id] = into.get(row.system_id, 0) + int(row.n)
    return Deliveries(pending, dead)


def delivery_refusals(conn: Connection) -> dict[str, dict[str, int]]:
    """Events not delivered per system and reason (transfer_blocked, dpa_missing, ...)."""
    return datamap_sql.all_refusals(conn)


def audit_entries(conn: Connection) -> int:
    """Entries in the audit log."""
    return sql.audit_size(conn)


def key_ages(conn: Connection, now: datetime) -> dict[str, float]:
    """Seconds since the master key (as its first use by this database) and the active
    signing key were made; a key not made yet is absent."""
    ages: dict[str, float] = {}
    for name, made in (
        ("master", sql.master_key_first_use(conn)),
        ("signing", sql.active_signing_key_created(conn)),
    ):
        if made is not None:
            ages[name] = max(0.0, (now - made).total_seconds())
    return ages


def keys_due(conn: Connection, now: datetime, rotation_days: int) -> list[str]:
    """The keys due for rotation: older than `rotation_days`."""
    limit = rotation_days * 86_400
    return sorted(k for k, age in key_ages(conn, now).items() if age >= limit)


def dpf_expiring(conn: Connection, now: datetime) -> dict[str, date]:
    """Systems whose Data Privacy Framework certification ends within 30 days, or has ended,
    with its date. (The data map records a DPA as signed or not, without an end date: a
    missing DPA already blocks deliveries, `dpa_missing`.)"""
    limit = (now + EXPIRING_WITHIN).date()
    out: dict[str, date] = {}
    for row in sql.system_definitions(conn):
        until = json.loads(row.definition).get("dpf_certified_until")
        if until and date.fromisoformat(until) <= limit:
            out[row.system_id] = date.fromisoformat(until)
    return out


@dataclass(frozen=True, slots=True)
class Stopped:
    """Deliveries and reads stopped at the moment of use for want of consent: the total, per
    use (`delivery:<system_id>`, `read:<purpose>`), and the latest."""

    total: int = 0
    by_use: dict[str, int] = field(default_factory=dict)
    last_at: datetime | None = None


def processed_without_consent(conn: Connection) -> Stopped:
    by_use: dict[str, int] = {}
    last: datetime | None = None
    for row in sql.processed_without_consent_counts(conn):
        by_use[row.use] = int(row.n)
        last = row.last_at if last is None else max(last, row.last_at)
    return Stopped(sum(by_use.values()), by_use, last)


def processed_without_consent_recent(conn: Connection, now: datetime) -> int:
    """1 when a delivery or a read was stopped within the last hour, else 0."""
    last = processed_without_consent(conn).last_at
    return int(last is not None and now - last <= PROCESSED_WITHOUT_WINDOW)


def incidents_open(conn: Connection) -> int:
    """Open incidents in the breach register."""
    return incidents.open_incidents(conn)


@dataclass(frozen=True, slots=True)
class Misclassified:
    """A field declared non-personal in which ingest found personal data, and redacted it."""

    event_type: str
    field: str
    # Values redacted (a count that only grows).
    n: int
    first_seen_at: datetime
    last_seen_at: datetime


def misclassified(conn: Connection) -> list[Misclassified]:
    """Each field declared non-personal whose values held personal data, most values first."""
    return [Misclassified(*row) for row in compliance.misclassified(conn)]


# A field found holding personal data keeps its `misclassified_values` alert firing this long.
MISCLASSIFIED_ALERT = timedelta(hours=24)


def misclassified_recent(conn: Connection, now: datetime) -> int:
    """Fields declared non-personal in which personal data was found within the last
    MISCLASSIFIED_ALERT."""
    return sum(1 for m in misclassified(conn) if m.last_seen_at >= now - MISCLASSIFIED_ALERT)


def incidents_recorded(conn: Connection) -> int:
    """Incidents ever recorded (a count that only grows)."""
    return incidents.recorded(conn)


def incident_deadline_seconds(conn: Connection, now: datetime) -> float | None:
    """Seconds to the nearest authority deadline of an open incident not yet notified
    (negative once passed); None when no such deadline runs."""
    at = incidents.next_deadline(conn, now)
    return None if at is None else (at - now).total_seconds()


def incidents_created_recent(conn: Connection, now: datetime) -> int:
    """Incidents recorded within the last hour."""
    return incidents.count_created_since(conn, now - INCIDENT_CREATED_WINDOW)


def incident_deadline_near(conn: Connection, now: datetime) -> int:
    """1 when an open incident's notice to the authority is due within 12 hours or overdue."""
    left = incident_deadline_seconds(conn, now)
    return int(left is not None and left < DEADLINE_NEAR.total_seconds())


def assessments_overdue(conn: Connection, now: datetime) -> int:
    """Impact assessments required and not approved for 30 days or more."""
    return assessments.overdue(conn, now)
