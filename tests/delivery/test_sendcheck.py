"""delivery/sendcheck.py through the worker (both back-ends): consent decided again at send
time, a remembered answer no longer than its grant, a restricted subject's rows held."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from consentry import clock
from consentry.delivery import worker as worker_module
from tests.conftest import auth
from tests.delivery.receiver import receiver
from tests.delivery.test_delivery import add, page_view, runtime_of, system, worker
from tests.ingest.test_pipeline import grant, send, who


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
