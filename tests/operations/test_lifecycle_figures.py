"""The figures other lifecycle parts feed to the summary, `/metrics` and the alerts (both
back-ends, through HTTP, a real alert receiver on loopback): open and overdue requests, key
ages, incidents with their nearest authority deadline, and the incident alerts."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry import clock
from consentry.operations.alerts import Alerts
from tests.conftest import auth
from tests.delivery.receiver import receiver
from tests.delivery.test_delivery import runtime_of
from tests.ingest.test_pipeline import grant, who
from tests.operations.scrape import Samples, value
from tests.operations.test_metrics import scrape

DEADLINE = "consentry_incident_deadline_seconds"


def summary(client: TestClient) -> dict[str, Any]:
    resp = client.get("/v1/compliance/summary", headers=auth())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def fired(alerts: Alerts) -> dict[str, str]:
    return {m["groupLabels"]["alertname"]: m["status"] for m in alerts.evaluate()}


def deadline_samples(found: Samples) -> list[Any]:
    return [s for s in found if s[0] == DEADLINE]


def test_requests_keys_and_incidents_in_the_summary_the_scrape_and_the_alerts(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = clock.now()
    moment = {"now": start}
    monkeypatch.setattr(clock, "now", lambda: moment["now"])
    body = summary(gateway)
    assert body["processed_without_consent"] == 0
    assert body["requests"] == {"open": 0, "overdue": 0, "by_type": {}, "completed": {}}
    assert body["keys"] == {"master_age_days": 0, "signing_age_days": 0, "rotation_due": []}
    assert body["incidents"] == {"open": 0, "next_deadline": None}
    _, found = scrape(gateway)
    assert value(found, "consentry_incidents_open") == 0
    assert value(found, "consentry_incidents_recorded_total") == 0
    assert deadline_samples(found) == []

    grant(gateway, who("ana"), "analytics")
    asked = gateway.post(
        "/v1/requests",
        headers=auth(),
        json={"type": "access", "subject": who("ana"), "jurisdiction": "EU"},
    )
    assert asked.status_code == 202, asked.text
    assert summary(gateway)["requests"] == {
        "open": 1,
        "overdue": 0,
        "by_type": {"access": 1},
        "completed": {},
    }

    # Aware 62 hours ago: the authority must be told within 10 hours (Art. 33(1)).
    aware = start - timedelta(hours=62)
    incident = {
        "detected_at": clock.rfc3339(aware),
        "aware_at": clock.rfc3339(aware),
        "description": "A support export was mailed to the wrong address.",
        "nature": "confidentiality",
        "data_categories": ["user.contact"],
        "risk": "risk",
        "keys_compromised": False,
    }
    created = gateway.post("/v1/incidents", headers=auth(), json=incident)
    assert created.status_code == 201, created.text
    incident_id = created.json()["incident_id"]
    due = aware + timedelta(hours=72)
    assert summary(gateway)["incidents"] == {"open": 1, "next_deadline": clock.rfc3339(due)}
    _, found = scrape(gateway)
    assert value(found, "consentry_incidents_open") == 1
    assert value(found, "consentry_incidents_recorded_total") == 1
    assert value(found, DEADLINE) == 10 * 3600

    with receiver() as hook:
        alerts = Alerts(
            dataclasses.replace(runtime_of(gateway).settings, alert_webhook=hook.url),
            runtime_of(gateway).store,
        )
        assert fired(alerts) == {"incident_created": "firing", "incident_deadline_near": "firing"}
        # Told the authority: no deadline runs any more.
        told = {"to": "authority", "at": clock.rfc3339(start)}
        path = f"/v1/incidents/{incident_id}/notifications"
        assert gateway.post(path, headers=auth(), json=told).status_code == 201
        assert fired(alerts) == {"incident_deadline_near": "resolved"}
        _, found = scrape(gateway)
        assert deadline_samples(found) == []
        assert summary(gateway)["incidents"] == {"open": 1, "next_deadline": None}
        moment["now"] = start + timedelta(hours=2)
        assert fired(alerts) == {"incident_created": "resolved"}
        # Three months on: the request is long overdue, the keys are due for rotation.
        moment["now"] = start + timedelta(days=91)
        assert fired(alerts) == {"request_overdue": "firing", "key_rotation_due": "firing"}
        alerts.stop()
    assert [b["status"] for b in hook.bodies()] == ["firing"] * 2 + ["resolved"] * 2 + [
        "firing"
    ] * 2
    body = summary(gateway)
    assert body["requests"] == {"open": 1, "overdue": 1, "by_type": {"access": 1}, "completed": {}}
    assert body["keys"] == {
        "master_age_days": 91,
        "signing_age_days": 91,
        "rotation_due": ["master", "signing"],
    }


def test_completed_requests_by_type_in_the_summary(gateway: TestClient) -> None:
    # A limit request completes at once (CCPA §1798.121); an access request stays open.
    for kind in ("limit", "access"):
        asked = gateway.post(
            "/v1/requests",
            headers=auth(),
            json={"type": kind, "subject": who("ana"), "jurisdiction": "US-CA"},
        )
        assert asked.status_code == 202, asked.text
    body = summary(gateway)
    assert body["requests"] == {
        "open": 1,
        "overdue": 0,
        "by_type": {"access": 1},
        "completed": {"limit": 1},
    }
    assert body["deliveries"] == {"pending": 0, "dead": 0, "refused": {}}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)
