"""Fixtures of the read tests: a gateway with a notice and a page_view schema."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth
from tests.ingest.test_pipeline import CONSENT_PURPOSES, SCHEMA


@pytest.fixture
def ready(client: TestClient) -> TestClient:
    client.put(
        "/v1/notices/main",
        headers=auth(),
        json={"version": "1", "text": "Notice.", "purposes": CONSENT_PURPOSES},
    )
    assert client.put("/v1/schemas/page_view", headers=auth(), json=SCHEMA).status_code == 201
    return client
