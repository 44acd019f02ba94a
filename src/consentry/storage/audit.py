"""SQL for the audit log: ordered appends, the Merkle tree's nodes and state, signed heads."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    column,
    func,
    insert,
    select,
    table,
    text,
    update,
)

from consentry.storage.engine import AnyRow
from consentry.storage.schema import (
    audit_entries,
    audit_heads,
    audit_nodes,
    audit_state,
    audit_verifications,
)

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
    size, frontier = conn.execute(_RESERVE, {"b_count": count}).one()
    return int(size) - count, bytes(frontier or b"")


# Built once (every write transaction appends to the log): statements and cache keys reused.
_RESERVE = (
    update(audit_state)
    .where(audit_state.c.id == 1)
    .values(size=audit_state.c.size + bindparam("b_count"))
    .returning(audit_state.c.size, audit_state.c.frontier)
)
_SET_FRONTIER = (
    update(audit_state).where(audit_state.c.id == 1).values(frontier=bindparam("b_frontier"))
)


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
    conn.execute(_SET_FRONTIER, {"b_frontier": frontier})


# The same table without column types: appends bind `at` as the RFC 3339 text they hashed,
# sparing a datetime round trip per row on the hot path.
_entries_as_text = table(
    "audit_entries",
    *(column(name) for name in ("idx", "at", "actor", "action", "subject_id", "details")),
    column("leaf_hash"),
)


def insert_entries(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert entries whose `at` is RFC 3339 text in UTCTime's spelling."""
    conn.execute(insert(_entries_as_text), list(rows))


def leaf_hashes(conn: Connection, indexes: Sequence[int]) -> dict[int, bytes]:
    """The leaf hashes of the entries at `indexes` (those that exist)."""
    stmt = select(audit_entries.c.idx, audit_entries.c.leaf_hash).where(
        audit_entries.c.idx.in_(indexes)
    )
    return {int(idx): bytes.fromhex(leaf) for idx, leaf in conn.execute(stmt)}


def stored_nodes(conn: Connection, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
    """The rows of audit_nodes among `keys` (level, idx), in one query."""
    if not keys:
        return {}
    # OR of primary-key equalities as plain text: both back-ends answer it with one index
    # probe per node (a row-value IN scans on SQLite), and text skips the statement
    # compiler, which would see a new shape for nearly every proof.
    where = " OR ".join(f"(level = :l{n} AND idx = :i{n})" for n in range(len(keys)))
    params: dict[str, int] = {}
    for n, (level, idx) in enumerate(keys):
        params[f"l{n}"], params[f"i{n}"] = level, idx
    # Only generated placeholders are formatted in; the values are bound.
    sql_text = text(f"SELECT level, idx, hash FROM audit_nodes WHERE {where}")  # noqa: S608
    return {
        (int(level), int(idx)): bytes(value) for level, idx, value in conn.execute(sql_text, params)
    }


def insert_nodes(conn: Connection, nodes: Sequence[tuple[NodeKey, bytes]]) -> None:
    conn.execute(
        insert(audit_nodes),
        [{"level": lv, "idx": idx, "hash": value} for (lv, idx), value in nodes],
    )


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
    # The driver's own cursor, in the caller's transaction: SQLAlchemy's result rows cost
    # more than hashing the entry, and `audit verify` reads every row of the log.
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    query = (
        "SELECT idx, at, actor, action, subject_id, details, leaf_hash FROM audit_entries "  # noqa: S608
        f"WHERE idx > {mark} ORDER BY idx LIMIT {int(batch)}"
    )
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        after = -1
        while True:
            cursor.execute(query, (after,))
            rows = cursor.fetchall()
            if not rows:
                return
            yield from rows
            after = rows[-1][0]
    finally:
        cursor.close()


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


# --- verifications of the whole log ---------------------------------------------------------


def insert_verification(conn: Connection, **values: Any) -> None:
    conn.execute(insert(audit_verifications).values(**values))


def latest_verification(conn: Connection) -> AnyRow | None:
    """The verification made last."""
    stmt = select(audit_verifications).order_by(audit_verifications.c.id.desc()).limit(1)
    return conn.execute(stmt).first()
