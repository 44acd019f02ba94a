"""customers' portal sessions

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 13:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.storage.schema import UTCTime

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_sessions",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("entry", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=True),
        sa.Column("level", sa.String(length=12), nullable=True),
        sa.Column("matched", sa.Text(), nullable=True),
        sa.Column("link_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", UTCTime(), nullable=False),
        sa.Column("idle_until", UTCTime(), nullable=False),
        sa.Column("expires_at", UTCTime(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_portal_sessions")),
        sa.UniqueConstraint("link_id", name=op.f("uq_portal_sessions_link_id")),
    )
    op.create_index(
        op.f("ix_portal_sessions_expires_at"), "portal_sessions", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_portal_sessions_expires_at"), table_name="portal_sessions")
    op.drop_table("portal_sessions")
