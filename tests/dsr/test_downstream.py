"""Requests reach real downstream systems (both back-ends): an erasure cancels pending
deliveries, sends purge requests to every system that received the subject's data (one
failing twice before it acknowledges), and completes when each has acknowledged."""

from __future__ import annotations

import dataclasses
import time

import pytest
from fastapi.testclient import TestClient

from consentry.settings import Settings
from tests.conftest import auth
from tests.delivery.conftest import gateway
from tests.delivery.receiver import receiver
from tests.delivery.test_delivery import add, page_view, runtime_of, system, worker
from tests.ingest.test_pipeline import grant, send, who


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    """The delivery tests' gateway (tests/delivery/conftest.py), with the request runner
    driven by the test too."""
    return dataclasses.replace(
        settings,
        delivery_worker=False,
        dsr_poll_seconds=0,
        retry_base_seconds=0.05,
        delivery_timeout_seconds=0.5,
    )


__all__ = ["gateway"]


def status(client: TestClient, request_id: str) -> str:
    return str(client.get(f"/v1/requests/{request_id}", headers=auth()).json()["status"])


def test_erasure_purges_downstream_and_waits_for_each_acknowledgement(
    gateway: TestClient,
) -> None:
    grant(gateway, who("ana"), "analytics")
    rt = runtime_of(gateway)
    assert rt.settings.dsr_poll_seconds == 0  # the test drives the runner
    with (
        receiver() as hook,
        receiver(script=[503, 503]) as rights,
    ):
        add(gateway, "crm", system(hook.url, rights_endpoint=rights.url))
        add(gateway, "paper", system(hook.url))
        send(gateway, [page_view("e1")])
        w = worker(gateway)
        assert w.run_once() == 2
        # A second event stays pending in the outbox: the erasure must cancel it.
        send(gateway, [page_view("e2")])
        created = gateway.post(
            "/v1/requests",
            headers=auth(),
            json={
                "type": "erasure",
                "subject": who("ana"),
                "jurisdiction": "EU",
                "verification": {"method": "id_document", "level": "high"},
            },
        )
        assert created.status_code == 202, created.text
        request_id = created.json()["request_id"]
        rt.runner.run_pending()
        assert status(gateway, request_id) == "awaiting_downstream"
        # The purge request is retried until the rights endpoint answers 2xx.
        deadline = time.monotonic() + 10
        while rights.attempts < 3 and time.monotonic() < deadline:
            w.run_once()
            time.sleep(0.05)
        assert rights.attempts == 3
        (notice,) = rights.bodies()
        assert notice["type"] == "purge_request"
        assert notice["request_id"] == request_id
        assert notice["system_id"] == "crm"
        assert "ana@example.com" not in str(notice)
        rt.runner.run_pending()
        # "paper" has no rights endpoint: it waits for an operator's acknowledgement.
        assert status(gateway, request_id) == "awaiting_downstream"
        done = gateway.post(
            f"/v1/requests/{request_id}/acks", headers=auth(), json={"system_id": "paper"}
        )
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "completed"
        # The operator's acknowledgement answers the notice waiting for it, too.
        with rt.store.read() as conn:
            states = {
                n["system_id"]: n["status"]
                for n in rt.rights_notices.of(conn, request_id=request_id)
            }
        assert states == {"crm": "acknowledged", "paper": "acknowledged"}
        # The pending delivery of e2 was cancelled, never made.
        w.run_once()
        assert {e["event_id"] for e in hook.events()} == {"e1"}
