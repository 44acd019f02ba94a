"""The audit seam: `record` appends an entry in the caller's transaction, so an action and its
audit entry commit together or not at all."""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.audit.events import AuditAction
from consentry.audit.models import AuditEntry, canonical_json
from consentry.keys.envelope import Sealer
from consentry.storage import audit as sql

SYSTEM_ACTOR = "system"


def record(
    conn: Connection,
    action: AuditAction,
    *,
    actor: str,
    subject_id: str | None = None,
    details: dict[str, Any] | None = None,
    personal: dict[str, Any] | None = None,
    sealer: Sealer | None = None,
) -> AuditEntry:
    """Append one entry. `details` must hold no personal data; anything personal goes in
    `personal`, which is sealed under the subject's key (`sealer`), so the log still verifies
    once that key is destroyed."""
    body = dict(details or {})
    if personal:
        if sealer is None or subject_id is None:
            raise ValueError("personal audit details need the subject and its key")
        aad = b"consentry:audit:" + subject_id.encode()
        sealed = sealer.seal(canonical_json(personal).encode(), aad)
        body["sealed"] = base64.urlsafe_b64encode(sealed).decode().rstrip("=")
    index = sql.reserve_indexes(conn, 1)
    moment = clock.now()
    entry = AuditEntry(
        index=index,
        at=clock.rfc3339(moment),
        actor=actor,
        action=action.value,
        subject_id=subject_id,
        details=body,
    )
    sql.insert_entries(
        conn,
        [
            {
                "idx": entry.index,
                "at": moment,
                "actor": entry.actor,
                "action": entry.action,
                "subject_id": entry.subject_id,
                "details": canonical_json(entry.details),
                "leaf_hash": entry.leaf_hash(),
            }
        ],
    )
    return entry


def entries(
    conn: Connection, *, from_index: int = 0, limit: int = 100, subject_id: str | None = None
) -> list[tuple[AuditEntry, str]]:
    """Entries in index order with their stored leaf hashes."""
    rows = sql.list_entries(conn, from_index=from_index, limit=limit, subject_id=subject_id)
    return [
        (
            AuditEntry(
                index=row.idx,
                at=clock.rfc3339(row.at),
                actor=row.actor,
                action=row.action,
                subject_id=row.subject_id,
                details=json.loads(row.details),
            ),
            row.leaf_hash,
        )
        for row in rows
    ]
