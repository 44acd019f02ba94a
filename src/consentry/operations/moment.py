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
# Uses found allowed, with the state and purposes they were decided from and until when the
# answer holds (the first grant it relied on expiring): kept by one read across its chunks.
Allowed = dict[Use, tuple[SubjectConsent, tuple[Purpose, ...], datetime | None]]


def unconsented(
    uses: Iterable[Use],
    states: Mapping[str, SubjectConsent],
    purposes: Mapping[str, Purpose],
    now: datetime,
    allowed: Allowed | None = None,
) -> set[Use]:
    """The (subject_id, purposes) uses some purpose of which the subject does not allow now
    (an unknown subject or purpose allows nothing); each distinct use decided once. With
    `allowed` (one read's, never shared), a use found allowed before from the very same state
    and purpose objects, before its first grant expires, is not decided again."""
    stopped: set[Use] = set()
    seen: set[Use] = set()
    for use in uses:
        if use in seen:
            continue
        seen.add(use)
        subject_id, keys = use
        state = states.get(subject_id)
        if state is None or any(p not in purposes for p in keys):
            stopped.add(use)
            continue
        used = tuple(purposes[p] for p in keys)
        known = allowed.get(use) if allowed is not None else None
        if (
            known is not None
            and known[0] is state
            and all(a is b for a, b in zip(known[1], used, strict=True))
            and (known[2] is None or now < known[2])
        ):
            continue
        if not all(policy.decide(p, state, now).allowed for p in used):
            stopped.add(use)
        elif allowed is not None:
            allowed[use] = (state, used, policy.remember(None, state, {}, None, now).until)
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
