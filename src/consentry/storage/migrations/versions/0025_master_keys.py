"""master keys: when each key-encryption key came into use and was retired

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04 19:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.storage.schema import UTCTime

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "master_keys",
        sa.Column("kek_id", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCTime(), nullable=False),
        sa.Column("retired_at", UTCTime(), nullable=True),
        sa.PrimaryKeyConstraint("kek_id", name=op.f("pk_master_keys")),
    )


def downgrade() -> None:
    op.drop_table("master_keys")
