"""data map and delivery

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 14:33:30.588891
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.storage.schema import UTCTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "delivery_refusals",
        sa.Column("system_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("count", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("system_id", "reason", name=op.f("pk_delivery_refusals")),
    )
    op.create_table(
        "outbox",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("system_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("purposes", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_at", UTCTime(), nullable=False),
        sa.Column("created_at", UTCTime(), nullable=False),
        sa.Column("claimed_at", UTCTime(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_outbox")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outbox_status_system_id_next_at"),
            ["status", "system_id", "next_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_outbox_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "recipients",
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("system_id", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("first_at", UTCTime(), nullable=False),
        sa.PrimaryKeyConstraint("subject_id", "system_id", "purpose", name=op.f("pk_recipients")),
    )
    op.create_table(
        "rights_notices",
        sa.Column("notice_id", sa.String(length=40), nullable=False),
        sa.Column("system_id", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("purposes", sa.Text(), nullable=True),
        sa.Column("forward", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_at", UTCTime(), nullable=False),
        sa.Column("created_at", UTCTime(), nullable=False),
        sa.Column("due_at", UTCTime(), nullable=False),
        sa.Column("acknowledged_at", UTCTime(), nullable=True),
        sa.Column("overdue_at", UTCTime(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("notice_id", name=op.f("pk_rights_notices")),
    )
    with op.batch_alter_table("rights_notices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rights_notices_request_id"), ["request_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_rights_notices_status_next_at"), ["status", "next_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_rights_notices_subject_id"), ["subject_id"], unique=False
        )

    op.create_table(
        "systems",
        sa.Column("system_id", sa.String(length=64), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("secret_ct", sa.LargeBinary(), nullable=False),
        sa.Column("kek_id", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCTime(), nullable=False),
        sa.Column("updated_at", UTCTime(), nullable=False),
        sa.PrimaryKeyConstraint("system_id", name=op.f("pk_systems")),
    )


def downgrade() -> None:

    op.drop_table("systems")
    with op.batch_alter_table("rights_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rights_notices_subject_id"))
        batch_op.drop_index(batch_op.f("ix_rights_notices_status_next_at"))
        batch_op.drop_index(batch_op.f("ix_rights_notices_request_id"))

    op.drop_table("rights_notices")
    op.drop_table("recipients")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_subject_id"))
        batch_op.drop_index(batch_op.f("ix_outbox_status_system_id_next_at"))

    op.drop_table("outbox")
    op.drop_table("delivery_refusals")
