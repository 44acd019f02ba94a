"""consent ledger

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 12:24:13.428524
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from consentry.storage.schema import UTCTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The purposes of a fresh install (API.md, Purposes and notices), as they were at this revision.
DEFAULT_PURPOSE_COLUMNS = (
    "key",
    "name",
    "legal_basis",
    "retention_days",
    "consent_ttl_days",
    "sale_or_share",
    "direct_marketing",
    "strictly_necessary",
    "special_category_condition",
    "us_ca_model",
    "retain_identities",
    "data_use",
    "description",
    "legal_basis_locked",
)
DEFAULT_PURPOSES = (
    (
        "analytics",
        "Analytics",
        "consent",
        395,
        395,
        False,
        False,
        False,
        None,
        "opt_in",
        False,
        "analytics.reporting",
        "Measuring and improving the customer experience.",
        False,
    ),
    (
        "personalization",
        "Personalisation",
        "consent",
        395,
        395,
        False,
        False,
        False,
        None,
        "opt_in",
        False,
        "personalize",
        "Tailoring content and offers to the customer.",
        False,
    ),
    (
        "marketing",
        "Direct marketing",
        "consent",
        730,
        395,
        False,
        True,
        False,
        None,
        "opt_in",
        False,
        "marketing.communications",
        "Marketing messages by e-mail, SMS or phone.",
        False,
    ),
    (
        "advertising",
        "Advertising",
        "consent",
        395,
        395,
        True,
        False,
        False,
        None,
        "opt_in",
        False,
        "marketing.advertising",
        "Targeted advertising, including cross-context.",
        False,
    ),
    (
        "location",
        "Location",
        "consent",
        90,
        395,
        False,
        False,
        False,
        None,
        "opt_in",
        False,
        None,
        "Use of precise geolocation.",
        False,
    ),
    (
        "third_party_sharing",
        "Sharing with third parties",
        "consent",
        395,
        395,
        True,
        False,
        False,
        None,
        "opt_in",
        False,
        "third_party_sharing",
        "Sharing or selling data to third parties.",
        False,
    ),
    (
        "service_delivery",
        "Service delivery",
        "contract",
        2190,
        395,
        False,
        False,
        False,
        None,
        "opt_in",
        True,
        "essential.service",
        "Providing the service the customer asked for.",
        False,
    ),
    (
        "legal_compliance",
        "Legal compliance",
        "legal_obligation",
        3650,
        395,
        False,
        False,
        False,
        None,
        "opt_in",
        True,
        "essential.legal_obligation",
        "Meeting a legal obligation.",
        False,
    ),
    (
        "security",
        "Security",
        "legitimate_interest",
        395,
        395,
        False,
        False,
        True,
        None,
        "opt_in",
        False,
        "essential.service.security",
        "Fraud prevention and security.",
        False,
    ),
)


def upgrade() -> None:
    op.create_table(
        "config_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_config_state")),
    )
    op.create_table(
        "consent_ledger",
        sa.Column(
            "entry_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("at", UTCTime(), nullable=False),
        sa.Column("expires_at", UTCTime(), nullable=True),
        sa.Column("notice_id", sa.String(length=64), nullable=True),
        sa.Column("notice_version", sa.String(length=64), nullable=True),
        sa.Column("notice_sha256", sa.String(length=64), nullable=True),
        sa.Column("jurisdiction", sa.String(length=8), nullable=True),
        sa.Column("explicit", sa.Boolean(), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("evidence_ct", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_consent_ledger")),
        sa.UniqueConstraint(
            "subject_id", "version", name=op.f("uq_consent_ledger_subject_id_version")
        ),
    )
    with op.batch_alter_table("consent_ledger", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_ledger_subject_id_purpose_version"),
            ["subject_id", "purpose", "version"],
            unique=False,
        )

    op.create_table(
        "notices",
        sa.Column("notice_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("purposes", sa.Text(), nullable=False),
        sa.Column("created_at", UTCTime(), nullable=False),
        sa.PrimaryKeyConstraint("notice_id", "version", name=op.f("pk_notices")),
    )
    op.create_table(
        "purposes",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("legal_basis", sa.String(length=24), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("consent_ttl_days", sa.Integer(), nullable=False),
        sa.Column("sale_or_share", sa.Boolean(), nullable=False),
        sa.Column("direct_marketing", sa.Boolean(), nullable=False),
        sa.Column("strictly_necessary", sa.Boolean(), nullable=False),
        sa.Column("special_category_condition", sa.String(length=1), nullable=True),
        sa.Column("us_ca_model", sa.String(length=8), nullable=False),
        sa.Column("retain_identities", sa.Boolean(), nullable=False),
        sa.Column("data_use", sa.String(length=100), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("legal_basis_locked", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_purposes")),
    )
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "consent_version",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                server_default="0",
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("age_band", sa.String(length=12), nullable=True))
        batch_op.add_column(
            sa.Column("gpc_opt_out", sa.Boolean(), server_default=sa.false(), nullable=False)
        )

    config_state = sa.table(
        "config_state", sa.column("id", sa.Integer), sa.column("version", sa.Integer)
    )
    op.bulk_insert(config_state, [{"id": 1, "version": 1}])
    purposes = sa.table(
        "purposes",
        *(sa.column(name) for name in DEFAULT_PURPOSE_COLUMNS),
        sa.column("updated_at", UTCTime()),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        purposes,
        [
            dict(zip(DEFAULT_PURPOSE_COLUMNS, row, strict=True)) | {"updated_at": now}
            for row in DEFAULT_PURPOSES
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.drop_column("gpc_opt_out")
        batch_op.drop_column("age_band")
        batch_op.drop_column("consent_version")

    op.drop_table("purposes")
    op.drop_table("notices")
    op.drop_table("consent_ledger")
    op.drop_table("config_state")
