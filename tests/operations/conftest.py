"""Fixtures of the operations tests: the delivery tests' gateway (schemas, a worker the test
drives, receivers on loopback allowed), scraped with a metrics token."""

from __future__ import annotations

import dataclasses

import pytest

from consentry.settings import Settings
from tests.delivery.conftest import gateway  # noqa: F401 - the shared fixture, used here

METRICS_TOKEN = "metrics-token-for-tests"


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings,
        delivery_worker=False,
        retry_base_seconds=0.05,
        delivery_timeout_seconds=0.5,
        delivery_max_attempts=4,
        allow_private_endpoints=True,
        metrics_token=METRICS_TOKEN,
        dsr_poll_seconds=0,
    )
