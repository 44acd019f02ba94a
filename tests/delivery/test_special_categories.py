"""Special-category fields in deliveries (both back-ends, receivers on loopback): shown only to
systems that receive the event for a qualifying purpose, hidden from the others even when
they declare the category, and from a qualifying one whose purpose is withdrawn before the
send."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import auth
from tests.delivery.receiver import receiver
from tests.delivery.test_delivery import add, system, worker
from tests.ingest.test_pipeline import event, grant, send, who

CARE = {
    "name": "Care",
    "legal_basis": "consent",
    "retention_days": 30,
    "special_category_condition": "a",
}
VISIT: dict[str, Any] = {
    "purposes": ["analytics", "care"],
    "fields": {
        "url": {"type": "string", "category": "system.operations", "treatment": "keep"},
        "condition": {"type": "string", "category": "user.health_and_medical", "treatment": "keep"},
    },
}
NOTICE = {"id": "care", "version": "1"}


def setup(client: TestClient) -> None:
    assert client.put("/v1/purposes/care", headers=auth(), json=CARE).status_code == 201
    resp = client.put(
        "/v1/notices/care",
        headers=auth(),
        json={"version": "1", "text": "Care.", "purposes": ["analytics", "care"]},
    )
    assert resp.status_code == 201, resp.text
    assert client.put("/v1/schemas/visit", headers=auth(), json=VISIT).status_code == 201
    grant(
        client,
        who("lee"),
        "analytics",
        "care",
        notice=NOTICE,
        explicit=True,
        evidence={"checkbox": "health-consent-v1"},
    )


def visit(event_id: str) -> dict[str, Any]:
    return event(
        event_id,
        who("lee"),
        event_type="visit",
        properties={"url": "/clinic", "condition": "asthma"},
    )


def test_special_categories_reach_qualifying_systems_only(gateway: TestClient) -> None:
    setup(gateway)
    every = ["system.operations", "user"]  # each system declares the category
    with receiver() as stats, receiver() as clinic, receiver() as both:
        add(gateway, "stats", system(stats.url, purposes=["analytics"], data_categories=every))
        add(gateway, "clinic", system(clinic.url, purposes=["care"], data_categories=every))
        add(
            gateway,
            "both",
            system(both.url, purposes=["analytics", "care"], data_categories=every),
        )
        [result] = send(gateway, [visit("h1")])
        assert result["purposes"] == ["analytics", "care"]
        assert worker(gateway).run_once() == 3
        [to_stats] = stats.events()
        assert to_stats["purposes"] == ["analytics"]
        assert to_stats["properties"] == {"url": "/clinic"}
        assert b"asthma" not in stats.received[0][0]
        [to_clinic] = clinic.events()
        assert to_clinic["purposes"] == ["care"]
        assert to_clinic["properties"] == {"url": "/clinic", "condition": "asthma"}
        [to_both] = both.events()
        assert to_both["purposes"] == ["analytics", "care"]
        assert to_both["properties"]["condition"] == "asthma"


def test_a_withdrawn_qualifying_purpose_hides_the_field_at_send_time(
    gateway: TestClient,
) -> None:
    setup(gateway)
    every = ["system.operations", "user"]
    with receiver() as both:
        add(
            gateway,
            "both",
            system(both.url, purposes=["analytics", "care"], data_categories=every),
        )
        send(gateway, [visit("h2")])
        resp = gateway.post(
            "/v1/consents/withdraw",
            headers=auth(),
            json={"subject": who("lee"), "purposes": ["care"], "source": "web"},
        )
        assert resp.status_code == 200, resp.text
        assert worker(gateway).run_once() == 1
        [delivered] = both.events()
        assert delivered["purposes"] == ["analytics"]
        assert delivered["properties"] == {"url": "/clinic"}
        assert b"asthma" not in both.received[0][0]
