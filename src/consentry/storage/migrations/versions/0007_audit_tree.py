"""audit tree: frontier, interior nodes and signed tree heads

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 09:12:04.118200
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.audit.merkle import InMemoryNodeStore, MerkleTree

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_state", sa.Column("frontier", sa.LargeBinary(), nullable=True))
    op.create_table(
        "audit_nodes",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column(
            "idx",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_audit_nodes")),
    )
    op.create_table(
        "audit_heads",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("size", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.String(length=27), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_heads")),
    )
    with op.batch_alter_table("audit_heads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_heads_size"), ["size"], unique=False)
    _build_tree()


def _build_tree() -> None:
    """Hash the entries logged before this revision into the tree, so proofs cover them."""
    conn = op.get_bind()
    leaves = conn.execute(sa.text("SELECT leaf_hash FROM audit_entries ORDER BY idx")).scalars()
    store = InMemoryNodeStore()
    tree = MerkleTree(store)
    tree.append_many(bytes.fromhex(leaf) for leaf in leaves)
    nodes = [
        {"level": level, "idx": idx, "hash": value}
        for (level, idx), value in store.get_many(_interior_keys(tree.size)).items()
    ]
    if nodes:
        table = sa.table(
            "audit_nodes",
            sa.column("level", sa.Integer),
            sa.column("idx", sa.BigInteger),
            sa.column("hash", sa.LargeBinary),
        )
        op.bulk_insert(table, nodes)
    conn.execute(
        sa.text("UPDATE audit_state SET frontier = :frontier WHERE id = 1"),
        {"frontier": b"".join(tree.frontier)},
    )


def _interior_keys(size: int) -> list[tuple[int, int]]:
    # Levels 4 and up: storage/audit.py rehashes smaller subtrees from their leaves.
    keys: list[tuple[int, int]] = []
    level = 4
    while size >> level:
        keys.extend((level, idx) for idx in range(size >> level))
        level += 1
    return keys


def downgrade() -> None:
    with op.batch_alter_table("audit_heads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_heads_size"))

    op.drop_table("audit_heads")
    op.drop_table("audit_nodes")
    with op.batch_alter_table("audit_state", schema=None) as batch_op:
        batch_op.drop_column("frontier")
