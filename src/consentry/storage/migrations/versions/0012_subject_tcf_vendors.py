"""subjects: the GVL vendors with consent in the subject's latest TC string

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subjects") as batch:
        batch.add_column(sa.Column("tcf_vendors", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subjects") as batch:
        batch.drop_column("tcf_vendors")
