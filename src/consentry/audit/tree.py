"""The audit log's Merkle tree as stored: its root, past roots and proofs (RFC 9162 §2.1)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection

from consentry.audit import merkle
from consentry.errors import AuditTreeDamaged, ProofOutOfRange, TreeSizeUnknown
from consentry.storage import audit as sql

# Subtrees below this level are not stored: one of 2**level leaves is cheaper to rehash from
# the entries' leaf hashes (at most 8 here) than to write a row for on every append.
STORED_FROM_LEVEL = 4


class SqlNodeStore:
    """The audit tree's NodeStore: leaves are the entries' leaf hashes, subtrees of 16 leaves
    and more are rows of audit_nodes, smaller ones are rehashed from their leaves. Writes go
    through the caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get_many(self, keys: Iterable[merkle.NodeKey]) -> dict[merkle.NodeKey, bytes]:
        """The stored hashes among `keys` in at most two queries; absent keys are left out."""
        low = [(level, idx) for level, idx in keys if level < STORED_FROM_LEVEL]
        high = [(level, idx) for level, idx in keys if level >= STORED_FROM_LEVEL]
        found: dict[merkle.NodeKey, bytes] = {}
        if low:
            leaves = sql.leaf_hashes(
                self._conn,
                sorted({i for lv, idx in low for i in range(idx << lv, (idx + 1) << lv)}),
            )
            for level, idx in low:
                hashes = [leaves.get(i) for i in range(idx << level, (idx + 1) << level)]
                if all(h is not None for h in hashes):
                    found[(level, idx)] = _perfect_root(hashes)  # type: ignore[arg-type]
        if high:
            found.update(sql.stored_nodes(self._conn, high))
        return found

    def put_many(self, items: Iterable[tuple[merkle.NodeKey, bytes]]) -> None:
        """Insert the nodes among `items` that are kept (see STORED_FROM_LEVEL)."""
        kept = [(key, value) for key, value in items if key[0] >= STORED_FROM_LEVEL]
        if kept:
            sql.insert_nodes(self._conn, kept)


def _perfect_root(hashes: list[bytes]) -> bytes:
    while len(hashes) > 1:
        hashes = [merkle.node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


def split_frontier(frontier: bytes) -> list[bytes]:
    """The stored frontier (concatenated 32-byte hashes) as a list, largest subtree first."""
    size = merkle.HASH_SIZE
    return [frontier[i : i + size] for i in range(0, len(frontier), size)]


def open_tree(conn: Connection, *, lock: bool = False) -> merkle.MerkleTree:
    """The tree as this transaction sees it; `lock` takes the appends' lock first, so no
    append can commit in between (a head signed from it names a size and root that stay true)."""
    size, frontier = sql.lock_tree(conn) if lock else sql.tree_state(conn)
    try:
        return merkle.MerkleTree.from_frontier(size, split_frontier(frontier), SqlNodeStore(conn))
    except ValueError as exc:
        raise AuditTreeDamaged(f"the stored frontier does not fit a log of {size} entries") from exc


def inclusion_proof(conn: Connection, index: int, size: int) -> list[bytes]:
    """The audit path of entry `index` in the tree of the first `size` entries."""
    tree = open_tree(conn)
    if size > tree.size:
        raise TreeSizeUnknown(f"the audit log holds {tree.size} entries", size=tree.size)
    if not 0 <= index < size:
        raise ProofOutOfRange("index must be below size")
    try:
        return tree.inclusion_proof(index, size)
    except merkle.MissingNodeError as exc:
        raise AuditTreeDamaged(str(exc)) from exc


def consistency_proof(conn: Connection, first: int, second: int) -> list[bytes]:
    """The proof that the tree of `first` entries is a prefix of the tree of `second`."""
    tree = open_tree(conn)
    if second > tree.size:
        raise TreeSizeUnknown(f"the audit log holds {tree.size} entries", size=tree.size)
    if not 1 <= first <= second:
        raise ProofOutOfRange("first must be at least 1 and at most second")
    try:
        return tree.consistency_proof(first, second)
    except merkle.MissingNodeError as exc:
        raise AuditTreeDamaged(str(exc)) from exc
