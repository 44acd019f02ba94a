"""Delivery end to end (both back-ends) with real receivers on loopback: routing, minimised
signed payloads, transfer rules, retries, dead letters, resends, opt-outs and restarts."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import time
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry import clock
from consentry.app import create_app
from consentry.delivery import worker as worker_module
from consentry.delivery.sinks import Outcome, WebhookSink
from consentry.delivery.worker import DeliveryWorker
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage import delivery as sql
from tests.conftest import auth
from tests.delivery.receiver import closed_port_url, receiver
from tests.ingest.test_pipeline import SCHEMA, event, grant, send, who


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
        assert b"7700" not in raw
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
            actions = [
                e
                for e in gateway.get("/v1/audit/entries", headers=auth()).json()["items"]
                if e["action"] == "delivery:refused"
            ]
            assert actions[-1]["details"] == {"vendor": {reason: 1}}


def _run_until(w: DeliveryWorker, done: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        w.run_once()
        time.sleep(0.01)


def test_fails_twice_then_succeeds_with_backoff(gateway: TestClient) -> None:
    grant(gateway, who("ana"), "analytics")
    with receiver([500, 503]) as r:
        add(gateway, "warehouse", system(r.url))
        send(gateway, [page_view("e1")])
        w = worker(gateway)
        _run_until(w, lambda: r.received)
        assert [e["event_id"] for e in r.events()] == ["e1"]
        assert r.attempts == 3
        gaps = [b - a for a, b in zip(r.times, r.times[1:], strict=False)]
        # Never twice in a row without an interval: at least half the backoff each time.
        assert gaps[0] >= 0.025
        assert gaps[1] >= 0.05
        w.run_once()
        assert r.attempts == 3
        with runtime_of(gateway).store.read() as conn:
            assert sql.counts(conn, "warehouse") == {}


def test_refused_and_hanging_receivers_never_block_ingest(gateway: TestClient) -> None:
    grant(gateway, who("ana"), "analytics")
    add(gateway, "down", system(closed_port_url()))
    with receiver(["hang"]) as slow:
        slow.hang_seconds = 1.5
        add(gateway, "slow", system(slow.url))
        w = worker(gateway)
        w.start()
        try:
            for n in range(5):
                started = time.monotonic()
                assert send(gateway, [page_view(f"e{n}")])[0]["status"] == "accepted"
                assert time.monotonic() - started < 0.5
            deadline = time.monotonic() + 10
            while len({e["event_id"] for e in slow.events()}) < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            w.stop()
        assert {e["event_id"] for e in slow.events()} == {f"e{n}" for n in range(5)}
        rt = runtime_of(gateway)
        with rt.store.read() as conn:
            down = sql.counts(conn, "down")
        # Nothing lost: every event still waits for the receiver that refuses connections.
        assert sum(down.values()) == 5


def test_dead_letter_then_resend(gateway: TestClient) -> None:
    grant(gateway, who("ana"), "analytics")
    with receiver(default=500) as r:
        add(gateway, "warehouse", system(r.url))
        send(gateway, [page_view("e1")])
        w = worker(gateway)
        _run_until(w, lambda: r.attempts >= 4)
        time.sleep(0.5)
        w.run_once()
        assert r.attempts == 4  # CONSENTRY_DELIVERY_MAX_ATTEMPTS in these tests
        got = gateway.get("/v1/systems/warehouse", headers=auth()).json()["delivery"]
        assert got["dead"] == 1
        r.default = 200
        resent = gateway.post("/v1/systems/warehouse/resend", headers=auth())
        assert resent.json() == {"system_id": "warehouse", "resent": 1}
        w.run_once()
        assert [e["event_id"] for e in r.events()] == ["e1"]
        actions = {
            e["action"] for e in gateway.get("/v1/audit/entries", headers=auth()).json()["items"]
        }
        assert {"delivery:dead_lettered", "delivery:resent"} <= actions


def test_a_pending_delivery_is_never_made_after_the_opt_out(gateway: TestClient) -> None:
    grant(gateway, who("ana"), "analytics", "personalization")
    with receiver() as r:
        add(gateway, "warehouse", system(r.url, purposes=["analytics", "personalization"]))
        send(gateway, [page_view("e1"), page_view("e2")])
        withdrawn = gateway.post(
            "/v1/consents/withdraw",
            headers=auth(),
            json={"subject": who("ana"), "purposes": ["analytics"], "source": "web"},
        )
        assert withdrawn.status_code == 200
        worker(gateway).run_once()
        events = r.events()
        # Kept for personalization only: the withdrawn purpose is gone from the delivery.
        assert [e["purposes"] for e in events] == [["personalization"], ["personalization"]]
        gateway.post(
            "/v1/consents/withdraw",
            headers=auth(),
            json={"subject": who("ana"), "purposes": "all", "source": "web"},
        )
        send(gateway, [page_view("e3")])
        worker(gateway).run_once()
        assert len(r.events()) == 2


def test_a_remembered_answer_ends_when_the_consent_expires(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker remembers its consent answers across batches; one made from a grant lasts
    no longer than the grant, although the subject's state has not changed."""
    grant(gateway, who("ana"), "analytics")
    with receiver() as r:
        add(gateway, "warehouse", system(r.url))
        w = worker(gateway)
        send(gateway, [page_view("e1")])
        assert w.run_once() == 1
        send(gateway, [page_view("e2")])
        real_now = clock.now
        monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(days=400))
        assert w.run_once() == 0
        assert [e["event_id"] for e in r.events()] == ["e1"]
        rt = runtime_of(gateway)
        with rt.store.read() as conn:
            assert rt.outbox.counts(conn, "warehouse") == (0, 0)


def test_withdrawal_cancels_in_its_transaction(gateway: TestClient) -> None:
    grant(gateway, who("ana"), "analytics")
    with receiver() as r:
        add(gateway, "warehouse", system(r.url))
        send(gateway, [page_view("e1")])
        rt = runtime_of(gateway)
        with rt.store.read() as conn:
            assert sql.counts(conn, "warehouse") == {"pending": 1}
        gateway.post(
            "/v1/consents/withdraw",
            headers=auth(),
            json={"subject": who("ana"), "purposes": ["analytics"], "source": "web"},
        )
        with rt.store.read() as conn:
            assert sql.counts(conn, "warehouse") == {}


def test_pending_rows_survive_a_restart(fast_settings: Settings) -> None:
    with receiver() as r:
        with TestClient(create_app(fast_settings)) as first:
            first.put(
                "/v1/notices/main",
                headers=auth(),
                json={"version": "1", "text": "Notice.", "purposes": ["analytics"]},
            )
            first.put("/v1/schemas/page_view", headers=auth(), json=SCHEMA)
            grant(first, who("ana"), "analytics")
            add(first, "warehouse", system(r.url))
            send(first, [page_view("e1"), page_view("e2")])
            # One row was being sent when the process died.
            rt = runtime_of(first)
            with rt.store.write() as conn:
                sql.claim(conn, "warehouse", clock.now(), 1)
        assert r.attempts == 0
        restarted = dataclasses.replace(fast_settings, delivery_worker=True)
        with TestClient(create_app(restarted)) as second:
            w = worker(second)
            w.release_stale(before=clock.now() + timedelta(minutes=1))
            deadline = time.monotonic() + 5
            while len(r.events()) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        assert sorted(e["event_id"] for e in r.events()) == ["e1", "e2"]


class _DiesAfterSending:
    """The real webhook sink, in a process that dies once the `n`-th body was acknowledged by
    the receiver (before the gateway could write that down)."""

    def __init__(self, n: int) -> None:
        self.inner = WebhookSink(2.0, allow_private=True)
        self.left = n

    def send(self, endpoint: str, body: bytes, signature: str) -> Outcome:
        outcome = self.inner.send(endpoint, body, signature)
        self.left -= 1
        if self.left == 0:
            raise _Died
        return outcome

    def close(self) -> None:
        self.inner.close()


class _Died(Exception):
    pass


def test_a_send_not_yet_acknowledged_is_sent_again_in_order(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches of two: the first batch's acknowledgement is written with the second claim.
    monkeypatch.setattr(worker_module, "BATCH", 2)
    subject_id = grant(gateway, who("ana"), "analytics")["subject_id"]
    with receiver() as r:
        add(gateway, "warehouse", system(r.url))
        send(gateway, [page_view(f"e{n}") for n in range(1, 6)])
        rt = runtime_of(gateway)
        dying = rt.delivery_worker(_DiesAfterSending(2))
        with pytest.raises(_Died):
            dying.drain("warehouse")
        assert [e["event_id"] for e in r.events()] == ["e1", "e2", "e3", "e4"]
        with rt.store.read() as conn:
            # e1, e2 acknowledged and gone; e3, e4 reached the receiver unacknowledged.
            assert sql.counts(conn, "warehouse") == {"sending": 2, "pending": 1}
            assert sql.recipients_of(conn, subject_id) == {"warehouse": {"analytics"}}
        w = worker(gateway)
        w.release_stale(before=clock.now() + timedelta(minutes=1))
        assert w.run_once() == 3
        # At least once, in outbox order: e3 and e4 again, then e5.
        assert [e["event_id"] for e in r.events()] == ["e1", "e2", "e3", "e4", "e3", "e4", "e5"]
        with rt.store.read() as conn:
            assert sql.counts(conn, "warehouse") == {}


def test_systems_of_another_kind_wait(gateway: TestClient) -> None:
    grant(gateway, who("ana"), "analytics")
    add(gateway, "stream", system("kafka://127.0.0.1:9092/consented", kind="kafka"))
    send(gateway, [page_view("e1")])
    assert worker(gateway).run_once() == 0
    assert gateway.get("/v1/systems/stream", headers=auth()).json()["delivery"]["pending"] == 1


def test_no_system_no_outbox(gateway: TestClient) -> None:
    grant(gateway, who("ana"), "analytics")
    send(gateway, [page_view("e1")])
    rt = runtime_of(gateway)
    with rt.store.read() as conn:
        assert sql.due_systems(conn, clock.now()) == []


def test_a_restricted_subjects_deliveries_wait_until_the_restriction_is_lifted(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Art. 18: restricted data is only stored; its deliveries are held, not lost."""
    subject_id = grant(gateway, who("ana"), "analytics")["subject_id"]
    with receiver() as hook:
        add(gateway, "crm", system(hook.url))
        send(gateway, [page_view("e1")])
        resp = gateway.post(
            "/v1/requests",
            headers=auth(),
            json={
                "type": "restriction",
                "subject": who("ana"),
                "jurisdiction": "EU",
                "ground": "18_1_a",
                "verification": {"method": "id_document", "level": "reasonable"},
            },
        )
        assert resp.status_code == 202, resp.text
        w = worker(gateway)
        assert w.run_once() == 0
        rt = runtime_of(gateway)
        with rt.store.read() as conn:
            assert rt.outbox.counts(conn, "crm") == (1, 0)
        lifted = gateway.request(
            "DELETE",
            f"/v1/subjects/{subject_id}/restriction",
            headers=auth(),
            json={"reason": "accuracy confirmed", "subject_informed_at": "2026-11-23T10:00:00Z"},
        )
        assert lifted.status_code == 200, lifted.text
        real_now = clock.now
        monkeypatch.setattr(clock, "now", lambda: real_now() + worker_module.HOLD)
        assert w.run_once() == 1
        assert [e["event_id"] for e in hook.events()] == ["e1"]
