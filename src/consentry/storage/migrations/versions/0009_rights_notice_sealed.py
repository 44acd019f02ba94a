"""rights notices: a sealed part (the corrected values of a rectification notice)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rights_notices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rights_notices", schema=None) as batch_op:
        batch_op.drop_column("sealed")
