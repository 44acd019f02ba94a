"""Acknowledgements read from the rights notices alone (both back-ends, real receivers on
loopback): a lifting is waited for by the restriction it ends, a repeated acknowledgement is
owed nothing, and a request that only waits for acknowledgements never swallows a new one."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import auth
from tests.delivery.receiver import receiver
from tests.dsr.conftest import check, email, grant, request, run, runtime_of
from tests.dsr.recipients.conftest import add, delivered, pump, state, system, worker
from tests.http.test_conventions import assert_problem

LIFT = {"reason": "accuracy confirmed", "subject_informed_at": "2026-11-23T10:00:00Z"}


def restrict(client: TestClient, subject: dict[str, Any], ground: str = "18_1_a") -> dict[str, Any]:
    return request(
        client,
        {
            "type": "restriction",
            "subject": subject,
            "jurisdiction": "EU",
            "ground": ground,
            "verification": {"method": "id_document", "level": "reasonable"},
        },
    )


def lift(client: TestClient, subject_id: str) -> dict[str, Any]:
    resp = client.request(
        "DELETE", f"/v1/subjects/{subject_id}/restriction", headers=auth(), json=LIFT
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def ack(client: TestClient, request_id: str, system_id: str) -> Any:
    return client.post(
        f"/v1/requests/{request_id}/acks", headers=auth(), json={"system_id": system_id}
    )


def test_a_restriction_waits_for_its_lifting_at_every_system(gateway: TestClient) -> None:
    """A webhook system and one acknowledged by hand: the manual one answered the
    restriction, then the lifting is sent to both; the webhook acknowledging both of its
    notices does not complete the request while the manual one owes the lifting's."""
    subject = email("rita")
    subject_id = grant(gateway, subject, "analytics")
    with receiver() as hook, receiver(script=[503]) as rights:
        add(gateway, "crm", system(hook.url, rights_endpoint=rights.url))
        add(gateway, "paper", system(hook.url))
        delivered(gateway, hook, subject)
        rid = restrict(gateway, subject)["request_id"]
        assert ack(gateway, rid, "paper").status_code == 200
        w = worker(gateway)
        w.run_once()  # 503: the CRM's restriction notice waits for its retry
        assert lift(gateway, subject_id)["notified"] == ["crm", "paper"]
        pump(w, rights, 2)
        assert [b["type"] for b in rights.bodies()] == ["restriction", "restriction_lifted"]
        run(gateway)
        waiting = state(gateway, rid)
        assert waiting["status"] == "awaiting_downstream"
        assert {d["system_id"]: d["acknowledged_at"] is None for d in waiting["downstream"]} == {
            "crm": False,
            "paper": True,
        }
        assert [(n["system_id"], n["type"], n["status"]) for n in waiting["notices"]] == [
            ("crm", "restriction", "acknowledged"),
            ("paper", "restriction", "acknowledged"),
            ("crm", "restriction_lifted", "acknowledged"),
            ("paper", "restriction_lifted", "manual"),
        ]
        done = ack(gateway, rid, "paper")
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "completed"
        assert [d["kind"] for d in done.json()["downstream"]] == ["restriction_lifted"] * 2


def test_a_repeated_acknowledgement_is_owed_nothing(gateway: TestClient) -> None:
    subject = email("remy")
    subject_id = grant(gateway, subject, "analytics")
    with receiver() as hook, receiver() as rights:
        add(gateway, "crm", system(hook.url, rights_endpoint=rights.url))
        add(gateway, "paper", system(hook.url))
        delivered(gateway, hook, subject)
        rid = restrict(gateway, subject)["request_id"]
        pump(worker(gateway), rights, 1)
        # The CRM acknowledged through its rights endpoint: nothing is owed by hand.
        assert_problem(ack(gateway, rid, "crm"), 409, "unexpected_acknowledgement")
        assert ack(gateway, rid, "paper").json()["status"] == "completed"
        assert_problem(ack(gateway, rid, "paper"), 409, "unexpected_acknowledgement")
        assert_problem(ack(gateway, rid, "nobody"), 409, "unexpected_acknowledgement")
        # The lifting's notice is owed again, once.
        lift(gateway, subject_id)
        assert ack(gateway, rid, "paper").status_code == 200
        assert_problem(ack(gateway, rid, "paper"), 409, "unexpected_acknowledgement")


def test_the_lifting_holds_the_restriction_request_while_it_is_written(
    gateway: TestClient, backend: str
) -> None:
    """PostgreSQL (SQLite has one writer): the runner locks a request to complete it; the
    lifting takes the same lock first, so the runner never completes it from notices read
    before the lifting's were written."""
    if backend != "postgresql":
        pytest.skip("row locks: PostgreSQL only (SQLite writers take turns)")
    subject = email("ruby")
    subject_id = grant(gateway, subject, "analytics")
    with receiver() as hook:
        add(gateway, "paper", system(hook.url))
        delivered(gateway, hook, subject)
        rid = restrict(gateway, subject)["request_id"]
        rt = runtime_of(gateway)
        finished = threading.Event()

        def lifting() -> None:
            lift(gateway, subject_id)
            finished.set()

        with rt.store.write() as conn:
            conn.execute(
                text("SELECT 1 FROM requests WHERE request_id = :r FOR UPDATE"), {"r": rid}
            )
            thread = threading.Thread(target=lifting)
            thread.start()
            time.sleep(0.5)
            assert not finished.is_set()  # waits for the request's lock
        thread.join(10)
        assert finished.is_set()


def test_a_new_restriction_after_a_lifting_is_not_a_duplicate(gateway: TestClient) -> None:
    """R1 waits for a manual acknowledgement; the restriction is lifted; a new restriction is
    a request of its own and restricts again."""
    subject = email("rory")
    subject_id = grant(gateway, subject, "analytics")
    with receiver() as hook:
        add(gateway, "paper", system(hook.url))
        delivered(gateway, hook, subject)
        first = restrict(gateway, subject)
        assert first["status"] == "awaiting_downstream"
        lift(gateway, subject_id)
        assert check(gateway, subject) == "granted"
        again = restrict(gateway, subject)
        assert "duplicate" not in again
        assert again["request_id"] != first["request_id"]
        assert again["status"] == "awaiting_downstream"
        assert check(gateway, subject) == "restricted"


def test_a_duplicate_is_an_open_request_asking_the_same_that_has_yet_to_do_it(
    gateway: TestClient,
) -> None:
    subject = email("rudi")
    grant(gateway, subject, "analytics")
    body = {"type": "restriction", "subject": subject, "jurisdiction": "EU", "ground": "18_1_a"}
    first = request(gateway, body)
    assert first["status"] == "received"
    assert request(gateway, body)["request_id"] == first["request_id"]
    assert request(gateway, body)["duplicate"] is True
    # Another ground is another request.
    other = request(gateway, body | {"ground": "18_1_d"})
    assert "duplicate" not in other


def rectification(subject: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    return {
        "type": "rectification",
        "subject": subject,
        "jurisdiction": "EU",
        "verification": {"method": "id_document", "level": "high", "matched": ["document"]},
        "changes": {
            "identities": [
                {"type": "email", "old_sha256": hashlib.sha256(old.encode()).hexdigest()}
                | {"value": new}
            ]
        },
    }


def test_a_second_rectification_is_not_thrown_away(gateway: TestClient) -> None:
    """The first waits for a manual acknowledgement; the second, correcting the value again,
    is a request of its own and its change is made."""
    subject = email("ruth")
    grant(gateway, subject, "analytics")
    with receiver() as hook:
        add(gateway, "paper", system(hook.url))
        delivered(gateway, hook, subject)
        first = request(gateway, rectification(subject, "ruth@example.com", "ruth.b@example.com"))
        run(gateway)
        assert state(gateway, first["request_id"])["status"] == "awaiting_downstream"
        second = request(
            gateway,
            rectification(email("ruth.b"), "ruth.b@example.com", "ruth.c@example.com"),
        )
        assert "duplicate" not in second
        assert second["request_id"] != first["request_id"]
        run(gateway)
        assert check(gateway, email("ruth.c")) == "granted"
        assert state(gateway, second["request_id"])["status"] == "awaiting_downstream"
