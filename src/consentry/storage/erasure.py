"""SQL of an erasure's delete across table groups: the subject's events, vault entries,
identities and ledger evidence (SQLite overwrites deleted content: secure_delete)."""

from __future__ import annotations

from sqlalchemy import Connection, delete, update

from consentry.storage.schema import consent_ledger, events, identities, token_vault


def delete_subject_data(conn: Connection, subject_id: str) -> dict[str, int]:
    """Delete the subject's events, vault entries and identities; strip what the ledger
    entries hold about the person (their evidence, re-sealed beforehand when kept)."""
    counts = {
        "events": conn.execute(delete(events).where(events.c.subject_id == subject_id)).rowcount,
        "tokens": conn.execute(
            delete(token_vault).where(token_vault.c.subject_id == subject_id)
        ).rowcount,
        "identities": conn.execute(
            delete(identities).where(identities.c.subject_id == subject_id)
        ).rowcount,
    }
    conn.execute(
        update(consent_ledger)
        .where(consent_ledger.c.subject_id == subject_id, consent_ledger.c.evidence_ct.is_not(None))
        .values(evidence_ct=None)
    )
    return {k: int(v) for k, v in counts.items()}
