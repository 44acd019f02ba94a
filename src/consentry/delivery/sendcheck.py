"""The send-time check of a claimed batch: consent, restriction, erasure and the transfer
rules decided again for each row, and the events a receiver may get built from what is left."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec
from sqlalchemy import Connection

from consentry.consent import policy
from consentry.consent.models import Purpose, Remembered, SubjectConsent
from consentry.delivery.outbox import PAYLOAD, Delivered, payload_aad_prefix, visible_now
from consentry.errors import ConsentryError
from consentry.governance import transfers
from consentry.governance.models import Refusal, Region, System
from consentry.keys.envelope import Sealer
from consentry.keys.subject_keys import SubjectKeys
from consentry.storage.engine import AnyRow

# Reasons a row is dropped at send time, beside the Refusal rules.
NO_CONSENT = "no_consent"


# Per (system, subject, purposes): the purposes a row may still be sent for.
Answers = dict[tuple[str, str, str], Remembered[list[str]]]


@dataclass(frozen=True, slots=True)
class Checked:
    """A claimed batch after its check: rows to send with their events, rows to delete
    (with the count per refusal reason), and rows held back (restricted) for later."""

    kept: list[AnyRow]
    events: list[Delivered]
    dropped: list[int]
    held: list[int]
    refused: dict[tuple[str, str], int]


def check(
    conn: Connection,
    system: System,
    rows: Sequence[AnyRow],
    states: dict[str, SubjectConsent],
    purposes: dict[str, Purpose],
    now: datetime,
    exporter: Region,
    subject_keys: SubjectKeys,
    memo: Answers,
) -> Checked:
    """Rows still deliverable now: consent, restriction, erasure and the transfer rules
    are decided again (they may have changed since the event was accepted). `memo` keeps
    consent answers across batches (the caller's, per worker)."""
    kept: list[AnyRow] = []
    events: list[Delivered] = []
    dropped: list[int] = []
    held: list[int] = []
    refused: dict[tuple[str, str], int] = defaultdict(int)
    # Per subject: the transfer rules' answer (None: allowed) and the key (None: erased).
    decided: dict[str, Refusal | None] = {}
    sealers: dict[str, Sealer | None] = {}
    every = list(purposes.values())
    aad = payload_aad_prefix(system.system_id)
    for row in rows:
        subject_id = row.subject_id
        state = states.get(subject_id)
        reason: str | None = NO_CONSENT
        allowed: list[str] = []
        if state is not None:
            if subject_id not in decided:
                decided[subject_id] = transfers.refusal(system, state, every, exporter, now)
            found = decided[subject_id]
            reason = found.value if found is not None else None
        if reason is None and state is not None:
            key = (system.system_id, subject_id, row.purposes)
            known = memo.get(key)
            if known is None or not known.holds(state, purposes, system, now):
                allowed = [
                    p
                    for p in msgspec.json.decode(row.purposes)
                    if p in purposes
                    and p in system.purposes
                    and policy.decide(purposes[p], state, now).allowed
                ]
                known = memo[key] = policy.remember(allowed, state, purposes, system, now)
            allowed = known.value
            if not allowed and policy.delivery_held(state, msgspec.json.decode(row.purposes)):
                # Restricted (Art. 18), or a purpose held while an objection is decided: the
                # row waits, unsent, until the restriction is lifted or the decision made.
                held.append(row.seq)
                continue
            if not allowed:
                reason = NO_CONSENT
        payload = None
        if reason is None:
            if subject_id not in sealers:
                sealers[subject_id] = _sealer(subject_keys, conn, subject_id)
            sealer = sealers[subject_id]
            try:
                if sealer is not None:
                    payload = PAYLOAD.decode(sealer.open(row.payload, aad + row.event_id.encode()))
            except ConsentryError:
                payload = None
        if reason is not None or payload is None:
            # No consent, a refusal, or the subject's key is gone (erased): nothing sent.
            dropped.append(row.seq)
            refused[(system.system_id, reason or NO_CONSENT)] += 1
            continue
        kept.append(row)
        events.append(
            Delivered(
                payload.event_id,
                payload.event_type,
                payload.occurred_at,
                payload.subject_pseudonym,
                allowed,
                visible_now(payload, allowed, policy.sensitive_purposes(allowed, purposes, state)),
            )
        )
    return Checked(kept, events, dropped, held, refused)


def _sealer(subject_keys: SubjectKeys, conn: Connection, subject_id: str) -> Sealer | None:
    """The subject's key; None once destroyed (erased)."""
    try:
        return subject_keys.sealer(conn, subject_id)
    except ConsentryError:
        return None
