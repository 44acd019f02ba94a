"""consent_ledger: an index on expires_at, which the expiry sweep reads grants by

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 06:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_consent_ledger_expires_at"), "consent_ledger", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_consent_ledger_expires_at"), table_name="consent_ledger")
