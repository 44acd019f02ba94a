"""retention_sweeps: the retention sweep's cursor and counts, where an interrupted one resumes

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.storage.schema import UTCTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "retention_sweeps",
        sa.Column("sweep_id", BigInt, autoincrement=True, nullable=False),
        sa.Column("started_at", UTCTime(), nullable=False),
        sa.Column("as_of", UTCTime(), nullable=False),
        sa.Column("until_seq", BigInt, nullable=False),
        sa.Column("after_seq", BigInt, nullable=False),
        sa.Column("examined", BigInt, nullable=False),
        sa.Column("deleted", BigInt, nullable=False),
        sa.Column("narrowed", BigInt, nullable=False),
        sa.Column("skipped_restricted", BigInt, nullable=False),
        sa.Column("finished_at", UTCTime(), nullable=True),
        sa.PrimaryKeyConstraint("sweep_id", name=op.f("pk_retention_sweeps")),
    )


def downgrade() -> None:
    op.drop_table("retention_sweeps")
