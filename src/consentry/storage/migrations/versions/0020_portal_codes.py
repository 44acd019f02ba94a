"""the outgoing mail queue, portal codes and the attempts their limits count

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 13:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.storage.schema import UTCTime

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outgoing_mail",
        sa.Column("seq", BigInt, autoincrement=True, nullable=False),
        sa.Column("mail_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_at", UTCTime(), nullable=False),
        sa.Column("created_at", UTCTime(), nullable=False),
        sa.Column("expires_at", UTCTime(), nullable=False),
        sa.Column("finished_at", UTCTime(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_outgoing_mail")),
        sa.UniqueConstraint("mail_id", name=op.f("uq_outgoing_mail_mail_id")),
    )
    op.create_index(op.f("ix_outgoing_mail_status_next_at"), "outgoing_mail", ["status", "next_at"])
    op.create_table(
        "portal_codes",
        sa.Column("code_id", sa.String(length=40), nullable=False),
        sa.Column("address_hash", sa.LargeBinary(), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("code_mac", sa.LargeBinary(), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCTime(), nullable=False),
        sa.Column("expires_at", UTCTime(), nullable=False),
        sa.PrimaryKeyConstraint("code_id", name=op.f("pk_portal_codes")),
        sa.UniqueConstraint("address_hash", name=op.f("uq_portal_codes_address_hash")),
    )
    op.create_table(
        "portal_attempts",
        sa.Column("seq", BigInt, autoincrement=True, nullable=False),
        sa.Column("key_hash", sa.LargeBinary(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("at", UTCTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_portal_attempts")),
    )
    op.create_index(
        op.f("ix_portal_attempts_key_hash_kind_at"), "portal_attempts", ["key_hash", "kind", "at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_portal_attempts_key_hash_kind_at"), table_name="portal_attempts")
    op.drop_table("portal_attempts")
    op.drop_table("portal_codes")
    op.drop_index(op.f("ix_outgoing_mail_status_next_at"), table_name="outgoing_mail")
    op.drop_table("outgoing_mail")
