"""The audit log's Merkle tree as stored: its root, past roots and proofs (RFC 9162 §2.1)."""

from __future__ import annotations

from sqlalchemy import Connection

from consentry.audit import merkle
from consentry.errors import AuditTreeDamaged, ProofOutOfRange, TreeSizeUnknown
from consentry.storage import audit as sql


def split_frontier(frontier: bytes) -> list[bytes]:
    """The stored frontier (concatenated 32-byte hashes) as a list, largest subtree first."""
    size = merkle.HASH_SIZE
    return [frontier[i : i + size] for i in range(0, len(frontier), size)]


def open_tree(conn: Connection, *, lock: bool = False) -> merkle.MerkleTree:
    """The tree as this transaction sees it; `lock` takes the appends' lock first, so no
    append can commit in between (a head signed from it names a size and root that stay true)."""
    size, frontier = sql.lock_tree(conn) if lock else sql.tree_state(conn)
    try:
        return merkle.MerkleTree.from_frontier(
            size, split_frontier(frontier), sql.SqlNodeStore(conn)
        )
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
