"""Consent propagation (API.md, Data map and delivery): every ledger change of a purpose a
system serves becomes, in the transaction that writes it, a signed `consent_updated` rights
notice to each system asking for consent events, through the delivery gates; the notice
worker sends a system's notices about one subject strictly in the order they were queued."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent import policy
from consentry.consent.models import LedgerEntry, Purpose, State, SubjectConsent
from consentry.delivery.outbox import record_refusals
from consentry.dsr.models import NoticeKind
from consentry.governance import transfers
from consentry.governance.models import Refusal, Region, System
from consentry.storage import delivery as sql
from consentry.storage.engine import AnyRow

# A consent_updated whose every purpose a gate withheld at send time: never sent, and no
# longer holding back the notices queued after it.
WITHHELD = "withheld"


def changes(entries: Sequence[LedgerEntry]) -> tuple[dict[str, str], int]:
    """Per purpose the state the change leaves it in (its latest entry), and the subject's
    ledger version after it (the highest entry version)."""
    states: dict[str, str] = {}
    for entry in sorted(entries, key=lambda e: e.version):
        states[entry.purpose] = entry.state.value
    return states, max((e.version for e in entries), default=0)


def queue_updates(
    conn: Connection,
    systems: Mapping[str, System],
    state: SubjectConsent,
    entries: Sequence[LedgerEntry],
    purposes: Mapping[str, Purpose],
    exporter: Region,
    *,
    actor: str,
) -> list[str]:
    """Queue, in the caller's (the ledger write's) transaction, a `consent_updated` to every
    system with `consent_events` serving a purpose of `entries` (a ledger change of any state:
    granted, denied, withdrawn, expired), naming only the purposes it serves; `state` is the
    subject's after the change. A gate that refuses the subject's data to a system (transfer,
    DPA, sale or share, TCF vendor) keeps the grants from it, counted and audited as a refused
    delivery; its denials, withdrawals and expiries still go if the system already holds the
    subject's data. Returns the ids of the systems a notice was queued to."""
    changed, version = changes(entries)
    if not changed:
        return []
    now = clock.now()
    every = list(purposes.values())
    holders: set[str] | None = None
    refused: dict[tuple[str, str], int] = defaultdict(int)
    rows: list[dict[str, Any]] = []
    for system_id, system in sorted(systems.items()):
        if not system.consent_events or system.rights_endpoint is None:
            continue
        served = {p: s for p, s in changed.items() if p in system.purposes}
        if not served:
            continue
        gate = transfers.refusal(system, state, every, exporter, now)
        if gate is not None:
            if holders is None:
                holders = holders_of(conn, state.subject_id)
            passing = _through(served, system_id in holders)
            if passing != served:
                refused[(system_id, gate.value)] += 1
            served = passing
        if not served:
            continue
        rows.append(
            {
                "notice_id": "rn_" + uuid.uuid4().hex,
                "system_id": system_id,
                "subject_id": state.subject_id,
                "type": NoticeKind.CONSENT_UPDATED.value,
                "request_id": None,
                "purposes": json.dumps(served, sort_keys=True),
                "forward": False,
                "status": sql.PENDING,
                "attempts": 0,
                "next_at": now,
                "created_at": now,
                "due_at": now + timedelta(hours=system.ack_hours),
                "sealed": None,
                "version": version,
            }
        )
    sql.insert_notices(conn, rows)
    if rows:
        audit.record(
            conn,
            AuditAction.RIGHTS_NOTICE_QUEUED,
            actor=actor,
            subject_id=state.subject_id,
            details={
                "type": NoticeKind.CONSENT_UPDATED.value,
                "request_id": None,
                "systems": [r["system_id"] for r in rows],
                "version": version,
            },
        )
    if refused:
        record_refusals(conn, refused)
    return [str(r["system_id"]) for r in rows]


def holders_of(conn: Connection, subject_id: str, before: int | None = None) -> set[str]:
    """The systems that hold the subject's data: those its events reached, and those sent (or
    being sent: queued, not withheld) a `consent_updated` of the subject carrying a grant,
    which names the subject by its pseudonym; of the notices queued before the notice
    numbered `before` when given (at send time, what went before it in ledger order)."""
    held = set(sql.recipients_of(conn, subject_id))
    for row in sql.notices_of_type(conn, subject_id, NoticeKind.CONSENT_UPDATED.value, before):
        if row.status != WITHHELD and State.GRANTED.value in json.loads(row.purposes).values():
            held.add(str(row.system_id))
    return held


def _through(served: Mapping[str, str], holds_data: bool) -> dict[str, str]:
    """What of an update passes a gate that refuses the subject's data to the system."""
    return {
        p: s
        for p, s in served.items()
        if policy.update_reaches(s, gate_refuses=True, holds_data=holds_data)
    }


@dataclass(frozen=True, slots=True)
class Gates:
    """The delivery gates decided again when a `consent_updated` is about to be sent, as a
    delivery's are: a system whose DPA lapsed, or whose DPF certification ran out, since the
    update was queued gets no grant from it."""

    state_of: Callable[[Connection, str], SubjectConsent]
    purposes_of: Callable[[Connection], Mapping[str, Purpose]]
    exporter: Region

    def passing(
        self, conn: Connection, row: AnyRow, system: System, now: datetime
    ) -> tuple[dict[str, str], Refusal | None]:
        """What of the queued update may go now, and the refusal that withheld the rest
        (None when nothing was withheld)."""
        served: dict[str, str] = json.loads(row.purposes)
        every = list(self.purposes_of(conn).values())
        state = self.state_of(conn, row.subject_id)
        gate = transfers.refusal(system, state, every, self.exporter, now)
        if gate is None:
            return served, None
        holds = system.system_id in holders_of(conn, row.subject_id, before=row.seq)
        passing = _through(served, holds)
        return passing, (gate if passing != served else None)
