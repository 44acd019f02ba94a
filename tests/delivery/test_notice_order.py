"""Which rights notices a pass sends (both back-ends, real receivers on loopback): held-back
notices of a failing system never starve the others, and notices go in the order they were
queued even when created_at does not tell it."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from consentry import clock
from consentry.storage import delivery as sql
from tests.delivery.receiver import closed_port_url, receiver
from tests.delivery.test_delivery import add, runtime_of, system, worker


def notice(system_id: str, subject_id: str, kind: str, **times: Any) -> dict[str, Any]:
    now = clock.now()
    return {
        "notice_id": "rn_" + uuid.uuid4().hex,
        "system_id": system_id,
        "subject_id": subject_id,
        "type": kind,
        "request_id": None,
        "purposes": None,
        "forward": False,
        "status": sql.PENDING,
        "attempts": 0,
        "next_at": now,
        "created_at": now,
        "due_at": now + timedelta(hours=72),
        "sealed": None,
    } | times


def test_held_back_notices_never_starve_other_systems(gateway: TestClient) -> None:
    """A system that is down holds 100 subjects' restriction notices waiting for their retry,
    each with its lifting queued behind it (due, but held back): a notice to a system that is
    up is still sent at the first pass."""
    earlier = clock.now() - timedelta(hours=1)
    later = clock.now() + timedelta(hours=1)
    with receiver() as up:
        add(gateway, "down", system(closed_port_url(), rights_endpoint=closed_port_url()))
        add(gateway, "up", system(up.url, rights_endpoint=up.url))
        rows = []
        for n in range(100):
            rows.append(
                notice("down", f"sub_{n}", "restriction", next_at=later, created_at=earlier)
            )
            rows.append(notice("down", f"sub_{n}", "restriction_lifted", created_at=earlier))
        rows.append(notice("up", "sub_up", "consent_withdrawn"))
        rt = runtime_of(gateway)
        with rt.store.write() as conn:
            sql.insert_notices(conn, rows)
        w = worker(gateway)
        for _ in range(5):
            w.run_once()
        assert up.attempts == 1
        assert [b["type"] for b in up.bodies()] == ["consent_withdrawn"]


def test_notices_go_in_the_order_queued_when_the_clock_goes_back(gateway: TestClient) -> None:
    """The lifting was queued after the restriction by a process whose clock is a second
    behind: it is still sent second (created_at alone would put it first)."""
    now = clock.now()
    with receiver() as rights:
        add(gateway, "crm", system(rights.url, rights_endpoint=rights.url))
        rt = runtime_of(gateway)
        with rt.store.write() as conn:
            sql.insert_notices(conn, [notice("crm", "sub_a", "restriction", created_at=now)])
        with rt.store.write() as conn:
            sql.insert_notices(
                conn,
                [
                    notice(
                        "crm",
                        "sub_a",
                        "restriction_lifted",
                        created_at=now - timedelta(seconds=1),
                    )
                ],
            )
        w = worker(gateway)
        for _ in range(3):
            w.run_once()
        assert [b["type"] for b in rights.bodies()] == ["restriction", "restriction_lifted"]
        with rt.store.read() as conn:
            listed = [r.type for r in sql.notices_where(conn, subject_id="sub_a")]
        assert listed == ["restriction", "restriction_lifted"]
