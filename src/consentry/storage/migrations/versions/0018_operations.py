"""alert states of the alert webhook; deliveries and reads stopped for want of consent

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.storage.schema import UTCTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alert_states",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("since", UTCTime(), nullable=False),
        sa.Column("starts_at", UTCTime(), nullable=True),
        sa.Column("ends_at", UTCTime(), nullable=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("sent", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_alert_states")),
    )
    op.create_table(
        "processed_without_consent",
        sa.Column("use", sa.String(length=80), nullable=False),
        sa.Column("count", BigInt, nullable=False),
        sa.Column("last_at", UTCTime(), nullable=False),
        sa.PrimaryKeyConstraint("use", name=op.f("pk_processed_without_consent")),
    )


def downgrade() -> None:
    op.drop_table("processed_without_consent")
    op.drop_table("alert_states")
