"""assessments: data-protection impact assessments per purpose, their reviews, and when they
were last computed

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-05 00:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.storage.schema import UTCTime

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assessments",
        sa.Column("assessment_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("computed", sa.Text(), nullable=False),
        sa.Column("computed_at", UTCTime(), nullable=False),
        sa.Column("required_since", UTCTime(), nullable=True),
        sa.Column("reviewed_triggers", sa.Text(), nullable=True),
        sa.Column("reviewed_at", UTCTime(), nullable=True),
        sa.Column("review_actor", sa.String(length=80), nullable=True),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", UTCTime(), nullable=False),
        sa.PrimaryKeyConstraint("assessment_id", name=op.f("pk_assessments")),
    )
    op.create_index(
        op.f("ix_assessments_required_status_required_since"),
        "assessments",
        ["required", "status", "required_since"],
    )
    op.create_table(
        "assessment_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column(
            "config_version", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("computed_at", UTCTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment_state")),
    )


def downgrade() -> None:
    op.drop_table("assessment_state")
    op.drop_index(op.f("ix_assessments_required_status_required_since"), table_name="assessments")
    op.drop_table("assessments")
