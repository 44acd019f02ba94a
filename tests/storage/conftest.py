"""The storage tests' store: migrated, on the back-end under test (a module may make its own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consentry.settings import Settings
from consentry.storage.dialect import database_url, ensure_data_dir
from consentry.storage.engine import Store
from consentry.storage.migrate import upgrade


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    ensure_data_dir(settings.data_dir)
    opened = Store(database_url(settings))
    upgrade(opened)
    try:
        yield opened
    finally:
        opened.close()
