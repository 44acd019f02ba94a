"""The audit seam: `record` appends an entry in the caller's transaction, so an action and its
audit entry commit together or not at all."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import merkle
from consentry.audit.events import AuditAction
from consentry.audit.models import AuditEntry, canonical_json, leaf_hash_of
from consentry.audit.tree import SqlNodeStore, split_frontier
from consentry.errors import AuditTreeDamaged, ConsentryError
from consentry.keys.envelope import Sealer
from consentry.storage import audit as sql
from consentry.storage.engine import Store
from consentry.storage.hooks import pending

SYSTEM_ACTOR = "system"


@dataclass(frozen=True, slots=True)
class Draft:
    """An entry to append: `details` hold no personal data; anything personal goes in
    `personal`, sealed under the subject's key (`sealer`), so the log still verifies once that
    key is destroyed."""

    action: AuditAction
    actor: str
    subject_id: str | None = None
    details: dict[str, Any] | None = None
    personal: dict[str, Any] | None = None
    sealer: Sealer | None = None


def record(
    conn: Connection,
    action: AuditAction,
    *,
    actor: str,
    subject_id: str | None = None,
    details: dict[str, Any] | None = None,
    personal: dict[str, Any] | None = None,
    sealer: Sealer | None = None,
) -> None:
    """Add one entry to the caller's write transaction (see Draft for what goes where). It is
    appended when the transaction commits, with it, or not at all; a rolled-back savepoint
    takes its entries with it."""
    record_many(conn, [Draft(action, actor, subject_id, details, personal, sealer)])


def record_read(
    store: Store, action: AuditAction, *, actor: str, details: dict[str, Any] | None = None
) -> str | None:
    """Audit a read of the log itself in a transaction of its own. A log too damaged to take
    the entry is still read (that is how the damage is found): the code of why the read went
    unaudited is returned then, None otherwise."""
    try:
        with store.write() as conn:
            record(conn, action, actor=actor, details=details)
    except ConsentryError as exc:
        return exc.code
    return None


def record_many(conn: Connection, drafts: Sequence[Draft]) -> None:
    """Queue several entries for the caller's write transaction, in order."""
    queue = pending(conn)
    # Sealed now, while the subject's key is certainly at hand.
    queue.extend((draft, _body(draft)) for draft in drafts)


def flush(conn: Connection) -> None:
    """Append the transaction's queued entries with consecutive indexes and grow the Merkle
    tree by them: O(log n) per entry, from the frontier kept in the state row, never by
    rehashing the log. Runs last in every write transaction (runtime.py makes it one of the
    store's before-commit hooks)."""
    queue = pending(conn)
    if not queue:
        return
    drafts = list(queue)
    queue.clear()
    first, frontier = sql.reserve(conn, len(drafts))
    at = clock.rfc3339(clock.now())
    rows = []
    leaves = []
    for offset, (draft, body) in enumerate(drafts):
        index = first + offset
        details = canonical_json(body)
        leaf = leaf_hash_of(index, at, draft.actor, draft.action.value, draft.subject_id, details)
        leaves.append(bytes.fromhex(leaf))
        rows.append(
            {
                "idx": index,
                "at": at,
                "actor": draft.actor,
                "action": draft.action.value,
                "subject_id": draft.subject_id,
                "details": details,
                "leaf_hash": leaf,
            }
        )
    sql.insert_entries(conn, rows)
    try:
        tree = merkle.MerkleTree.from_frontier(first, split_frontier(frontier), SqlNodeStore(conn))
    except ValueError as exc:
        # Refused, not patched over: appending to a damaged tree would hide the damage.
        raise AuditTreeDamaged(f"the stored frontier does not fit a log of {first}") from exc
    tree.append_many(leaves)
    sql.set_frontier(conn, b"".join(tree.frontier))


def _body(draft: Draft) -> dict[str, Any]:
    body = dict(draft.details or {})
    if draft.personal:
        if draft.sealer is None or draft.subject_id is None:
            raise ValueError("personal audit details need the subject and its key")
        aad = b"consentry:audit:" + draft.subject_id.encode()
        sealed = draft.sealer.seal(canonical_json(draft.personal).encode(), aad)
        body["sealed"] = base64.urlsafe_b64encode(sealed).decode().rstrip("=")
    return body


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
