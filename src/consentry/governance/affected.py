"""An incident's `affected`: the distinct subjects whose data was stored for or delivered to its
systems in its window, counted from what Consentry stored and sent (events, the outbox, the
record of recipients) and from the audit log, which remembers events purged since."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection

from consentry.audit.events import AuditAction
from consentry.consent.models import Purpose
from consentry.governance.models import System
from consentry.storage import incidents as sql
from consentry.storage.engine import AnyRow
from consentry.subjects.models import SubjectRef
from consentry.subjects.resolve import Subjects

# Audit entries that show a subject's data sent to a system in the window: a rights notice
# carries the subject's pseudonym and the systems told.
SENT = (AuditAction.RIGHTS_NOTICE_QUEUED,)
# Audit entries that show a subject's data stored for a purpose (or in the data directory)
# until then: a withdrawal's or an expiry's purge, an erasure's delete. They still count once
# the events themselves are gone, so a purge counts at or after the window's start, however
# long after its end (the incident is recorded later than the purge, not the window).
PURGED = (
    AuditAction.EVENTS_WITHDRAWAL_PURGED,
    AuditAction.EVENTS_EXPIRY_PURGED,
    AuditAction.SUBJECT_DATA_DELETED,
)
# The start of time for a count without a window (the earliest storable time).
EVER = datetime(1000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Scope:
    """Where and when the incident reached: systems of the data map, Consentry's own data
    directory, a window (None: everything up to now), and the subjects the report names."""

    systems: Sequence[str]
    window: tuple[datetime, datetime] | None
    data_directory: bool
    named: set[str]
    unknown_named: int


def named(conn: Connection, subjects: Subjects, refs: Sequence[SubjectRef]) -> tuple[set[str], int]:
    """Subjects the report names: their ids, and how many references name nobody known here
    (each still a person affected). Nobody is created by naming them."""
    ids = {r.subject_id for r in refs if r.subject_id is not None}
    by_identities = [r for r in refs if r.subject_id is None]
    owners = subjects.known_owners(conn, by_identities) if by_identities else {}
    ids |= {owner for owner in owners.values() if owner is not None}
    unknown = sum(1 for r in by_identities if owners.get(r) is None)
    return ids, unknown


def count(
    conn: Connection,
    systems: Mapping[str, System],
    purposes: Mapping[str, Purpose],
    scope: Scope,
    now: datetime,
) -> int | None:
    """The number of distinct subjects affected; None when the report gives no systems, no
    data directory and no subjects to count from."""
    if not (scope.systems or scope.data_directory or scope.named or scope.unknown_named):
        return None
    found = set(scope.named)
    if scope.systems or scope.data_directory:
        start, end = scope.window or (EVER, now)
        served = {p for s in scope.systems for p in systems[s].purposes}
        mask = 0
        for key in served:
            if key in purposes and purposes[key].bit >= 0:
                mask |= 1 << purposes[key].bit
        if scope.data_directory:
            # Consentry's own store held every stored event, whatever its purpose, and every
            # delivery passed through it.
            found |= sql.event_subjects(conn, None, start, end)
            found |= sql.outbox_subjects(conn, None, start, end)
            found |= sql.recipient_subjects(conn, None, start, end)
        else:
            if mask:
                found |= sql.event_subjects(conn, mask, start, end)
            found |= sql.outbox_subjects(conn, scope.systems, start, end)
            found |= sql.recipient_subjects(conn, scope.systems, start, end)
        sent = sql.audit_traces(conn, [a.value for a in SENT], start, end)
        purged = sql.audit_traces(conn, [a.value for a in PURGED], start, None)
        for row in [*sent, *purged]:
            if _traced(row, set(scope.systems), served, scope.data_directory, end):
                found.add(str(row.subject_id))
    return len(found) + scope.unknown_named


def _traced(
    row: AnyRow, systems: set[str], purposes: set[str], data_directory: bool, end: datetime
) -> bool:
    details = json.loads(row.details)
    if row.action == AuditAction.RIGHTS_NOTICE_QUEUED:
        return bool(systems & set(details.get("systems") or []))
    if row.action in (AuditAction.EVENTS_WITHDRAWAL_PURGED, AuditAction.EVENTS_EXPIRY_PURGED):
        # Events first stored after the window were never in it. A purge recorded without
        # the day (before it was recorded) counts: over-counting is the safer error.
        since = details.get("stored_since")
        if since is not None and datetime.fromisoformat(since) > end:
            return False
        return data_directory or details.get("purpose") in purposes
    # An erasure's delete: the subject's data was in the data directory until then (when it
    # was first stored is not recorded: an erasure after the window counts).
    return data_directory
