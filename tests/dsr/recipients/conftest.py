"""Requests whose subject's data has recipients: the runner and the delivery worker driven by
the test, a schema of page visits, systems on loopback receivers, and helpers to read what they
were sent."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry.delivery.worker import DeliveryWorker
from consentry.settings import Settings
from tests.conftest import auth
from tests.delivery.receiver import Receiver
from tests.dsr.conftest import runtime_of

# Page visits serve a consent purpose, a direct-marketing one and a legitimate interest.
VISIT: dict[str, Any] = {
    "purposes": ["analytics", "marketing", "security"],
    "fields": {
        "page": {"type": "string", "category": "system.operations", "treatment": "keep"},
        "note": {"type": "string", "category": "user.content", "treatment": "keep"},
    },
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The request runner and the delivery worker driven by the test; retries in tens of
    milliseconds."""
    return dataclasses.replace(
        settings,
        dsr_poll_seconds=0,
        delivery_worker=False,
        retry_base_seconds=0.05,
        delivery_timeout_seconds=0.5,
    )


@pytest.fixture
def gateway(ready: TestClient) -> TestClient:
    assert ready.put("/v1/schemas/visit", headers=auth(), json=VISIT).status_code == 201
    return ready


def system(endpoint: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "CRM",
        "kind": "webhook",
        "endpoint": endpoint,
        "purposes": ["analytics", "marketing", "security"],
        "data_categories": ["system.operations", "user.contact"],
        "region": "EU",
        "transfer_mechanism": "none",
        "dpa_signed": True,
    } | extra


def add(client: TestClient, system_id: str, body: dict[str, Any]) -> str:
    resp = client.put(f"/v1/systems/{system_id}", headers=auth(), json=body)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["signing_secret"])


def visit(client: TestClient, subject: dict[str, Any], event_id: str) -> None:
    resp = client.post(
        "/v1/events",
        headers=auth(),
        json={
            "events": [
                {
                    "event_id": event_id,
                    "event_type": "visit",
                    "occurred_at": "2026-11-20T10:00:00Z",
                    "subject": subject,
                    "properties": {"page": "/offers", "note": "call me after six"},
                }
            ]
        },
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == 1, resp.text


def worker(client: TestClient) -> DeliveryWorker:
    return runtime_of(client).delivery_worker()


def pump(w: DeliveryWorker, rights: Receiver, count: int) -> None:
    """Run the worker until `rights` has acknowledged `count` notices."""
    deadline = time.monotonic() + 10
    while len(rights.received) < count and time.monotonic() < deadline:
        w.run_once()
        time.sleep(0.02)
    assert len(rights.received) == count, rights.bodies()


def signed(rights: Receiver, n: int, secret: str) -> dict[str, Any]:
    """The n-th notice `rights` acknowledged, its signature checked."""
    raw, headers = rights.received[n]
    expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    assert headers["X-Consentry-Signature"] == expected
    return dict(rights.bodies()[n])


def state(client: TestClient, request_id: str) -> dict[str, Any]:
    resp = client.get(f"/v1/requests/{request_id}", headers=auth())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def delivered(client: TestClient, hook: Receiver, subject: dict[str, Any]) -> str:
    """Deliver one visit of `subject`; its pseudonym at the receiving system."""
    visit(client, subject, "v1")
    assert worker(client).run_once() >= 1
    return str(hook.events()[0]["subject_pseudonym"])
