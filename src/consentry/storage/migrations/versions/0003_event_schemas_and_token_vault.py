"""event schemas and token vault

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 12:59:47.236365
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.storage.schema import UTCTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_schemas",
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("updated_at", UTCTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_type", name=op.f("pk_event_schemas")),
    )
    op.create_table(
        "token_vault",
        sa.Column("token", sa.String(length=40), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("value_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("value_ct", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCTime(), nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_token_vault")),
        sa.UniqueConstraint("value_index", name=op.f("uq_token_vault_value_index")),
    )
    with op.batch_alter_table("token_vault", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_token_vault_subject_id"), ["subject_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("token_vault", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_token_vault_subject_id"))

    op.drop_table("token_vault")
    op.drop_table("event_schemas")
