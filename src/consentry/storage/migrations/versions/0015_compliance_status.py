"""consent_current, subject_status, event_counts: compliance status and the summary's counts

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_UTC = sa.String(length=27)


def upgrade() -> None:
    op.create_table(
        "consent_current",
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("expires_at", _UTC, nullable=True),
        sa.Column("version", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("subject_id", "purpose", name=op.f("pk_consent_current")),
    )
    op.create_index(
        op.f("ix_consent_current_state_expires_at"), "consent_current", ["state", "expires_at"]
    )
    op.create_table(
        "subject_status",
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("basis", sa.String(length=16), nullable=False),
        sa.Column("changes_at", _UTC, nullable=True),
        sa.PrimaryKeyConstraint("subject_id", name=op.f("pk_subject_status")),
    )
    for column in ("changes_at", "basis", "status"):
        op.create_index(op.f(f"ix_subject_status_{column}"), "subject_status", [column])
    op.create_table(
        "tallies",
        sa.Column("scope", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("scope", "name", "shard", name=op.f("pk_tallies")),
    )
    op.create_table(
        "event_counts",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("code", sa.String(length=48), nullable=False),
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("day", "outcome", "code", "shard", name=op.f("pk_event_counts")),
    )
    # The current state of every subject and purpose: the ledger's latest entry of each.
    op.execute(
        "INSERT INTO consent_current (subject_id, purpose, state, expires_at, version) "
        "SELECT l.subject_id, l.purpose, l.state, l.expires_at, l.version "
        "FROM consent_ledger l JOIN (SELECT subject_id, purpose, max(version) AS version "
        "FROM consent_ledger GROUP BY subject_id, purpose) m "
        "ON l.subject_id = m.subject_id AND l.purpose = m.purpose AND l.version = m.version"
    )
    # Statuses are rules, not SQL: every subject with a consent history gets a row no basis
    # matches, so its first reading computes it (consent/compliance.py) and stores it.
    op.execute(
        "INSERT INTO subject_status (subject_id, status, version, basis, changes_at) "
        "SELECT subject_id, 'NOT_ASKED', 0, '', NULL FROM subjects WHERE consent_version > 0"
    )
    op.execute(
        "INSERT INTO tallies (scope, name, shard, n) "
        "SELECT 'coverage:' || purpose, state, 0, count(*) FROM consent_current "
        "GROUP BY purpose, state"
    )
    op.execute(
        "INSERT INTO tallies (scope, name, shard, n) "
        "SELECT 'status:', status, 0, count(*) FROM subject_status GROUP BY status"
    )
    op.execute(
        "INSERT INTO tallies (scope, name, shard, n) "
        "SELECT 'consents:' || substr(at, 1, 10), state, 0, count(*) FROM consent_ledger "
        "GROUP BY substr(at, 1, 10), state"
    )
    # The events stored before it, accepted on the day of their receipt (times are UTC text).
    # Refused ones were never stored, and events already deleted (erasure, purges) are gone:
    # neither can be counted.
    op.execute(
        "INSERT INTO event_counts (day, outcome, code, shard, n) "
        "SELECT substr(received_at, 1, 10), 'accepted', '', 0, count(*) FROM events "
        "GROUP BY substr(received_at, 1, 10)"
    )


def downgrade() -> None:
    op.drop_table("event_counts")
    op.drop_table("tallies")
    for column in ("changes_at", "basis", "status"):
        op.drop_index(op.f(f"ix_subject_status_{column}"), table_name="subject_status")
    op.drop_table("subject_status")
    op.drop_index(op.f("ix_consent_current_state_expires_at"), table_name="consent_current")
    op.drop_table("consent_current")
