"""Lineage (both back-ends): a field's lineage is the delivery's routing over the data map, as
real deliveries to receivers on loopback show; a subject's lineage is what was delivered to
whom and when, and which rights notices were acknowledged, with no personal data."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry import clock
from consentry.app import create_app
from consentry.settings import Settings
from tests.conftest import auth
from tests.delivery.receiver import receiver
from tests.delivery.test_delivery import add, page_view, runtime_of, system, worker
from tests.http.test_conventions import assert_problem
from tests.ingest.test_pipeline import SCHEMA, grant, send, who, with_page_views

FIELDS = ("url", "email", "message", "card", "offer", "debug", "count")


@pytest.fixture
def gateway(settings: Settings) -> Iterator[TestClient]:
    fast = dataclasses.replace(
        settings,
        delivery_worker=False,
        retry_base_seconds=0.05,
        delivery_timeout_seconds=0.5,
        delivery_max_attempts=4,
        allow_private_endpoints=True,
    )
    with TestClient(create_app(fast)) as client:
        yield with_page_views(client)


def field_lineage(client: TestClient, field: str, event_type: str = "page_view") -> Any:
    resp = client.get(f"/v1/lineage/fields/{event_type}/{field}", headers=auth())
    assert resp.status_code == 200, resp.text
    return resp.json()


def subject_lineage(client: TestClient, subject_id: str) -> dict[str, Any]:
    resp = client.get(f"/v1/subjects/{subject_id}/lineage", headers=auth())
    assert resp.status_code == 200, resp.text
    return {s["system_id"]: s for s in resp.json()["systems"]}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def full_page_view(event_id: str) -> dict[str, Any]:
    event = page_view(event_id)
    event["properties"] |= {"debug": True, "count": 3}
    return event


def test_field_lineage_is_where_deliveries_take_each_field(gateway: TestClient) -> None:
    grant(gateway, who("ana"), "analytics", "personalization")
    with receiver() as a, receiver() as b, receiver() as c:
        add(gateway, "warehouse", system(a.url))
        add(gateway, "crm", system(b.url, purposes=["personalization", "analytics"]))
        add(gateway, "mailer", system(c.url, purposes=["marketing"]))
        lineages = {field: field_lineage(gateway, field) for field in FIELDS}
        assert send(gateway, [full_page_view("e1")])[0]["status"] == "accepted"
        assert worker(gateway).run_once() == 2
        got = {"warehouse": a.events(), "crm": b.events(), "mailer": c.events()}
    for system_id, events in got.items():
        expected = {
            f for f in FIELDS if system_id in {s["system_id"] for s in lineages[f]["systems"]}
        }
        assert {p for e in events for p in e["properties"]} == expected, system_id
        for field in expected:
            [entry] = [s for s in lineages[field]["systems"] if s["system_id"] == system_id]
            [delivered] = events
            # The purposes the field is shown to there are those the delivery names.
            assert set(entry["purposes"]) <= set(delivered["purposes"])
    retention = {
        p["key"]: p["retention_days"]
        for p in gateway.get("/v1/purposes", headers=auth()).json()["items"]
    }
    email = lineages["email"]
    assert email == {
        "event_type": "page_view",
        "field": "email",
        "category": "user.contact.email",
        "treatment": "pseudonymise",
        "purposes": ["analytics", "personalization"],
        "retention_days": max(retention["analytics"], retention["personalization"]),
        "systems": [
            {
                "system_id": "crm",
                "region": "EU",
                "transfer_mechanism": "none",
                "purposes": ["analytics", "personalization"],
            },
            {
                "system_id": "warehouse",
                "region": "EU",
                "transfer_mechanism": "none",
                "purposes": ["analytics"],
            },
        ],
    }
    # A field shown to personalization only reaches the system serving it, for it alone.
    offer = lineages["offer"]
    assert offer["purposes"] == ["personalization"]
    assert offer["retention_days"] == retention["personalization"]
    assert [(s["system_id"], s["purposes"]) for s in offer["systems"]] == [
        ("crm", ["personalization"])
    ]
    # A category no system declares goes nowhere; a dropped field is never kept.
    assert lineages["card"]["systems"] == []
    assert lineages["debug"]["purposes"] == []
    assert lineages["debug"]["retention_days"] is None
    assert lineages["debug"]["systems"] == []


def test_special_category_field_lineage_names_qualifying_purposes(gateway: TestClient) -> None:
    health = dict(SCHEMA["fields"]) | {
        "pulse": {"type": "integer", "category": "user.health_and_medical", "treatment": "keep"}
    }
    schema = {"purposes": SCHEMA["purposes"], "fields": health}
    assert gateway.put("/v1/schemas/visit", headers=auth(), json=schema).status_code == 201
    add(gateway, "clinic", system("https://clinic.example.com/hook", data_categories=["user"]))
    # No purpose has an Art. 9(2) condition: the field is kept for none, goes nowhere.
    pulse = field_lineage(gateway, "pulse", "visit")
    assert pulse["purposes"] == []
    assert pulse["systems"] == []
    body = gateway.get("/v1/purposes/analytics", headers=auth()).json()
    body = {k: v for k, v in body.items() if k not in {"key", "legal_basis_locked"}}
    resp = gateway.put(
        "/v1/purposes/analytics",
        headers=auth(),
        json=body | {"special_category_condition": "h"},
    )
    assert resp.status_code == 200, resp.text
    pulse = field_lineage(gateway, "pulse", "visit")
    assert pulse["purposes"] == ["analytics"]
    assert [(s["system_id"], s["purposes"]) for s in pulse["systems"]] == [
        ("clinic", ["analytics"])
    ]


def test_unknown_event_type_or_field_is_a_404_problem(gateway: TestClient) -> None:
    resp = gateway.get("/v1/lineage/fields/nothing/url", headers=auth())
    assert_problem(resp, 404, "unknown_event_type")
    resp = gateway.get("/v1/lineage/fields/page_view/nothing", headers=auth())
    assert_problem(resp, 404, "field_not_found")
    resp = gateway.get("/v1/subjects/sub_unknown/lineage", headers=auth())
    assert_problem(resp, 404, "subject_not_found")


def test_subject_lineage_is_what_was_delivered_and_acknowledged(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    subject_id = grant(gateway, who("ana"), "analytics", "personalization")["subject_id"]
    other = grant(gateway, who("ben"), "analytics")["subject_id"]
    with receiver() as a, receiver() as b, receiver() as rights, receiver() as c:
        add(gateway, "warehouse", system(a.url))
        add(
            gateway,
            "crm",
            system(b.url, purposes=["personalization", "analytics"], rights_endpoint=rights.url),
        )
        add(gateway, "mailer", system(c.url, purposes=["marketing"]))
        w = worker(gateway)
        # Before any delivery: known subject, nowhere yet.
        assert subject_lineage(gateway, subject_id) == {}
        send(gateway, [page_view("e1")])
        before = clock.now()
        assert w.run_once() == 2
        after = clock.now()
        first = subject_lineage(gateway, subject_id)
        assert set(first) == {"warehouse", "crm"}
        assert first["warehouse"]["purposes"] == ["analytics"]
        assert first["crm"]["purposes"] == ["analytics", "personalization"]
        for entry in first.values():
            assert before <= at(entry["first_delivery_at"]) <= at(entry["last_delivery_at"])
            assert at(entry["last_delivery_at"]) <= after
            assert entry["acknowledged_notices"] == []
        # Ben's delivery is his, not Ana's.
        assert set(subject_lineage(gateway, other)) == set()
        # Later deliveries move the last one, never the first.
        real_now = clock.now
        later = real_now() + timedelta(minutes=5)
        monkeypatch.setattr(clock, "now", lambda: later)
        send(gateway, [page_view("e2")])
        assert w.run_once() == 2
        second = subject_lineage(gateway, subject_id)
        for system_id, entry in second.items():
            assert entry["first_delivery_at"] == first[system_id]["first_delivery_at"]
            assert at(entry["last_delivery_at"]) == later
        # A failed send is no delivery: the last one stays.
        even_later = real_now() + timedelta(minutes=10)
        monkeypatch.setattr(clock, "now", lambda: even_later)
        a.default = 500
        send(gateway, [page_view("e3")])
        w.run_once()
        third = subject_lineage(gateway, subject_id)
        assert third["warehouse"]["last_delivery_at"] == second["warehouse"]["last_delivery_at"]
        assert at(third["crm"]["last_delivery_at"]) == even_later
        monkeypatch.setattr(clock, "now", real_now)
        resp = gateway.post(
            "/v1/consents/withdraw",
            headers=auth(),
            json={"subject": who("ana"), "purposes": ["analytics"], "source": "web"},
        )
        assert resp.status_code == 200, resp.text
        deadline = time.monotonic() + 5
        while not rights.received and time.monotonic() < deadline:
            w.run_once()
            time.sleep(0.02)
        [notice] = rights.bodies()
        assert notice["type"] == "consent_withdrawn"
        resp = gateway.get(f"/v1/subjects/{subject_id}/lineage", headers=auth())
    assert resp.status_code == 200
    crm = {s["system_id"]: s for s in resp.json()["systems"]}["crm"]
    [acknowledged] = crm["acknowledged_notices"]
    assert acknowledged["type"] == "consent_withdrawn"
    assert acknowledged["purposes"] == ["analytics"]
    assert acknowledged["acknowledged_at"] is not None
    # Ids, purposes and times: nothing of the person, nothing of the events.
    for clear in ("ana@example.com", "7700 900123", "/home", "page_view"):
        assert clear not in resp.text


def test_lineage_permissions(gateway: TestClient) -> None:
    from tests.http.test_conventions import make_key  # noqa: PLC0415

    subject_id = grant(gateway, who("ana"), "analytics")["subject_id"]
    analyst = make_key(gateway, "analyst")
    resp = gateway.get(f"/v1/subjects/{subject_id}/lineage", headers=auth(analyst))
    assert_problem(resp, 403, "forbidden")
    assert gateway.get("/v1/lineage/fields/page_view/url", headers=auth(analyst)).status_code == 200
    for role in ("operator", "auditor", "dpo"):
        key = make_key(gateway, role)
        resp = gateway.get(f"/v1/subjects/{subject_id}/lineage", headers=auth(key))
        assert resp.status_code == 200, (role, resp.text)


def test_an_erased_subject_keeps_its_lineage_with_the_purge_acknowledged(
    gateway: TestClient,
) -> None:
    subject_id = grant(gateway, who("ana"), "analytics")["subject_id"]
    with receiver() as a, receiver() as rights:
        add(gateway, "warehouse", system(a.url, rights_endpoint=rights.url))
        send(gateway, [page_view("e1")])
        w = worker(gateway)
        assert w.run_once() == 1
        delivered = subject_lineage(gateway, subject_id)["warehouse"]
        body = {
            "type": "erasure",
            "subject": who("ana"),
            "jurisdiction": "EU",
            "verification": {"method": "x", "level": "high"},
        }
        resp = gateway.post("/v1/requests", headers=auth(), json=body)
        assert resp.status_code == 202, resp.text
        request_id = resp.json()["request_id"]
        deadline = time.monotonic() + 10
        while not rights.received and time.monotonic() < deadline:
            runtime_of(gateway).runner.run_pending()
            w.run_once()
            time.sleep(0.02)
        assert [b["type"] for b in rights.bodies()] == ["purge_request"]
    after = subject_lineage(gateway, subject_id)["warehouse"]
    assert after["purposes"] == ["analytics"]
    assert after["first_delivery_at"] == delivered["first_delivery_at"]
    assert after["last_delivery_at"] == delivered["last_delivery_at"]
    [notice] = after["acknowledged_notices"]
    assert (notice["type"], notice["request_id"]) == ("purge_request", request_id)
