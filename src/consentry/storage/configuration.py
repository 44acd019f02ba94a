"""SQL for the configuration version: one counter every process reads to spot a change."""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from consentry.storage.schema import config_state

CONFIG_VERSION = select(config_state.c.version).where(config_state.c.id == 1)


def config_version(conn: Connection) -> int:
    return int(conn.execute(CONFIG_VERSION).scalar_one())


def bump_config_version(conn: Connection) -> int:
    """Mark a change of purposes, notices or schemas (in the changing transaction)."""
    stmt = (
        update(config_state)
        .where(config_state.c.id == 1)
        .values(version=config_state.c.version + 1)
        .returning(config_state.c.version)
    )
    return int(conn.execute(stmt).scalar_one())
