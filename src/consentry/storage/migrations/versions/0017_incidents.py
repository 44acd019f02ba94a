"""incidents: the breach register and its append-only notifications

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.storage.schema import UTCTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("seq", BigInt, autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_at", UTCTime(), nullable=False),
        sa.Column("detected_at", UTCTime(), nullable=False),
        sa.Column("aware_at", UTCTime(), nullable=False),
        sa.Column("authority_due_at", UTCTime(), nullable=True),
        sa.Column("closed_at", UTCTime(), nullable=True),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_incidents")),
        sa.UniqueConstraint("incident_id", name=op.f("uq_incidents_incident_id")),
    )
    op.create_index(
        op.f("ix_incidents_status_authority_due_at"), "incidents", ["status", "authority_due_at"]
    )
    op.create_table(
        "incident_notifications",
        sa.Column("seq", BigInt, autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.String(length=40), nullable=False),
        sa.Column("recipient", sa.String(length=24), nullable=False),
        sa.Column("at", UTCTime(), nullable=False),
        sa.Column("recorded_at", UTCTime(), nullable=False),
        sa.Column("due_at", UTCTime(), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_incident_notifications")),
    )
    op.create_index(
        op.f("ix_incident_notifications_incident_id_seq"),
        "incident_notifications",
        ["incident_id", "seq"],
    )


def downgrade() -> None:
    op.drop_table("incident_notifications")
    op.drop_table("incidents")
