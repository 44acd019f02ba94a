"""audit/tree.py on both back-ends: the stored tree's root, past roots and proofs are those of
the same leaves in memory; subtrees below level 4 are rehashed, not stored; bad proof sizes and
a damaged frontier or node are named errors."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, delete, select, update

from consentry.audit import log as audit
from consentry.audit import merkle, tree
from consentry.audit.events import AuditAction
from consentry.errors import AuditTreeDamaged, ProofOutOfRange, TreeSizeUnknown
from consentry.runtime import Runtime
from consentry.storage import audit as audit_sql
from consentry.storage.schema import audit_nodes, audit_state

ACTION = AuditAction.SUBJECT_JURISDICTION_SET


def fill(rt: Runtime, count: int, per: int = 7) -> None:
    """`count` more entries, in transactions of `per`."""
    done = 0
    while done < count:
        with rt.store.write() as conn:
            for _ in range(min(per, count - done)):
                audit.record(conn, ACTION, actor="test", details={"n": done})
                done += 1


def in_memory(conn: Connection) -> merkle.MerkleTree:
    """The same log's tree built from its leaf hashes alone."""
    size = tree.open_tree(conn).size
    leaves = audit_sql.leaf_hashes(conn, list(range(size)))
    memory = merkle.MerkleTree()
    memory.append_many(leaves[i] for i in range(size))
    return memory


def test_the_stored_tree_is_the_tree_of_its_leaves(runtime: Runtime) -> None:
    fill(runtime, 40)
    with runtime.store.read() as conn:
        stored = tree.open_tree(conn)
        memory = in_memory(conn)
        size = stored.size
        assert size >= 40
        assert stored.root() == memory.root()
        for past in (1, 2, 15, 16, 17, 33, size):
            assert stored.root_at(past) == memory.root_at(past)
        for index in (0, 1, 15, 16, 31, size - 1):
            assert tree.inclusion_proof(conn, index, size) == memory.inclusion_proof(index, size)
        for first, second in ((1, size), (16, 32), (17, size), (size, size)):
            assert tree.consistency_proof(conn, first, second) == (
                memory.consistency_proof(first, second)
            )


def test_only_subtrees_of_16_leaves_and_more_are_stored(runtime: Runtime) -> None:
    fill(runtime, 70)
    with runtime.store.read() as conn:
        levels = {int(level) for (level,) in conn.execute(select(audit_nodes.c.level))}
        store = tree.SqlNodeStore(conn)
        memory = in_memory(conn)
        # A level-2 subtree (4 leaves) is rehashed from the entries' leaf hashes.
        found = store.get_many([(2, 1), (0, 5), (tree.STORED_FROM_LEVEL, 0)])
    # Level 4 (16 leaves) is the lowest row kept: the stored format.
    assert min(levels) == tree.STORED_FROM_LEVEL == 4
    assert found[(0, 5)] == _subtree(memory, 0, 5)
    assert found[(2, 1)] == _subtree(memory, 2, 1)
    assert found[(tree.STORED_FROM_LEVEL, 0)] == _subtree(memory, tree.STORED_FROM_LEVEL, 0)


def _subtree(memory: merkle.MerkleTree, level: int, idx: int) -> bytes:
    """The root of leaves [idx * 2**level, (idx + 1) * 2**level) from the in-memory store."""
    return memory.store.get_many([(level, idx)])[(level, idx)]


def test_a_subtree_not_whole_yet_is_left_out(runtime: Runtime) -> None:
    with runtime.store.read() as conn:
        size = tree.open_tree(conn).size
    fill(runtime, 4 - size % 4 + 2)
    with runtime.store.read() as conn:
        size = tree.open_tree(conn).size
        assert size % 4 == 2
        # The last 4-leaf subtree has 2 of its leaves; the next ones none.
        partial, beyond = (2, size // 4), (6, size // 64 + 1)
        assert tree.SqlNodeStore(conn).get_many([partial, beyond]) == {}


@pytest.mark.parametrize(
    ("index", "size", "error"),
    [(0, 10_000, TreeSizeUnknown), (-1, 1, ProofOutOfRange), (1, 1, ProofOutOfRange)],
)
def test_bad_inclusion_arguments_are_named(
    runtime: Runtime, index: int, size: int, error: type[Exception]
) -> None:
    fill(runtime, 3)
    with runtime.store.read() as conn, pytest.raises(error):
        tree.inclusion_proof(conn, index, size)


@pytest.mark.parametrize(
    ("first", "second", "error"),
    [(1, 10_000, TreeSizeUnknown), (0, 2, ProofOutOfRange), (3, 2, ProofOutOfRange)],
)
def test_bad_consistency_arguments_are_named(
    runtime: Runtime, first: int, second: int, error: type[Exception]
) -> None:
    fill(runtime, 3)
    with runtime.store.read() as conn, pytest.raises(error):
        tree.consistency_proof(conn, first, second)


def test_a_frontier_that_does_not_fit_the_size_is_damage(runtime: Runtime) -> None:
    fill(runtime, 5)
    with runtime.store.write() as conn:
        conn.execute(update(audit_state).values(frontier=b"\x00" * 5))
    with runtime.store.read() as conn, pytest.raises(AuditTreeDamaged):
        tree.open_tree(conn)


def test_a_missing_stored_node_is_damage(runtime: Runtime) -> None:
    fill(runtime, 40)
    with runtime.store.write() as conn:
        conn.execute(delete(audit_nodes))
    with runtime.store.read() as conn:
        size = tree.open_tree(conn).size
        with pytest.raises(AuditTreeDamaged):
            tree.inclusion_proof(conn, 0, size)
        with pytest.raises(AuditTreeDamaged):
            tree.consistency_proof(conn, 16, size)


def test_split_frontier() -> None:
    a, b = b"\x01" * 32, b"\x02" * 32
    assert tree.split_frontier(a + b) == [a, b]
    assert tree.split_frontier(b"") == []
