"""The last check at the moment of use: right before a delivery is sent or a read returns
rows, every (subject, purposes) use is decided again by consent/policy.py against the state
read in that transaction, apart from the caches and remembered answers the earlier checks
used. It should find nothing; what it finds is stopped (not sent, not shown), counted in
`consentry_processed_without_consent_total` and audited (`consent:processed_without`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import Connection

from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent import policy
from consentry.consent.models import Purpose, SubjectConsent
from consentry.storage import operations as sql

Use = tuple[str, tuple[str, ...]]


def unconsented(
    uses: Iterable[Use],
    states: Mapping[str, SubjectConsent],
    purposes: Mapping[str, Purpose],
    now: datetime,
) -> set[Use]:
    """The (subject_id, purposes) uses some purpose of which the subject does not allow now
    (an unknown subject or purpose allows nothing); each distinct use decided once."""
    stopped: set[Use] = set()
    seen: set[Use] = set()
    for use in uses:
        if use in seen:
            continue
        seen.add(use)
        subject_id, keys = use
        state = states.get(subject_id)
        if state is None or not all(
            p in purposes and policy.decide(purposes[p], state, now).allowed for p in keys
        ):
            stopped.add(use)
    return stopped


def record(
    conn: Connection, use: str, *, events: int, subjects: int, actor: str, now: datetime
) -> None:
    """Count and audit, in the caller's write transaction, `events` of `subjects` stopped at
    the moment of `use` ("delivery:<system_id>" or "read:<purpose>")."""
    sql.count_processed_without_consent(conn, use, events, now)
    audit.record(
        conn,
        AuditAction.CONSENT_PROCESSED_WITHOUT,
        actor=actor,
        details={"use": use, "events": events, "subjects": subjects},
    )
