"""rights notices: a sealed part (a rectification's corrected values) and a strictly growing
`seq` (their order); request_acks goes, the notices being the one record of acknowledgements

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consentry.storage.schema import UTCTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The columns both versions of rights_notices have.
_COMMON = (
    "notice_id, system_id, subject_id, type, request_id, purposes, forward, status, attempts, "
    "next_at, created_at, due_at, acknowledged_at, overdue_at, last_error"
)


def _columns() -> list[sa.Column[object]]:
    return [
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
    ]


def _set_aside() -> None:
    """Copy the notices to a plain table and drop rights_notices (its indexes and keys go
    with it, so the new table can take their names on PostgreSQL too)."""
    op.execute("CREATE TABLE rights_notices_old AS SELECT * FROM rights_notices")
    op.drop_table("rights_notices")


def upgrade() -> None:
    _set_aside()
    op.create_table(
        "rights_notices",
        sa.Column("seq", BigInt, autoincrement=True, nullable=False),
        sa.Column("notice_id", sa.String(length=40), nullable=False),
        *_columns(),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_rights_notices")),
        sa.UniqueConstraint("notice_id", name=op.f("uq_rights_notices_notice_id")),
    )
    op.create_index(
        op.f("ix_rights_notices_status_next_at"), "rights_notices", ["status", "next_at"]
    )
    op.create_index(op.f("ix_rights_notices_request_id"), "rights_notices", ["request_id"])
    op.create_index(
        op.f("ix_rights_notices_subject_id_system_id_seq"),
        "rights_notices",
        ["subject_id", "system_id", "seq"],
    )
    # Numbered in the order they were queued, as far as created_at tells it.
    op.execute(
        f"INSERT INTO rights_notices ({_COMMON}) SELECT {_COMMON} FROM rights_notices_old "  # noqa: S608 - constants only
        "ORDER BY created_at, notice_id"
    )
    op.drop_table("rights_notices_old")
    # Whether a request's recipients acknowledged it is read from its notices.
    op.drop_table("request_acks")


def downgrade() -> None:
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
    # What each request awaits, rebuilt from its notices: a system is awaited while one of
    # its notices of the request is unanswered.
    op.execute(
        "INSERT INTO request_acks (request_id, system_id, kind, sent_at, acknowledged_at, via) "
        "SELECT request_id, system_id, MAX(type), MAX(created_at), "
        "CASE WHEN SUM(CASE WHEN status = 'acknowledged' THEN 0 ELSE 1 END) = 0 "
        "THEN MAX(acknowledged_at) END, "
        "CASE WHEN SUM(CASE WHEN status = 'acknowledged' THEN 0 ELSE 1 END) = 0 "
        "THEN 'endpoint' END "
        "FROM rights_notices WHERE request_id IS NOT NULL GROUP BY request_id, system_id"
    )
    _set_aside()
    op.create_table(
        "rights_notices",
        sa.Column("notice_id", sa.String(length=40), nullable=False),
        *_columns(),
        sa.PrimaryKeyConstraint("notice_id", name=op.f("pk_rights_notices")),
    )
    op.create_index(
        op.f("ix_rights_notices_request_id"), "rights_notices", ["request_id"], unique=False
    )
    op.create_index(
        op.f("ix_rights_notices_status_next_at"), "rights_notices", ["status", "next_at"]
    )
    op.create_index(op.f("ix_rights_notices_subject_id"), "rights_notices", ["subject_id"])
    op.execute(
        f"INSERT INTO rights_notices ({_COMMON}) SELECT {_COMMON} FROM rights_notices_old"  # noqa: S608 - constants only
    )
    op.drop_table("rights_notices_old")
