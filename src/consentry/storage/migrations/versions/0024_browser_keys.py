"""browser keys' origins; identity secrets

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 16:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.storage.schema import UTCTime

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("origins", sa.Text(), nullable=True))
    op.create_table(
        "identity_secrets",
        sa.Column("secret_id", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("secret_ct", sa.LargeBinary(), nullable=False),
        sa.Column("kek_id", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCTime(), nullable=False),
        sa.Column("revoked_at", UTCTime(), nullable=True),
        sa.PrimaryKeyConstraint("secret_id", name=op.f("pk_identity_secrets")),
    )


def downgrade() -> None:
    op.drop_table("identity_secrets")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("origins")
