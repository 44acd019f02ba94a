"""Compliance status per subject: the check's reason for each consent-based purpose, the
status policy.py gives them, and the stored copy of it that the summary counts."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from consentry.consent import ledger, policy
from consentry.consent.models import ComplianceStatus, Purpose, Reason, SubjectConsent
from consentry.storage import compliance as sql
from consentry.storage.engine import Store

# Stale statuses computed again per write transaction when the summary reads them.
REFRESH_BATCH = 500


@dataclass(frozen=True, slots=True)
class Compliance:
    subject_id: str
    status: ComplianceStatus
    reasons: dict[str, Reason]
    version: int
    may_ask_again_at: datetime | None
    # The earliest grant expiry after the moment it was assessed: it holds until then.
    changes_at: datetime | None


def assess(
    subject_id: str,
    state: SubjectConsent | None,
    purposes: Mapping[str, Purpose],
    now: datetime,
) -> Compliance:
    """The subject's compliance now, from the same decisions a consent check makes."""
    reasons = policy.compliance_reasons(purposes, state, now)
    status = policy.compliance_status(reasons.values())
    if status is ComplianceStatus.ERASED:
        # What an erased subject had consented to is no longer shown (docs/decisions.md).
        return Compliance(subject_id, status, {}, state.version if state else 0, None, None)
    return Compliance(
        subject_id=subject_id,
        status=status,
        reasons=reasons,
        version=state.version if state else 0,
        may_ask_again_at=policy.may_ask_again_at(purposes.values(), state),
        changes_at=policy.next_expiry(state, now),
    )


def basis(purposes: Mapping[str, Purpose]) -> str:
    """A digest of what statuses depend on beside a subject's state: which purposes there
    are, their legal basis and the CCPA rules that make a never-asked purpose allowed. A
    stored status computed over another digest is computed again."""
    # The registry hands out one mapping per configuration version: digest it once.
    held = _BASIS.get(id(purposes))
    if held is not None and held[0] is purposes:
        return held[1]
    digest = _digest(purposes)
    _BASIS.clear()
    _BASIS[id(purposes)] = (purposes, digest)
    return digest


_BASIS: dict[int, tuple[Mapping[str, Purpose], str]] = {}


def _digest(purposes: Mapping[str, Purpose]) -> str:
    parts = sorted(
        f"{p.key}:{p.legal_basis.value}:{p.us_ca_model.value}:{int(p.sale_or_share)}"
        for p in purposes.values()
    )
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def store(
    conn: Connection, state: SubjectConsent, purposes: Mapping[str, Purpose], now: datetime
) -> None:
    """Keep the status of `state` (just written, in this transaction) for the summary."""
    sql.set_status(conn, [_row(assess(state.subject_id, state, purposes, now), basis(purposes))])


def refresh(
    conn: Connection, subject_ids: list[str], purposes: Mapping[str, Purpose], now: datetime
) -> None:
    """Compute the subjects' stored statuses again from their state in this transaction."""
    digest = basis(purposes)
    rows = [
        _row(assess(subject_id, ledger.load(conn, subject_id), purposes, now), digest)
        for subject_id in subject_ids
    ]
    sql.set_status(conn, rows)


def refresh_stale(store: Store, purposes: Mapping[str, Purpose], now: datetime) -> int:
    """Compute again every stored status not valid at `now` (the purposes changed, or a grant
    lapsed since); returns how many. Each batch in its own short write transaction."""
    digest = basis(purposes)
    done = 0
    while True:
        with store.read() as conn:
            stale = sql.stale_statuses(conn, digest, now, REFRESH_BATCH)
        if not stale:
            return done
        with store.write() as conn:
            refresh(conn, stale, purposes, now)
        done += len(stale)


def _row(c: Compliance, digest: str) -> dict[str, object]:
    return {
        "subject_id": c.subject_id,
        "status": c.status.value,
        "version": c.version,
        "basis": digest,
        "changes_at": c.changes_at,
    }
