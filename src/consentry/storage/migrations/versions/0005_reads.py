"""reads: purpose bits and subject keys on events, the covering index of reads, the policy
version's consent counter (a trigger), exports and the differential-privacy budget

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 15:00:00.000000
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from consentry.storage.schema import UTCTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("config_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("consent_changes", _BIG, server_default="0", nullable=False))
    # The trigger that moves consent_changes is made at every start (storage/triggers.py).

    with op.batch_alter_table("purposes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bit", sa.Integer(), nullable=True))
    keys = [row[0] for row in bind.execute(sa.text("SELECT key FROM purposes ORDER BY key"))]
    bits = {key: n for n, key in enumerate(keys)}
    for key, bit in bits.items():
        bind.execute(
            sa.text("UPDATE purposes SET bit = :bit WHERE key = :key"), {"bit": bit, "key": key}
        )
    with op.batch_alter_table("purposes", schema=None) as batch_op:
        batch_op.alter_column("bit", existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_purposes_bit"), ["bit"])

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purpose_bits", _BIG, server_default="0", nullable=False))
        batch_op.add_column(sa.Column("subject_key", _BIG, server_default="0", nullable=False))
    rows = bind.execute(sa.text("SELECT seq, subject_id, purposes FROM events")).all()
    for seq, subject_id, stored_for in rows:
        mask = 0
        for key in json.loads(stored_for):
            if key in bits:
                mask |= 1 << bits[key]
        bind.execute(
            sa.text("UPDATE events SET purpose_bits = :bits, subject_key = :key WHERE seq = :seq"),
            {"bits": mask, "key": int(subject_id[4:19], 16), "seq": seq},
        )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_reads",
            ["event_type", "occurred_at", "purpose_bits", "subject_key"],
            unique=False,
        )

    op.create_table(
        "exports",
        sa.Column("export_id", sa.String(length=40), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("filters", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("policy_version", _BIG, nullable=False),
        sa.Column("rows", _BIG, nullable=True),
        sa.Column("created_at", UTCTime(), nullable=False),
        sa.Column("completed_at", UTCTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("export_id", name=op.f("pk_exports")),
    )
    op.create_table(
        "dp_spend",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("spent", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "day", name=op.f("pk_dp_spend")),
    )


def downgrade() -> None:
    op.drop_table("dp_spend")
    op.drop_table("exports")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_reads")
        batch_op.drop_column("subject_key")
        batch_op.drop_column("purpose_bits")
    with op.batch_alter_table("purposes", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_purposes_bit"), type_="unique")
        batch_op.drop_column("bit")
    op.execute(
        "DROP TRIGGER IF EXISTS subjects_consent_changes"
        + (" ON subjects" if op.get_bind().dialect.name == "postgresql" else "")
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS count_consent_change()")
    with op.batch_alter_table("config_state", schema=None) as batch_op:
        batch_op.drop_column("consent_changes")
