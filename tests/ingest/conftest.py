"""Fixtures of the ingest tests: a gateway with a notice and a page_view schema."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.ingest.test_pipeline import with_page_views


@pytest.fixture
def ready(client: TestClient) -> TestClient:
    return with_page_views(client)
