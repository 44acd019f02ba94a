"""Alembic environment: runs migrations on the Store handed over in the config."""

from __future__ import annotations

from alembic import context

from consentry.storage.engine import Store
from consentry.storage.schema import metadata

store = context.config.attributes["store"]
if not isinstance(store, Store):
    raise TypeError("migrations need a consentry Store in config.attributes['store']")

with store.write() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=store.dialect == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
