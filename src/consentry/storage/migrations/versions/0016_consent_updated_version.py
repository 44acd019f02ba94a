"""rights notices: the subject's ledger version a `consent_updated` notice reports

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("rights_notices") as batch:
        batch.add_column(sa.Column("version", BigInt, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rights_notices") as batch:
        batch.drop_column("version")
