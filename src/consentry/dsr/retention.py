"""What an erasure keeps: each item re-sealed under the retention key with its legal ground
and end date (API.md, Erasure), before the subject's data key is destroyed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.consent import ledger
from consentry.consent.models import LedgerEntry, LegalBasis, Purpose
from consentry.ingest import sealing
from consentry.keys.envelope import Sealer
from consentry.storage import consent as consent_sql
from consentry.storage import ingest as events_sql
from consentry.storage import retained as retained_sql
from consentry.storage.engine import AnyRow
from consentry.subjects.models import Jurisdiction

# Grounds (API.md): Art. 17(3)(b) a legal obligation, 17(3)(e) legal claims, an ongoing
# contract; for US-CA the §1798.105(d) paragraphs of the same reasons.
ART17_3_B = "art17_3_b"
ART17_3_E = "art17_3_e"
CONTRACT_ONGOING = "contract_ongoing"
CCPA_GROUNDS = {
    ART17_3_B: "1798.105(d)(8)",  # to comply with a legal obligation
    ART17_3_E: "1798.105(d)(8)",  # proof kept for legal claims is itself a legal duty
    CONTRACT_ONGOING: "1798.105(d)(1)",  # to perform a contract with the consumer
}


@dataclass(frozen=True, slots=True)
class Kept:
    item: str
    ground: str
    until: datetime
    payload: dict[str, Any]
    count: int = 1
    # The purpose that keeps it, and for art17_3_b the legal obligation it names.
    purpose: str | None = None
    obligation: str | None = None


def ground_for(ground: str, jurisdiction: str) -> str:
    return CCPA_GROUNDS[ground] if jurisdiction == Jurisdiction.US_CA.value else ground


def plan(
    conn: Connection,
    subject_id: str,
    sealer: Sealer,
    purposes: dict[str, Purpose],
    *,
    proof_days: int,
    jurisdiction: str,
    identities: list[dict[str, str]],
) -> list[Kept]:
    """The items to keep, read (and opened) under the subject's key while it still exists."""
    now = clock.now()
    kept: list[Kept] = []
    rows = consent_sql.subject_entries(conn, subject_id)
    if rows:
        entries = [_entry(ledger.entry_of(row, sealer)) for row in rows]
        hashes = sorted({i["blind_index"] for i in identities})
        kept.append(
            Kept(
                "consent_proof",
                ground_for(ART17_3_E, jurisdiction),
                now + timedelta(days=proof_days),
                {"entries": entries, "identity_hashes": hashes},
                len(entries),
            )
        )
    obligations = {
        k: p for k, p in purposes.items() if p.legal_basis is LegalBasis.LEGAL_OBLIGATION
    }
    for key, purpose in sorted(obligations.items()):
        after = 0
        while True:
            page = events_sql.events_with_purpose(
                conn, subject_id, key, after_seq=after, limit=1000
            )
            for row in page:
                kept.append(_event(row, sealer, purpose, jurisdiction))
            if len(page) < 1000:
                break
            after = int(page[-1].seq)
    for key, purpose in sorted(purposes.items()):
        basis = purpose.legal_basis
        if not purpose.retain_identities or not identities:
            continue
        if basis not in {LegalBasis.LEGAL_OBLIGATION, LegalBasis.CONTRACT}:
            continue
        # Only a purpose that processed the person's data (a contract with them, an
        # obligation about them) is a ground to keep who they are.
        if not events_sql.events_with_purpose(conn, subject_id, key, after_seq=0, limit=1):
            continue
        ground = ART17_3_B if basis is LegalBasis.LEGAL_OBLIGATION else CONTRACT_ONGOING
        values = [{"type": i["type"], "value": i["value"]} for i in identities]
        kept.append(
            Kept(
                f"identities:{key}",
                ground_for(ground, jurisdiction),
                now + timedelta(days=purpose.retention_days),
                {"purpose": key, "identities": values},
                len(values),
                key,
                _obligation(purpose) if ground == ART17_3_B else None,
            )
        )
    return kept


def retention_ends(occurred_at: datetime, received_at: datetime, purpose: Purpose) -> datetime:
    """When an event's retention for `purpose` ends: `retention_days` after the earlier of
    its occurred_at and its receipt (API.md, Retention), so that no client's clock, set late,
    keeps an event longer."""
    return min(occurred_at, received_at) + timedelta(days=purpose.retention_days)


def retention_cutoff(as_of: datetime, purpose: Purpose) -> datetime:
    """The latest start (the earlier of occurred_at and receipt) whose retention for
    `purpose` has ended by `as_of`: `retention_ends(o, r, purpose) <= as_of` exactly when
    `min(o, r) <= retention_cutoff(as_of, purpose)` (the sweep compares stored times so)."""
    return as_of - timedelta(days=purpose.retention_days)


def _obligation(purpose: Purpose) -> str:
    """The legal obligation an art17_3_b item is kept for, as its purpose names it."""
    return purpose.description or purpose.name


def seal(
    conn: Connection, kept: list[Kept], retention: Sealer, *, request_id: str, subject_id: str
) -> list[dict[str, Any]]:
    """Store the items under the retention key; returns them as `retained` lists them."""
    now = clock.now()
    rows = []
    for n, item in enumerate(kept):
        plain = json.dumps(item.payload, sort_keys=True, default=str).encode()
        aad = f"consentry:retained:{request_id}:{n}".encode()
        rows.append(
            {
                "request_id": request_id,
                "subject_id": subject_id,
                "item": item.item[:32],
                "ground": item.ground,
                "until": item.until,
                "sealed": retention.seal(plain, aad),
                "created_at": now,
            }
        )
    retained_sql.insert_retained(conn, rows)
    return summary(kept)


def summary(kept: list[Kept]) -> list[dict[str, Any]]:
    """Items grouped by kind, ground and purpose, with the latest retention date of each
    group; an art17_3_b group names its legal obligation."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for item in kept:
        kind = "event" if item.item.startswith("event:") else item.item
        key = (kind, item.ground, item.purpose or "")
        first = {"item": kind, "ground": item.ground, "until": item.until, "count": 0}
        if item.purpose is not None:
            first["purpose"] = item.purpose
        if item.obligation is not None:
            first["obligation"] = item.obligation
        group = groups.setdefault(key, first)
        group["until"] = max(group["until"], item.until)
        group["count"] += item.count
    return [{**g, "until": clock.rfc3339(g["until"])} for _, g in sorted(groups.items())]


def _entry(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id,
        "version": entry.version,
        "purpose": entry.purpose,
        "state": entry.state.value,
        "source": entry.source.value,
        "at": clock.rfc3339(entry.at),
        "notice_id": entry.notice_id,
        "notice_version": entry.notice_version,
        "notice_sha256": entry.notice_sha256,
        "jurisdiction": entry.jurisdiction,
        "explicit": entry.explicit,
        "evidence": entry.evidence,
    }


def _event(row: AnyRow, sealer: Sealer, purpose: Purpose, jurisdiction: str) -> Kept:
    personal = None
    if row.sealed is not None:
        personal = sealing.open_values(sealer, bytes(row.sealed), row.event_id)
    return Kept(
        f"event:{row.event_type}",
        ground_for(ART17_3_B, jurisdiction),
        retention_ends(row.occurred_at, row.received_at, purpose),
        {
            "event_id": row.event_id,
            "event_type": row.event_type,
            "occurred_at": clock.rfc3339(row.occurred_at),
            "purposes": [purpose.key],
            "properties": json.loads(row.properties),
            "personal": personal,
        },
        purpose=purpose.key,
        obligation=_obligation(purpose),
    )
