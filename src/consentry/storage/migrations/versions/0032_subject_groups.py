"""events: the subject index grouped by age, (seq >> 14, subject_id), instead of subject_id

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-05 03:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_subject_groups", "events", [sa.text("(seq >> 14)"), "subject_id"])
    op.drop_index("ix_events_subject_id", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_subject_id", "events", ["subject_id"])
    op.drop_index("ix_events_subject_groups", table_name="events")
