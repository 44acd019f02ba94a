"""HTTP handlers for reading the audit log (reads are themselves audited)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from consentry.audit import heads, tree
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.http.auth import Ctx
from consentry.http.pagination import MAX_LIMIT, MAX_POSITION, encode_cursor, int_position, page


def list_entries(
    ctx: Ctx,
    from_index: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    subject_id: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    """Entries in index order from `from_index` (or a `cursor`), optionally for one subject."""
    if cursor is not None:
        from_index = int_position(cursor, "from_index")
    with ctx.runtime.store.write() as conn:
        rows = audit.entries(conn, from_index=from_index, limit=limit + 1, subject_id=subject_id)
        audit.record(
            conn,
            AuditAction.AUDIT_READ,
            actor=ctx.actor,
            details={"from_index": from_index, "limit": limit, "subject_id": subject_id},
        )
    more = len(rows) > limit
    rows = rows[:limit]
    items = [{**entry.body(), "leaf_hash": leaf} for entry, leaf in rows]
    next_cursor = encode_cursor({"from_index": rows[-1][0].index + 1}) if more else None
    return page(items, next_cursor)


def get_head(ctx: Ctx) -> dict[str, Any]:
    """The latest signed tree head, signed now if the log has grown since the last one."""
    with ctx.runtime.store.write() as conn:
        head = heads.sign_if_grown(conn, ctx.runtime.signing_keys)
        audit.record(
            conn, AuditAction.AUDIT_HEAD_READ, actor=ctx.actor, details={"size": head.size}
        )
    return head.as_json()


def get_inclusion_proof(
    ctx: Ctx,
    index: Annotated[int, Query(ge=0, le=MAX_POSITION)],
    size: Annotated[int, Query(ge=1, le=MAX_POSITION)],
) -> dict[str, Any]:
    """The audit path showing entry `index` in the tree of the first `size` entries."""
    with ctx.runtime.store.write() as conn:
        path = tree.inclusion_proof(conn, index, size)
        audit.record(
            conn,
            AuditAction.AUDIT_PROOF_READ,
            actor=ctx.actor,
            details={"proof": "inclusion", "index": index, "size": size},
        )
    return {"leaf_index": index, "tree_size": size, "audit_path": [h.hex() for h in path]}


def get_consistency_proof(
    ctx: Ctx,
    first: Annotated[int, Query(ge=1, le=MAX_POSITION)],
    second: Annotated[int, Query(ge=1, le=MAX_POSITION)],
) -> dict[str, Any]:
    """The proof that the tree of `first` entries is a prefix of the tree of `second`."""
    with ctx.runtime.store.write() as conn:
        path = tree.consistency_proof(conn, first, second)
        audit.record(
            conn,
            AuditAction.AUDIT_PROOF_READ,
            actor=ctx.actor,
            details={"proof": "consistency", "first": first, "second": second},
        )
    return {"first": first, "second": second, "consistency_path": [h.hex() for h in path]}
