"""model inferences (Art. 22): the inferences table, and the purposes' automated-decision basis

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-05 00:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.storage.schema import UTCTime

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column(
        "purposes", sa.Column("automated_decision_basis", sa.String(length=16), nullable=True)
    )
    op.create_table(
        "inferences",
        sa.Column("seq", BigInt, autoincrement=True, nullable=False),
        sa.Column("inference_id", sa.String(length=40), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=100), nullable=False),
        sa.Column("automated_decision", sa.Boolean(), nullable=False),
        sa.Column("significant_effect", sa.Boolean(), nullable=False),
        sa.Column("special_inputs", sa.Boolean(), nullable=False),
        sa.Column("input_events", sa.Text(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("contested_at", UTCTime(), nullable=True),
        sa.Column("reviewed_at", UTCTime(), nullable=True),
        sa.Column("reviewer", sa.String(length=200), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("review_sealed", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_inferences")),
        sa.UniqueConstraint("inference_id", name=op.f("uq_inferences_inference_id")),
    )
    op.create_index(
        op.f("ix_inferences_subject_id_seq"), "inferences", ["subject_id", "seq"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_inferences_subject_id_seq"), table_name="inferences")
    op.drop_table("inferences")
    with op.batch_alter_table("purposes") as batch:
        batch.drop_column("automated_decision_basis")
