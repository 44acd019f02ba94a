"""SQL for the audit log: ordered appends, the Merkle tree's nodes and state, signed heads."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, String, func, insert, select, tuple_, type_coerce, update

from consentry.storage.engine import AnyRow
from consentry.storage.schema import audit_entries, audit_heads, audit_nodes, audit_state

NodeKey = tuple[int, int]


def reserve_indexes(conn: Connection, count: int) -> int:
    """Reserve `count` consecutive indexes and return the first (see `reserve`)."""
    return reserve(conn, count)[0]


def reserve(conn: Connection, count: int) -> tuple[int, bytes]:
    """Reserve `count` consecutive indexes; return the first and the tree's frontier before them.

    The update takes the single state row's lock, so appends from concurrent transactions
    get indexes in commit order, the log has no gaps and the frontier read here stays the
    tree's until this transaction writes the next one (`set_frontier`).
    """
    stmt = (
        update(audit_state)
        .where(audit_state.c.id == 1)
        .values(size=audit_state.c.size + count)
        .returning(audit_state.c.size, audit_state.c.frontier)
    )
    size, frontier = conn.execute(stmt).one()
    return int(size) - count, bytes(frontier or b"")


def lock_tree(conn: Connection) -> tuple[int, bytes]:
    """Take the state row's lock (as an append does) and return the size and frontier."""
    stmt = (
        update(audit_state)
        .where(audit_state.c.id == 1)
        .values(size=audit_state.c.size)
        .returning(audit_state.c.size, audit_state.c.frontier)
    )
    size, frontier = conn.execute(stmt).one()
    return int(size), bytes(frontier or b"")


def tree_state(conn: Connection) -> tuple[int, bytes]:
    """The size and frontier as this transaction sees them, without locking."""
    stmt = select(audit_state.c.size, audit_state.c.frontier).where(audit_state.c.id == 1)
    size, frontier = conn.execute(stmt).one()
    return int(size), bytes(frontier or b"")


def set_frontier(conn: Connection, frontier: bytes) -> None:
    conn.execute(update(audit_state).where(audit_state.c.id == 1).values(frontier=frontier))


def insert_entries(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    conn.execute(insert(audit_entries), list(rows))


class SqlNodeStore:
    """The audit tree's NodeStore: leaves are the entries' leaf hashes, interior nodes are
    rows of audit_nodes. Writes go through the caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get_many(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        """The stored hashes among `keys` in at most two queries; absent keys are left out."""
        leaves = [idx for level, idx in keys if level == 0]
        inner = [(level, idx) for level, idx in keys if level > 0]
        found: dict[NodeKey, bytes] = {}
        if leaves:
            stmt = select(audit_entries.c.idx, audit_entries.c.leaf_hash).where(
                audit_entries.c.idx.in_(leaves)
            )
            for idx, leaf in self._conn.execute(stmt):
                found[(0, int(idx))] = bytes.fromhex(leaf)
        if inner:
            stmt2 = select(audit_nodes.c.level, audit_nodes.c.idx, audit_nodes.c.hash).where(
                tuple_(audit_nodes.c.level, audit_nodes.c.idx).in_(inner)
            )
            for level, idx, value in self._conn.execute(stmt2):
                found[(int(level), int(idx))] = bytes(value)
        return found

    def put_many(self, items: Iterable[tuple[NodeKey, bytes]]) -> None:
        """Insert the interior nodes among `items` (leaves are stored with their entries)."""
        rows = [
            {"level": level, "idx": idx, "hash": value}
            for (level, idx), value in items
            if level > 0
        ]
        if rows:
            self._conn.execute(insert(audit_nodes), rows)


def list_entries(
    conn: Connection, *, from_index: int, limit: int, subject_id: str | None
) -> Sequence[AnyRow]:
    stmt = (
        select(audit_entries)
        .where(audit_entries.c.idx >= from_index)
        .order_by(audit_entries.c.idx)
        .limit(limit)
    )
    if subject_id is not None:
        stmt = stmt.where(audit_entries.c.subject_id == subject_id)
    return conn.execute(stmt).all()


def scan_entries(conn: Connection, *, batch: int = 20_000) -> Iterator[Sequence[Any]]:
    """Every stored entry in index order as (idx, at text, actor, action, subject_id, details
    text, leaf_hash), read in pages by index; the stored text is returned untouched."""
    columns = (
        audit_entries.c.idx,
        # The raw text, not a datetime: the entry was hashed with exactly this spelling.
        type_coerce(audit_entries.c.at, String),
        audit_entries.c.actor,
        audit_entries.c.action,
        audit_entries.c.subject_id,
        audit_entries.c.details,
        audit_entries.c.leaf_hash,
    )
    after = -1
    while True:
        stmt = select(*columns).where(audit_entries.c.idx > after).order_by(audit_entries.c.idx)
        rows = conn.execute(stmt.limit(batch)).all()
        if not rows:
            return
        yield from rows
        after = rows[-1][0]


def log_size(conn: Connection) -> int:
    return int(conn.execute(select(audit_state.c.size).where(audit_state.c.id == 1)).scalar_one())


def entry_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(audit_entries)).scalar_one())


# --- signed tree heads ----------------------------------------------------------------------


def insert_head(
    conn: Connection, *, size: int, root_hash: str, signed_at: str, kid: str, signature: str
) -> None:
    conn.execute(
        insert(audit_heads).values(
            size=size, root_hash=root_hash, signed_at=signed_at, kid=kid, signature=signature
        )
    )


def latest_head(conn: Connection) -> AnyRow | None:
    """The head signed last."""
    stmt = select(audit_heads).order_by(audit_heads.c.id.desc()).limit(1)
    return conn.execute(stmt).first()


def scan_heads(conn: Connection, *, batch: int = 10_000) -> Iterator[AnyRow]:
    """Every head in signing order."""
    after = -1
    while True:
        stmt = select(audit_heads).where(audit_heads.c.id > after).order_by(audit_heads.c.id)
        rows = conn.execute(stmt.limit(batch)).all()
        if not rows:
            return
        yield from rows
        after = rows[-1].id
