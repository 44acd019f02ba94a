"""Alembic migrations run in process: `upgrade(store)` brings any database to head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from consentry.storage import triggers
from consentry.storage.engine import Store

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(store: Store) -> Config:
    """An Alembic Config pointing at the packaged migrations, bound to `store`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["store"] = store
    return config


def upgrade(store: Store, revision: str = "head") -> None:
    """Apply every pending migration in one transaction per step, then make sure the
    triggers exist (SQLite drops a table's triggers when a migration rebuilds the table)."""
    command.upgrade(alembic_config(store), revision)
    if revision == "head":
        with store.write() as conn:
            triggers.ensure(conn)
