"""The vendor register's hold on deliveries (both back-ends, real receivers on loopback): a
system's DPA state comes from its vendor (none, not yet signed, or lapsed at send time:
`dpa_missing`), a service provider without the CCPA terms on record counts as a third party,
and a vendor's sub-processors pass the transfer rules by their region."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry import clock
from tests.conftest import auth
from tests.consent.helpers import install_clock
from tests.delivery.receiver import receiver
from tests.delivery.test_delivery import add, add_vendor, page_view, system, worker
from tests.ingest.test_pipeline import grant, send, who


def delivery(gateway: TestClient, system_id: str) -> Any:
    return gateway.get(f"/v1/systems/{system_id}", headers=auth()).json()["delivery"]


def test_a_dpa_that_lapses_stops_deliveries_at_send_time(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    today = clock.now().date()
    grant(gateway, who("ana"), "analytics")
    with receiver() as r:
        vendor = add_vendor(gateway, dpa_expires_at=(today + timedelta(days=2)).isoformat())
        add(gateway, "crm", system(r.url, vendor=vendor))
        assert send(gateway, [page_view("e1")])[0]["status"] == "accepted"
        assert worker(gateway).run_once() == 1
        assert len(r.events()) == 1
        # Queued while the DPA holds, due after it has lapsed: not sent.
        assert send(gateway, [page_view("e2")])[0]["status"] == "accepted"
        fake.advance(days=2)
        worker(gateway).run_once()
        assert len(r.events()) == 1
        assert delivery(gateway, "crm") == {"pending": 0, "dead": 0, "refused": {"dpa_missing": 1}}
        # A renewed DPA lets the next event through.
        add_vendor(gateway, dpa_expires_at=(today + timedelta(days=400)).isoformat())
        assert send(gateway, [page_view("e3")])[0]["status"] == "accepted"
        worker(gateway).run_once()
        assert [e["event_id"] for e in r.events()] == ["e1", "e3"]


@pytest.mark.parametrize(
    ("vendor", "extra", "jurisdiction", "reason"),
    [
        # The system attests a DPA; the register has none for its vendor, or none in force.
        (None, {"vendor": "unregistered-ltd"}, "EU", "dpa_missing"),
        ({"dpa_signed_at": None}, {}, "EU", "dpa_missing"),
        ({"dpa_signed_at": "2099-01-01"}, {}, "EU", "dpa_missing"),
        ({"dpa_expires_at": "2026-01-01"}, {}, "EU", "dpa_missing"),
        # Both must hold: a DPA in the register and the system's own dpa_signed.
        ({}, {"dpa_signed": False}, "EU", "dpa_missing"),
        ({}, {}, "EU", None),
        # CCPA: a service provider or contractor only with the regs §7051 terms on record.
        ({"ccpa_contract_at": None}, {"ccpa_role": "service_provider"}, "US-CA", "sale_opted_out"),
        ({"ccpa_contract_at": None}, {"ccpa_role": "contractor"}, "US-CA", "sale_opted_out"),
        ({}, {"ccpa_role": "service_provider"}, "US-CA", None),
        # Sub-processors by their region (an EU system, an EU subject).
        (
            {"sub_processors": [{"name": "Sub", "region": "US", "authorised_at": "2025-01-15"}]},
            {},
            "EU",
            "transfer_blocked",
        ),
        (
            {"sub_processors": [{"name": "Sub", "region": "CH", "authorised_at": "2025-01-15"}]},
            {},
            "EU",
            None,
        ),
        (
            {"sub_processors": [{"name": "Sub", "region": "IN", "authorised_at": "2025-01-15"}]},
            {"transfer_mechanism": "scc", "tia_ref": "TIA-7"},
            "EU",
            None,
        ),
    ],
)
def test_vendor_rules(
    gateway: TestClient,
    vendor: dict[str, Any] | None,
    extra: dict[str, Any],
    jurisdiction: str,
    reason: str | None,
) -> None:
    grant(gateway, who("ana"), "analytics", jurisdiction=jurisdiction)
    if jurisdiction == "US-CA":
        gpc = gateway.post(
            "/v1/consents",
            headers=auth(),
            json={"subject": who("ana"), "source": "web", "gpc": True},
        )
        assert gpc.status_code == 200, gpc.text
    with receiver() as r:
        named = {} if vendor is None else {"vendor": add_vendor(gateway, **vendor)}
        add(gateway, "crm", system(r.url, **named | extra))
        assert send(gateway, [page_view("e1")])[0]["status"] == "accepted"
        worker(gateway).run_once()
        got = delivery(gateway, "crm")
        if reason is None:
            assert len(r.events()) == 1
            assert got["refused"] == {}
        else:
            assert r.attempts == 0
            assert got == {"pending": 0, "dead": 0, "refused": {reason: 1}}
