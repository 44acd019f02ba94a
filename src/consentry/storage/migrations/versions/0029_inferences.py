"""model inferences (Art. 22): the purposes' automated-decision basis

Revision ID: 0029
Revises: 0026
Create Date: 2026-12-05 00:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "purposes", sa.Column("automated_decision_basis", sa.String(length=16), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("purposes") as batch:
        batch.drop_column("automated_decision_basis")
