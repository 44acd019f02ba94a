"""Delivery end to end (both back-ends) with real receivers on loopback: routing, minimised
signed payloads, transfer rules; the helpers the delivery tests share (systems, events, the
worker driven by the test)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry.delivery.worker import DeliveryWorker
from consentry.runtime import Runtime
from consentry.storage.schema import outbox
from tests.conftest import auth
from tests.delivery.receiver import receiver
from tests.ingest.test_pipeline import event, grant, send, who


def system(endpoint: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "Warehouse",
        "kind": "webhook",
        "endpoint": endpoint,
        "purposes": ["analytics"],
        "data_categories": ["system.operations", "user.contact"],
        "region": "EU",
        "transfer_mechanism": "none",
        "dpa_signed": True,
    } | extra


def add(client: TestClient, system_id: str, body: dict[str, Any]) -> str:
    resp = client.put(f"/v1/systems/{system_id}", headers=auth(), json=body)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["signing_secret"])


def add_vendor(client: TestClient, vendor_id: str = "example-crm", **change: Any) -> str:
    """A vendor in the register with a DPA in force (and CCPA terms), for systems to name."""
    body = {
        "name": "Example CRM Ltd",
        "dpa_signed_at": "2025-01-15",
        "ccpa_contract_at": "2025-01-15",
        "risk": "low",
        "reviewed_at": "2026-06-01",
    } | change
    resp = client.put(f"/v1/vendors/{vendor_id}", headers=auth(), json=body)
    assert resp.status_code in (200, 201), resp.text
    return vendor_id


def runtime_of(client: TestClient) -> Runtime:
    rt = client.app.state.runtime  # type: ignore[attr-defined]
    assert isinstance(rt, Runtime)
    return rt


def worker(client: TestClient) -> DeliveryWorker:
    return runtime_of(client).delivery_worker()


def page_view(event_id: str, name: str = "ana") -> dict[str, Any]:
    return event(
        event_id,
        who(name),
        properties={
            "url": "/home",
            "email": f"{name}@example.com",
            "message": "call me on +44 7700 900123",
            "card": "4111111111111111",
            "offer": "spring",
        },
    )


def test_routing_minimises_pseudonymises_and_signs(gateway: TestClient) -> None:
    grant(gateway, who("ana"), "analytics", "personalization")
    with receiver() as a, receiver() as b:
        secret = add(gateway, "warehouse", system(a.url))
        add(gateway, "crm", system(b.url, purposes=["personalization", "analytics"]))
        add(gateway, "unrelated", system(b.url, purposes=["marketing"]))
        assert send(gateway, [page_view("e1")])[0]["status"] == "accepted"
        assert worker(gateway).run_once() == 2
        [(raw, headers)] = a.received
        expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        assert headers["X-Consentry-Signature"] == expected
        body = a.bodies()[0]
        assert body["type"] == "events"
        assert body["system_id"] == "warehouse"
        [delivered] = body["events"]
        assert delivered["purposes"] == ["analytics"]
        # The warehouse declares system.operations and user.contact: not user.content nor
        # user.financial; `offer` serves personalization only.
        assert set(delivered["properties"]) == {"url", "email"}
        assert delivered["properties"]["email"] != "ana@example.com"
        assert b"ana@example.com" not in raw
        # Spelled with its space: a pseudonym's hex may hold the digits by chance.
        assert b"7700 900123" not in raw
        [crm_event] = b.events()
        assert crm_event["purposes"] == ["analytics", "personalization"]
        assert "offer" in crm_event["properties"]
        # Keyed per system: two recipients cannot join their data.
        assert crm_event["subject_pseudonym"] != delivered["subject_pseudonym"]
        assert len(delivered["subject_pseudonym"]) == 64
        assert set(delivered) == {
            "event_id",
            "event_type",
            "occurred_at",
            "subject_pseudonym",
            "purposes",
            "properties",
        }


def test_the_outbox_holds_no_value_in_clear(gateway: TestClient) -> None:
    """A delivery waiting in the outbox is sealed under its subject's key: its row carries no
    value of the event, personal or not, in clear (so erasing the key erases it too)."""
    grant(gateway, who("ana"), "analytics")
    with receiver() as a:
        add(gateway, "warehouse", system(a.url))
        assert send(gateway, [page_view("e1")])[0]["status"] == "accepted"
        with runtime_of(gateway).store.read() as conn:
            rows = conn.execute(select(outbox)).all()
        assert len(rows) == 1
        stored = b"".join(
            value if isinstance(value, bytes) else str(value).encode() for value in rows[0]
        )
        clear_values = (b"ana@example.com", b"7700 900123", b"4111111111111111", b"/home")
        for clear in (*clear_values, b"page_view"):
            assert clear not in stored, clear
        assert worker(gateway).run_once() == 1
        assert a.events()[0]["properties"]["url"] == "/home"


@pytest.mark.parametrize(
    ("extra", "jurisdiction", "reason"),
    [
        ({"region": "US"}, "EU", "transfer_blocked"),
        ({"region": "US", "transfer_mechanism": "scc"}, "EU", "transfer_blocked"),
        (
            {"region": "US", "transfer_mechanism": "dpf", "dpf_certified_until": "2020-01-01"},
            "EU",
            "transfer_blocked",
        ),
        ({"vendor": "Example Ltd", "dpa_signed": False}, "EU", "dpa_missing"),
        ({"ccpa_role": "third_party"}, "US-CA", "sale_opted_out"),
        ({"region": "US", "transfer_mechanism": "scc", "tia_ref": "TIA-1"}, "EU", None),
        (
            {"region": "US", "transfer_mechanism": "dpf", "dpf_certified_until": "2099-01-01"},
            "EU",
            None,
        ),
    ],
)
def test_delivery_rules(
    gateway: TestClient, extra: dict[str, Any], jurisdiction: str, reason: str | None
) -> None:
    grant(gateway, who("ana"), "analytics", jurisdiction=jurisdiction)
    if reason == "sale_opted_out":
        gpc = gateway.post(
            "/v1/consents",
            headers=auth(),
            json={"subject": who("ana"), "source": "web", "gpc": True},
        )
        assert gpc.status_code == 200, gpc.text
    with receiver() as r:
        add(gateway, "vendor", system(r.url, **extra))
        assert send(gateway, [page_view("e1")])[0]["status"] == "accepted"
        worker(gateway).run_once()
        got = gateway.get("/v1/systems/vendor", headers=auth()).json()["delivery"]
        if reason is None:
            assert len(r.events()) == 1
            assert got["refused"] == {}
        else:
            assert r.attempts == 0
            assert got == {"pending": 0, "dead": 0, "refused": {reason: 1}}
            # The compliance summary sums the refusals of every system, per reason.
            summary = gateway.get("/v1/compliance/summary", headers=auth()).json()
            assert summary["deliveries"] == {"pending": 0, "dead": 0, "refused": {reason: 1}}
            actions = [
                e
                for e in gateway.get("/v1/audit/entries", headers=auth()).json()["items"]
                if e["action"] == "delivery:refused"
            ]
            assert actions[-1]["details"] == {"vendor": {reason: 1}}
