"""requests: an access request's scope, the level fixed at receipt, an authorised agent (sealed)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scope", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("required_level", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("agent_ct", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("agent_ct")
        batch_op.drop_column("required_level")
        batch_op.drop_column("scope")
