"""a partial index of the subjects under a restriction, for the retention sweep

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# The condition as schema.RESTRICTED spelled it when this migration was written.
_RESTRICTED = "restricted OR restricted_purposes IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_subjects_restricted",
        "subjects",
        ["subject_id"],
        sqlite_where=sa.text(_RESTRICTED),
        postgresql_where=sa.text(_RESTRICTED),
    )


def downgrade() -> None:
    op.drop_index("ix_subjects_restricted", table_name="subjects")
