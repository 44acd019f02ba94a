"""Database triggers, kept here rather than in one migration: SQLite drops a table's
triggers whenever a migration rebuilds that table, so they are made sure of at every start."""

from __future__ import annotations

from sqlalchemy import Connection, text

# Every change of a subject's consent version (ledger entries, erasure, restriction,
# objection) moves the consent counter of the policy version (storage/reads.py).
_SQLITE = (
    """
CREATE TRIGGER IF NOT EXISTS subjects_consent_changes
AFTER UPDATE OF consent_version ON subjects
WHEN NEW.consent_version <> OLD.consent_version
BEGIN
    UPDATE config_state SET consent_changes = consent_changes + 1 WHERE id = 1;
END
""",
)
_POSTGRESQL = (
    """
CREATE OR REPLACE FUNCTION count_consent_change() RETURNS trigger AS $$
BEGIN
    UPDATE config_state SET consent_changes = consent_changes + 1 WHERE id = 1;
    RETURN NULL;
END
$$ LANGUAGE plpgsql
""",
    "DROP TRIGGER IF EXISTS subjects_consent_changes ON subjects",
    """
CREATE TRIGGER subjects_consent_changes AFTER UPDATE OF consent_version ON subjects
FOR EACH ROW WHEN (NEW.consent_version IS DISTINCT FROM OLD.consent_version)
EXECUTE FUNCTION count_consent_change()
""",
)


# PostgreSQL: one process at a time replaces them (two gateways starting together would
# otherwise update the same catalogue rows: "tuple concurrently updated").
_ADVISORY_KEY = 7307616771


def ensure(conn: Connection) -> None:
    """Create (or replace) every trigger of the schema."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SELECT pg_advisory_xact_lock({_ADVISORY_KEY})"))
    for statement in _POSTGRESQL if conn.dialect.name == "postgresql" else _SQLITE:
        conn.exec_driver_sql(statement)
