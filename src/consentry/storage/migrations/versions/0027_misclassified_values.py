"""misclassified values: per event type and field declared non-personal, how many values held
personal data that ingest redacted, first and last seen

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-05 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.storage.schema import UTCTime

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "misclassified_values",
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("n", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("first_seen_at", UTCTime(), nullable=False),
        sa.Column("last_seen_at", UTCTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_type", "field", name=op.f("pk_misclassified_values")),
    )


def downgrade() -> None:
    op.drop_table("misclassified_values")
