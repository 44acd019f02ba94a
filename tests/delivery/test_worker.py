"""delivery/worker.py end to end (both back-ends) with real receivers on loopback: retries
with backoff, receivers that refuse or hang, dead letters and resends, restarts, a process
dying between send and acknowledgement (Kafka systems: tests/delivery/test_kafka.py)."""

from __future__ import annotations

import dataclasses
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
from consentry.settings import Settings
from consentry.storage import delivery as sql
from tests.conftest import auth
from tests.delivery.receiver import closed_port_url, receiver
from tests.delivery.test_delivery import add, page_view, runtime_of, system, worker
from tests.ingest.test_pipeline import SCHEMA, grant, send, who


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
