"""SQL of an erasure's delete across table groups: the subject's events, vault entries, model
inferences and identities (SQLite overwrites deleted content: secure_delete)."""

from __future__ import annotations

from sqlalchemy import Connection, delete

from consentry.storage.schema import events, identities, inferences, of_subject, token_vault


def delete_subject_data(conn: Connection, subject_id: str) -> dict[str, int]:
    """Delete the subject's events, vault entries, inferences and identities."""
    counts = {
        "events": conn.execute(delete(events).where(of_subject(subject_id))).rowcount,
        "tokens": conn.execute(
            delete(token_vault).where(token_vault.c.subject_id == subject_id)
        ).rowcount,
        "inferences": conn.execute(
            delete(inferences).where(inferences.c.subject_id == subject_id)
        ).rowcount,
        "identities": conn.execute(
            delete(identities).where(identities.c.subject_id == subject_id)
        ).rowcount,
    }
    return {k: int(v) for k, v in counts.items()}
