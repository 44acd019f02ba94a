"""audit tree: frontier, interior nodes and signed tree heads

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 09:12:04.118200
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

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
    levels = _perfect_subtrees([bytes.fromhex(leaf) for leaf in leaves])
    nodes = [
        {"level": level, "idx": idx, "hash": value}
        for level in range(_STORED_FROM_LEVEL, len(levels))
        for idx, value in enumerate(levels[level])
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
        {"frontier": b"".join(_frontier(levels, len(levels[0]) if levels else 0))},
    )


# Frozen here, as this revision computed them, so that the migration never changes with the
# audit domain's code (RFC 9162 §2.1 hashing; levels 4 and up are stored, smaller subtrees
# are rehashed from their leaves).
_STORED_FROM_LEVEL = 4


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _perfect_subtrees(leaves: list[bytes]) -> list[list[bytes]]:
    """Every perfect subtree's hash: [level][index], level 0 being the leaf hashes."""
    levels = [leaves] if leaves else []
    while levels and len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([_node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
    return levels


def _frontier(levels: list[list[bytes]], size: int) -> list[bytes]:
    """The roots of the perfect subtrees the tree of `size` leaves splits into, largest first."""
    roots: list[bytes] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            roots.append(levels[level][start >> level])
            start += 1 << level
    return roots


def downgrade() -> None:
    with op.batch_alter_table("audit_heads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_heads_size"))

    op.drop_table("audit_heads")
    op.drop_table("audit_nodes")
    with op.batch_alter_table("audit_state", schema=None) as batch_op:
        batch_op.drop_column("frontier")
