"""An incident's `affected`, counted from events really ingested and delivered to a receiver on
loopback in a window (those purged since included), and what the register offers the summary,
metrics and alerts (open count, nearest deadline, incidents created since)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry import clock
from consentry.app import create_app
from consentry.governance import incidents
from consentry.settings import Settings
from tests.conftest import auth
from tests.delivery.receiver import receiver
from tests.delivery.test_delivery import add, runtime_of, system, worker
from tests.ingest.test_pipeline import CONSENT_PURPOSES, SCHEMA, event, grant, send, who

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
BEFORE = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
INSIDE = datetime(2026, 11, 15, 9, 0, tzinfo=UTC)
AFTER = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
WINDOW = {"from": "2026-11-14T00:00:00Z", "to": "2026-11-16T00:00:00Z"}


@pytest.fixture
def gateway(settings: Settings) -> Iterator[TestClient]:
    """A gateway whose delivery worker the test drives, with receivers on loopback allowed."""
    fast = dataclasses.replace(settings, delivery_worker=False, allow_private_endpoints=True)
    with TestClient(create_app(fast)) as client:
        notice = {"version": "1", "text": "Notice.", "purposes": CONSENT_PURPOSES}
        assert client.put("/v1/notices/main", headers=auth(), json=notice).status_code == 201
        assert client.put("/v1/schemas/page_view", headers=auth(), json=SCHEMA).status_code == 201
        yield client


def report(**extra: Any) -> dict[str, Any]:
    return {
        "detected_at": "2026-11-20T12:00:00Z",
        "aware_at": "2026-11-20T12:00:00Z",
        "description": "The warehouse's export bucket was public.",
        "nature": "confidentiality",
        "data_categories": ["user.contact"],
        "risk": "risk",
        "keys_compromised": False,
    } | extra


def affected(client: TestClient, **extra: Any) -> int | None:
    resp = client.post("/v1/incidents", headers=auth(), json=report(**extra))
    assert resp.status_code == 201, resp.text
    value: int | None = resp.json()["affected"]
    return value


def view(client: TestClient, event_id: str, name: str, moment: datetime) -> None:
    [result] = send(client, [event(event_id, who(name), occurred_at=clock.rfc3339(moment))])
    assert result["status"] == "accepted", result


def withdraw_and_purge(client: TestClient, name: str) -> None:
    resp = client.post(
        "/v1/consents/withdraw",
        headers=auth(),
        json={"subject": who(name), "purposes": ["analytics"]},
    )
    assert resp.status_code == 200, resp.text
    runtime_of(client).erasure.purge_withdrawals(actor="system", settle=timedelta(0))


def test_affected_counts_what_was_stored_and_delivered_in_the_window(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    moment = {"now": T0}
    monkeypatch.setattr(clock, "now", lambda: moment["now"])
    for name in ("ana", "bob", "cy", "eve", "fay"):
        grant(gateway, who(name), "analytics")
    # dee's events are stored for personalization only: the warehouse does not serve it.
    grant(gateway, who("dee"), "personalization")
    with receiver() as warehouse:
        add(gateway, "warehouse", system(warehouse.url))
        moment["now"] = BEFORE
        view(gateway, "e-ana", "ana", BEFORE)
        view(gateway, "e-fay", "fay", BEFORE)
        assert worker(gateway).run_once() == 2
        moment["now"] = INSIDE
        view(gateway, "e-bob", "bob", INSIDE)
        assert worker(gateway).run_once() == 1
        # fay's events (delivered before the window) are purged inside it: the audit log
        # remembers she had data stored for the warehouse's purpose until then.
        withdraw_and_purge(gateway, "fay")
        # cy's delivery is still queued when the incident is recorded (the worker does not
        # run again); dee's is never made.
        view(gateway, "e-cy", "cy", INSIDE)
        view(gateway, "e-dee", "dee", INSIDE)
        moment["now"] = AFTER
        view(gateway, "e-eve", "eve", AFTER)
        # bob's events are purged after the window: the delivery record still counts him.
        withdraw_and_purge(gateway, "bob")
    moment["now"] = NOW
    with runtime_of(gateway).store.write() as conn:
        # cy's event deleted as a retention sweep would, its delivery still queued (the
        # warehouse's next attempt would fail on a missing event; the queue remembers it).
        conn.exec_driver_sql("DELETE FROM events WHERE event_id = 'e-cy'")
        stored = conn.exec_driver_sql("SELECT event_id FROM events ORDER BY event_id").all()
    assert [r[0] for r in stored] == ["e-ana", "e-dee", "e-eve"]

    # bob (delivered), cy (queued for delivery), fay (purged inside the window).
    assert affected(gateway, systems=["warehouse"], window=WINDOW) == 3
    # Without a window: everything the warehouse was given, ever.
    assert affected(gateway, systems=["warehouse"]) == 5
    # Named people count too: ana by her e-mail, and someone unknown here.
    named = [who("ana"), who("nobody-known"), who("bob")]
    assert affected(gateway, systems=["warehouse"], window=WINDOW, subjects=named) == 5
    # Consentry's own data directory held every purpose's events: dee as well.
    assert affected(gateway, data_directory=True, window=WINDOW) == 4
    assert affected(gateway) is None


def test_affected_counts_expiry_purges_and_purges_after_the_window(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    moment = {"now": INSIDE}
    monkeypatch.setattr(clock, "now", lambda: moment["now"])
    purpose = {
        "name": "Analytics",
        "legal_basis": "consent",
        "retention_days": 365,
        "consent_ttl_days": 1,
    }
    resp = gateway.put("/v1/purposes/analytics", headers=auth(), json=purpose)
    assert resp.status_code in {200, 201}, resp.text
    for name in ("ana", "bob"):
        grant(gateway, who(name), "analytics")
        view(gateway, f"e-{name}", name, INSIDE)
    # bob withdraws after the window, before his grant lapses: purged after the window.
    moment["now"] = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
    withdraw_and_purge(gateway, "bob")
    # dee's only event is stored after the window; her grant lapses too.
    moment["now"] = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)
    grant(gateway, who("dee"), "analytics")
    view(gateway, "e-dee", "dee", moment["now"])
    # ana's and dee's grants lapse: the expiry purges their events (after the window).
    moment["now"] = AFTER
    assert runtime_of(gateway).expiry.expire_due(AFTER)["deleted"] == 2
    with runtime_of(gateway).store.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM events").scalar() == 0
    # The warehouse is mapped once the events are gone: nothing was queued or sent to it.
    add(gateway, "warehouse", system("https://warehouse.example.com/in"))
    moment["now"] = NOW
    # ana (expiry purge) and bob (withdrawal purge), both after the window of events stored
    # in it; not dee, whose events were first stored after it.
    assert affected(gateway, systems=["warehouse"], window=WINDOW) == 2
    assert affected(gateway, data_directory=True, window=WINDOW) == 2
    assert affected(gateway, systems=["warehouse"]) == 3


def test_what_the_register_offers_other_parts(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)
    rt = runtime_of(client)
    with rt.store.read() as conn:
        assert incidents.open_incidents(conn) == 0
        assert incidents.next_deadline(conn, NOW) is None
    early = report(aware_at="2026-11-20T13:00:00Z")
    first = client.post("/v1/incidents", headers=auth(), json=early).json()
    second = client.post("/v1/incidents", headers=auth(), json=report()).json()
    processor = client.post(
        "/v1/incidents", headers=auth(), json=report(controller_role="processor")
    ).json()
    with rt.store.read() as conn:
        assert incidents.open_incidents(conn) == 3
        # The nearest authority deadline (a processor's incident has none).
        assert incidents.next_deadline(conn, NOW) == datetime(2026, 11, 23, 12, tzinfo=UTC)
        since = incidents.created_since(conn, NOW)
    assert [i["incident_id"] for i in since] == [
        first["incident_id"],
        second["incident_id"],
        processor["incident_id"],
    ]
    assert "description" not in since[0]
    # Told the authority: that deadline is met, the next one is the nearest.
    told = {"to": "authority", "at": "2026-11-21T08:00:00Z"}
    path = f"/v1/incidents/{second['incident_id']}/notifications"
    assert client.post(path, headers=auth(), json=told).status_code == 201
    with rt.store.read() as conn:
        assert incidents.next_deadline(conn, NOW) == datetime(2026, 11, 23, 13, tzinfo=UTC)
        assert incidents.created_since(conn, NOW + timedelta(seconds=1)) == []
    assert (
        client.post(
            f"/v1/incidents/{first['incident_id']}/close", headers=auth(), json={}
        ).status_code
        == 422
    )
    closed = client.post(
        f"/v1/incidents/{first['incident_id']}/close",
        headers=auth(),
        json={"late_reason": "the authority was told by the group's DPO"},
    )
    assert closed.status_code == 200, closed.text
    with rt.store.read() as conn:
        assert incidents.open_incidents(conn) == 2
        assert incidents.next_deadline(conn, NOW) is None
