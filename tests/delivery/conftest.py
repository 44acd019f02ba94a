"""Fixtures of the delivery tests: a gateway with schemas and no background worker (tests
drive the worker), retries in tens of milliseconds."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.settings import Settings
from tests.ingest.test_pipeline import with_page_views


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings,
        delivery_worker=False,
        retry_base_seconds=0.05,
        delivery_timeout_seconds=0.5,
        delivery_max_attempts=4,
        # The receivers of these tests listen on loopback.
        allow_private_endpoints=True,
    )


@pytest.fixture
def gateway(fast_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(fast_settings)) as client:
        yield with_page_views(client)
