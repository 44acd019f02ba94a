"""The consent ledger: append-only entries, a version per subject, and the fold to current state."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent import signals
from consentry.consent.models import (
    AgeBand,
    Intent,
    LedgerEntry,
    Notice,
    Purpose,
    PurposeState,
    Source,
    State,
    SubjectConsent,
)
from consentry.keys.envelope import Sealer
from consentry.operations import counters
from consentry.storage import consent as sql
from consentry.storage import hooks
from consentry.storage.engine import AnyRow

_ACTIONS = {
    State.GRANTED: AuditAction.CONSENT_GRANTED,
    State.DENIED: AuditAction.CONSENT_DENIED,
    State.WITHDRAWN: AuditAction.CONSENT_WITHDRAWN,
    State.EXPIRED: AuditAction.CONSENT_EXPIRED,
}


def fold(
    subject_id: str,
    entries: Iterable[LedgerEntry],
    attributes: AnyRow | None = None,
    base: SubjectConsent | None = None,
) -> SubjectConsent:
    """The current state: per purpose, the entry with the highest version wins. `base`: the
    state before `entries` (all of them newer than it)."""
    purposes: dict[str, PurposeState] = dict(base.purposes) if base else {}
    version = base.version if base else 0
    for entry in sorted(entries, key=lambda e: e.version):
        version = max(version, entry.version)
        purposes[entry.purpose] = PurposeState(
            state=entry.state,
            updated_at=entry.at,
            expires_at=entry.expires_at,
            source=entry.source,
            notice_sha256=entry.notice_sha256,
            explicit=entry.explicit,
        )
    if attributes is None:
        return SubjectConsent(subject_id=subject_id, version=version, purposes=purposes)
    return SubjectConsent(
        subject_id=subject_id,
        version=max(version, int(attributes.consent_version)),
        purposes=purposes,
        jurisdiction=attributes.jurisdiction,
        age_band=AgeBand(attributes.age_band) if attributes.age_band else AgeBand.UNKNOWN,
        gpc=bool(attributes.gpc_opt_out),
        erased=attributes.erasure is not None,
        restricted=bool(attributes.restricted),
        objected=_purpose_set(attributes.objected),
        restricted_purposes=_purpose_set(attributes.restricted_purposes),
        sensitive_limited=bool(attributes.sensitive_limited),
        tcf_vendors=signals.vendor_set(attributes.tcf_vendors),
    )


def _purpose_set(raw: str | None) -> frozenset[str]:
    """A JSON list of purpose keys kept on the subject row (Art. 21 objections)."""
    return frozenset(json.loads(raw)) if raw else frozenset()


def load(conn: Connection, subject_id: str) -> SubjectConsent:
    """The subject's state at the version its row shows now: the fold of the latest entry per
    purpose up to that version. Reading the row first and no entry above its version keeps
    the two reads consistent even when a write commits between them (read committed)."""
    attributes = sql.subject_attributes(conn, subject_id)
    if attributes is None:
        return SubjectConsent(subject_id=subject_id)
    rows = sql.latest_entries(conn, subject_id, int(attributes.consent_version))
    return fold(subject_id, [entry_of(row) for row in rows], attributes)


def append(
    conn: Connection,
    subject_id: str,
    intents: Sequence[Intent],
    purposes: dict[str, Purpose],
    *,
    now: datetime,
    actor: str,
    notice: Notice | None,
    jurisdiction: str | None,
    explicit: bool,
    evidence: dict[str, Any] | None,
    sealer: Sealer | None,
) -> list[LedgerEntry]:
    """Append one entry per intent with consecutive new versions, each audited, dated `now`
    unless the intent names when it took effect (an expiry). `sealer`: the subject's key,
    needed only with evidence.

    Only grants expire (after the purpose's consent_ttl_days); denials and withdrawals never.
    """
    if not intents:
        return []
    first = sql.lock_subject_version(conn, subject_id, len(intents))
    entries: list[LedgerEntry] = []
    rows: list[dict[str, Any]] = []
    for offset, intent in enumerate(intents):
        version = first + offset
        granted = intent.state is State.GRANTED
        purpose = purposes[intent.purpose]
        expires = now + timedelta(days=purpose.consent_ttl_days) if granted else None
        # A denial recorded from a GPC signal was not given against any notice.
        with_notice = None if intent.source is Source.GPC else notice
        entry = LedgerEntry(
            entry_id=0,
            subject_id=subject_id,
            purpose=intent.purpose,
            state=intent.state,
            source=intent.source,
            at=now if intent.at is None else intent.at,
            expires_at=expires,
            version=version,
            notice_id=with_notice.notice_id if with_notice else None,
            notice_version=with_notice.version if with_notice else None,
            notice_sha256=with_notice.sha256 if with_notice else None,
            jurisdiction=jurisdiction,
            explicit=explicit and granted,
            actor=actor,
            evidence=evidence,
        )
        entries.append(entry)
        rows.append(_row(entry, sealer))
    ids = sql.insert_entries(conn, rows)
    stored = [replace(e, entry_id=i) for e, i in zip(entries, ids, strict=True)]
    audit.record_many(
        conn,
        [
            audit.Draft(
                _ACTIONS[entry.state],
                actor,
                subject_id,
                {
                    "entry_id": entry.entry_id,
                    "purpose": entry.purpose,
                    "source": entry.source.value,
                    "version": entry.version,
                    "notice_sha256": entry.notice_sha256,
                },
            )
            for entry in stored
        ],
    )
    hooks.after_commit(conn, _Changes, _Changes()).states.extend(e.state.value for e in stored)
    return stored


class _Changes:
    """A transaction's ledger entries, counted (by state) once it has committed."""

    def __init__(self) -> None:
        self.states: list[str] = []

    def __call__(self) -> None:
        counters.count_changes(self.states)


def vendor_attributes(
    conn: Connection, prior: SubjectConsent, vendors: frozenset[int], actor: str
) -> dict[str, Any]:
    """The subject row's change when a TC string is recorded: its vendor consents replace
    the earlier ones (GPC or an explicit entry winning over its purposes leaves them), audited
    by count and digest (the set itself is on the row). Nothing when they are the same."""
    if vendors == prior.tcf_vendors:
        return {}
    runs = signals.vendor_runs(vendors)
    audit.record(
        conn,
        AuditAction.CONSENT_TCF_VENDORS,
        actor=actor,
        subject_id=prior.subject_id,
        details={"vendors": len(vendors), "sha256": hashlib.sha256(runs.encode()).hexdigest()},
    )
    return {"tcf_vendors": runs}


def history(
    conn: Connection, subject_id: str, sealer: Sealer | None, *, after_version: int, limit: int
) -> list[LedgerEntry]:
    """Entries in version order; evidence opened when the subject's key is given."""
    rows = sql.subject_entries(conn, subject_id, after_version=after_version, limit=limit)
    return [entry_of(row, sealer) for row in rows]


def entry_of(row: AnyRow, sealer: Sealer | None = None) -> LedgerEntry:
    evidence = None
    if sealer is not None and row.evidence_ct is not None:
        raw = sealer.open(bytes(row.evidence_ct), _evidence_aad(row.subject_id, row.version))
        evidence = json.loads(raw)
    return LedgerEntry(
        entry_id=int(row.entry_id),
        subject_id=row.subject_id,
        purpose=row.purpose,
        state=State(row.state),
        source=Source(row.source),
        at=row.at,
        expires_at=row.expires_at,
        version=int(row.version),
        notice_id=row.notice_id,
        notice_version=row.notice_version,
        notice_sha256=row.notice_sha256,
        jurisdiction=row.jurisdiction,
        explicit=bool(row.explicit),
        actor=row.actor,
        evidence=evidence,
    )


def _row(entry: LedgerEntry, sealer: Sealer | None) -> dict[str, Any]:
    evidence_ct = None
    if entry.evidence:
        if sealer is None:
            raise TypeError("evidence is sealed under the subject's key: pass its sealer")
        plain = json.dumps(entry.evidence, sort_keys=True).encode()
        evidence_ct = sealer.seal(plain, _evidence_aad(entry.subject_id, entry.version))
    return {
        "subject_id": entry.subject_id,
        "version": entry.version,
        "purpose": entry.purpose,
        "state": entry.state.value,
        "source": entry.source.value,
        "at": entry.at,
        "expires_at": entry.expires_at,
        "notice_id": entry.notice_id,
        "notice_version": entry.notice_version,
        "notice_sha256": entry.notice_sha256,
        "jurisdiction": entry.jurisdiction,
        "explicit": entry.explicit,
        "actor": entry.actor,
        "evidence_ct": evidence_ct,
    }


def _evidence_aad(subject_id: str, version: int) -> bytes:
    return f"consentry:evidence:{subject_id}:{version}".encode()


def entry_out(e: LedgerEntry) -> dict[str, Any]:
    """An entry as the history endpoint and the access report (Art. 15) show it."""
    return {
        "entry_id": e.entry_id,
        "version": e.version,
        "purpose": e.purpose,
        "state": e.state.value,
        "source": e.source.value,
        "at": clock.rfc3339(e.at),
        "expires_at": clock.rfc3339(e.expires_at) if e.expires_at else None,
        "notice": {"id": e.notice_id, "version": e.notice_version, "sha256": e.notice_sha256}
        if e.notice_id
        else None,
        "jurisdiction": e.jurisdiction,
        "explicit": e.explicit,
        "actor": e.actor,
        "evidence": e.evidence,
    }
