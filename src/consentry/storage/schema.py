"""Every table, in one SQLAlchemy Core MetaData; migrations must produce exactly this."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCTime(TypeDecorator[datetime]):
    """An aware UTC datetime stored as fixed-width RFC 3339 text, so text order is time order."""

    impl = String(27)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


subjects = Table(
    "subjects",
    metadata,
    Column("subject_id", String(40), primary_key=True),
    Column("jurisdiction", String(8), nullable=True),
    Column("created_at", UTCTime(), nullable=False),
)

identities = Table(
    "identities",
    metadata,
    Column("identity_id", Integer, primary_key=True, autoincrement=True),
    Column(
        "subject_id",
        String(40),
        ForeignKey("subjects.subject_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("type", String(16), nullable=False),
    # Keyed HMAC of type and normalised value: the only form in which an identity is searchable.
    Column("blind_index", LargeBinary(32), nullable=False),
    # The normalised value, AES-256-GCM under the subject's own data key.
    Column("value_ct", LargeBinary, nullable=False),
    Column("created_at", UTCTime(), nullable=False),
    UniqueConstraint("type", "blind_index"),
    Index(None, "subject_id"),
)

subject_keys = Table(
    "subject_keys",
    metadata,
    Column("subject_id", String(40), primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("kek_id", String(16), nullable=False),
    Column("created_at", UTCTime(), nullable=False),
)

key_material = Table(
    "key_material",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("kek_id", String(16), nullable=False),
    Column("created_at", UTCTime(), nullable=False),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("public_jwk", Text, nullable=False),
    Column("wrapped_private", LargeBinary, nullable=False),
    Column("kek_id", String(16), nullable=False),
    Column("created_at", UTCTime(), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("retired_at", UTCTime(), nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("label", String(200), nullable=False),
    # SHA-256 of the whole key: keys are 256-bit random, so a fast hash is the right one.
    Column("key_hash", LargeBinary(32), nullable=False),
    Column("created_at", UTCTime(), nullable=False),
    Column("revoked_at", UTCTime(), nullable=True),
)

audit_entries = Table(
    "audit_entries",
    metadata,
    Column(
        "idx", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    ),
    Column("at", UTCTime(), nullable=False),
    Column("actor", String(80), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject_id", String(40), nullable=True),
    Column("details", Text, nullable=False),
    Column("leaf_hash", String(64), nullable=False),
    Index(None, "subject_id", "idx"),
)

# One row: the size of the audit log. Taking its row lock orders appends across processes.
audit_state = Table(
    "audit_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
)
