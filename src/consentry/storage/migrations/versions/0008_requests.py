"""data-subject requests, acknowledgements, retained items, tombstones; subject restrictions

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.storage.schema import UTCTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("erasure", sa.String(length=12), nullable=True))
        batch_op.add_column(
            sa.Column("restricted", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("objected", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("restricted_purposes", sa.Text(), nullable=True))
    op.create_table(
        "requests",
        sa.Column("request_id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=True),
        sa.Column("jurisdiction", sa.String(length=8), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=True),
        sa.Column("purposes", sa.Text(), nullable=True),
        sa.Column("ground", sa.String(length=8), nullable=True),
        sa.Column("verification_method", sa.String(length=64), nullable=True),
        sa.Column("verification_level", sa.String(length=12), nullable=True),
        sa.Column("received_at", UTCTime(), nullable=False),
        sa.Column("due_at", UTCTime(), nullable=False),
        sa.Column("acknowledge_by", UTCTime(), nullable=True),
        sa.Column("extended_at", UTCTime(), nullable=True),
        sa.Column("verified_at", UTCTime(), nullable=True),
        sa.Column("completed_at", UTCTime(), nullable=True),
        sa.Column("updated_at", UTCTime(), nullable=False),
        sa.Column("step", sa.String(length=24), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("notes_ct", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_requests")),
    )
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_requests_subject_id_type"), ["subject_id", "type"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_requests_status"), ["status"], unique=False)
    op.create_table(
        "request_acks",
        sa.Column("request_id", sa.String(length=40), nullable=False),
        sa.Column("system_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("sent_at", UTCTime(), nullable=False),
        sa.Column("acknowledged_at", UTCTime(), nullable=True),
        sa.Column("via", sa.String(length=12), nullable=True),
        sa.PrimaryKeyConstraint("request_id", "system_id", name=op.f("pk_request_acks")),
    )
    op.create_table(
        "retained",
        sa.Column("retained_id", BigInt, autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(length=40), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("item", sa.String(length=32), nullable=False),
        sa.Column("ground", sa.String(length=32), nullable=False),
        sa.Column("until", UTCTime(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCTime(), nullable=False),
        sa.PrimaryKeyConstraint("retained_id", name=op.f("pk_retained")),
    )
    with op.batch_alter_table("retained", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_retained_request_id"), ["request_id"], unique=False)
    op.create_table(
        "tombstones",
        sa.Column("tombstone", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", UTCTime(), nullable=False),
        sa.PrimaryKeyConstraint("tombstone", name=op.f("pk_tombstones")),
    )
    op.create_table(
        "dsr_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", BigInt, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_dsr_state")),
    )


def downgrade() -> None:
    op.drop_table("dsr_state")
    op.drop_table("tombstones")
    with op.batch_alter_table("retained", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retained_request_id"))
    op.drop_table("retained")
    op.drop_table("request_acks")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_requests_status"))
        batch_op.drop_index(batch_op.f("ix_requests_subject_id_type"))
    op.drop_table("requests")
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.drop_column("restricted_purposes")
        batch_op.drop_column("objected")
        batch_op.drop_column("restricted")
        batch_op.drop_column("erasure")
