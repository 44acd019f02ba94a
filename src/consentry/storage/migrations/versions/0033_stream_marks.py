"""stream marks: which subject's records went to which consented topic; topic waits of erasures
and withdrawal purges

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-05 03:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.storage.schema import UTCTime

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stream_marks",
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("last_at", UTCTime(), nullable=False),
        sa.Column("gone_by", UTCTime(), nullable=False),
        sa.PrimaryKeyConstraint("subject_id", "topic", name=op.f("pk_stream_marks")),
    )
    op.create_index(
        op.f("ix_stream_marks_topic_gone_by"), "stream_marks", ["topic", "gone_by"], unique=False
    )
    op.create_table(
        "topic_waits",
        sa.Column("seq", BigInt, autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("entry_id", BigInt, nullable=True),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("until", UTCTime(), nullable=False),
        sa.Column("passed_at", UTCTime(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_topic_waits")),
    )
    op.create_index(op.f("ix_topic_waits_request_id"), "topic_waits", ["request_id"], unique=False)
    op.create_index(
        op.f("ix_topic_waits_passed_at_until"),
        "topic_waits",
        ["passed_at", "until"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_topic_waits_passed_at_until"), table_name="topic_waits")
    op.drop_index(op.f("ix_topic_waits_request_id"), table_name="topic_waits")
    op.drop_table("topic_waits")
    op.drop_index(op.f("ix_stream_marks_topic_gone_by"), table_name="stream_marks")
    op.drop_table("stream_marks")
