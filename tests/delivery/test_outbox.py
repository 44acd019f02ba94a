"""delivery/outbox.py through the API (both back-ends): a row per allowed system only, and
pending rows cancelled in the withdrawal's own transaction."""

from __future__ import annotations

from fastapi.testclient import TestClient

from consentry import clock
from consentry.storage import delivery as sql
from tests.conftest import auth
from tests.delivery.receiver import receiver
from tests.delivery.test_delivery import add, page_view, runtime_of, system
from tests.ingest.test_pipeline import grant, send, who


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


def test_no_system_no_outbox(gateway: TestClient) -> None:
    grant(gateway, who("ana"), "analytics")
    send(gateway, [page_view("e1")])
    rt = runtime_of(gateway)
    with rt.store.read() as conn:
        assert sql.due_systems(conn, clock.now()) == []
