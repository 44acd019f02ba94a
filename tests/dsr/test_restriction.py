"""Restriction and objection through the HTTP API on both back-ends: in effect on the
consent check and on ingest, lifted by hand, an objection upheld by decision."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import auth
from tests.dsr.conftest import check, email, grant, request, run, send
from tests.http.test_conventions import assert_problem


def test_restriction_and_lifting(ready: TestClient) -> None:
    subject = email("rosa")
    subject_id = grant(ready, subject, "analytics")
    assert_problem(
        ready.post(
            "/v1/requests",
            headers=auth(),
            json={"type": "restriction", "subject": subject, "jurisdiction": "EU"},
        ),
        422,
        "invalid_request",
    )
    created = request(
        ready,
        {
            "type": "restriction",
            "subject": subject,
            "jurisdiction": "EU",
            "ground": "18_1_a",
            "verification": {"method": "x", "level": "reasonable"},
        },
    )
    assert created["status"] == "completed"
    assert check(ready, subject) == "restricted"
    assert send(ready, subject, 1, "rr", topic="x")["results"][0]["code"] == "restricted"
    url = f"/v1/subjects/{subject_id}/restriction"
    body = {"reason": "accuracy confirmed", "subject_informed_at": "2026-11-23T10:00:00Z"}
    assert ready.request("DELETE", url, headers=auth(), json=body).status_code == 200
    assert check(ready, subject) == "granted"
    assert_problem(ready.request("DELETE", url, headers=auth(), json=body), 409, "not_restricted")


def test_objections(ready: TestClient) -> None:
    subject = email("otto")
    grant(ready, subject, "marketing", "analytics")
    dm = request(
        ready,
        {"type": "objection", "subject": subject, "jurisdiction": "EU", "purposes": ["marketing"]},
    )
    # In effect on receipt, before any verification; nobody to tell, so the runner's next
    # pass completes it (answering `completed` at once would say that nobody holds the data).
    assert dm["status"] == "awaiting_downstream"
    assert check(ready, subject, "marketing") == "objected"
    run(ready)
    got = ready.get(f"/v1/requests/{dm['request_id']}", headers=auth()).json()
    assert got["status"] == "completed"
    assert check(ready, subject, "analytics") == "granted"
    other = request(ready, {"type": "objection", "subject": subject, "jurisdiction": "EU"})
    assert other["purposes"] == ["security"]
    oid = other["request_id"]
    ready.post(
        f"/v1/requests/{oid}/verify", headers=auth(), json={"method": "x", "level": "reasonable"}
    )
    assert check(ready, subject, "security") == "restricted"
    decision = {"purpose": "security", "outcome": "upheld", "grounds": "no overriding grounds"}
    done = ready.post(f"/v1/requests/{oid}/decision", headers=auth(), json=decision).json()
    assert done["status"] == "completed"
    assert check(ready, subject, "security") == "objected"
    assert_problem(
        ready.post(f"/v1/requests/{oid}/decision", headers=auth(), json=decision),
        409,
        "decision_not_pending",
    )
