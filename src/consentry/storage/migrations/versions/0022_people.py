"""people who sign in to the pages, their enrolment links and their sessions

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 14:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.storage.schema import UTCTime

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("person_id", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("email_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("email_ct", sa.LargeBinary(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("totp_ct", sa.LargeBinary(), nullable=True),
        sa.Column("totp_last_step", BigInt, nullable=True),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTCTime(), nullable=True),
        sa.Column("created_at", UTCTime(), nullable=False),
        sa.Column("updated_at", UTCTime(), nullable=False),
        sa.Column("enrolled_at", UTCTime(), nullable=True),
        sa.Column("disabled_at", UTCTime(), nullable=True),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_people")),
        sa.UniqueConstraint("email_index", name=op.f("uq_people_email_index")),
    )
    op.create_table(
        "person_enrolments",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("person_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTCTime(), nullable=False),
        sa.Column("expires_at", UTCTime(), nullable=False),
        sa.Column("used_at", UTCTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.person_id"],
            name=op.f("fk_person_enrolments_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_person_enrolments")),
    )
    op.create_index(op.f("ix_person_enrolments_person_id"), "person_enrolments", ["person_id"])
    op.create_table(
        "person_sessions",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("person_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTCTime(), nullable=False),
        sa.Column("last_seen_at", UTCTime(), nullable=False),
        sa.Column("expires_at", UTCTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.person_id"],
            name=op.f("fk_person_sessions_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_person_sessions")),
    )
    op.create_index(op.f("ix_person_sessions_person_id"), "person_sessions", ["person_id"])


def downgrade() -> None:
    op.drop_table("person_sessions")
    op.drop_table("person_enrolments")
    op.drop_table("people")
