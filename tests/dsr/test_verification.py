"""Verification levels through the HTTP API on both back-ends: access by jurisdiction and
scope (the categories-only report), a rectification verified by other information, requests
made by an authorised agent."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, text

from tests.conftest import auth
from tests.dsr.conftest import email, grant, request, run, runtime_of, send
from tests.http.test_conventions import assert_problem


def verify(client: TestClient, rid: str, **verification: Any) -> dict[str, Any]:
    resp = client.post(f"/v1/requests/{rid}/verify", headers=auth(), json=verification)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def status(client: TestClient, rid: str) -> str:
    return str(client.get(f"/v1/requests/{rid}", headers=auth()).json()["status"])


def test_access_to_a_californians_data_needs_high(ready: TestClient) -> None:
    subject = email("cal")
    grant(ready, subject, "analytics")
    send(ready, subject, 1, "c", topic="t", message="hello from cal")
    made = request(ready, {"type": "access", "subject": subject, "jurisdiction": "US-CA"})
    rid = made["request_id"]
    assert made["verification"]["required"] == "high"
    # `reasonable` is enough elsewhere, not for the specific pieces of a US-CA subject.
    assert verify(ready, rid, method="email_code", level="reasonable")["status"] == "received"
    run(ready)
    assert_problem(ready.get(f"/v1/requests/{rid}/result", headers=auth()), 409, "result_not_ready")
    assert verify(ready, rid, method="id_document", level="high")["status"] == "verified"
    run(ready)
    report = ready.get(f"/v1/requests/{rid}/result", headers=auth()).json()
    assert report["events"][0]["properties"]["message"] == "hello from cal"

    # Elsewhere: reasonable.
    eu = request(ready, {"type": "access", "subject": email("eve"), "jurisdiction": "EU"})
    assert eu["verification"]["required"] == "reasonable"


def test_a_request_naming_another_jurisdiction_does_not_lower_the_level(
    ready: TestClient,
) -> None:
    subject = email("carl")
    grant(ready, subject, "analytics")
    first = request(
        ready,
        {"type": "access", "subject": subject, "jurisdiction": "US-CA", "scope": "categories"},
    )
    assert first["verification"]["required"] == "reasonable"
    # The subject is a Californian on record: a request saying EU still needs high.
    made = request(ready, {"type": "access", "subject": subject, "jurisdiction": "EU"})
    assert made["verification"]["required"] == "high"
    listed = ready.get(f"/v1/requests/{made['request_id']}", headers=auth()).json()
    assert listed["verification"]["required"] == "high"


def test_categories_only_access_is_reasonable_and_holds_no_values(ready: TestClient) -> None:
    subject = email("cora")
    grant(ready, subject, "analytics")
    send(ready, subject, 2, "k", topic="t", message="cora's secret words", card="4111")
    made = request(
        ready,
        {"type": "access", "subject": subject, "jurisdiction": "US-CA", "scope": "categories"},
    )
    rid = made["request_id"]
    assert made["scope"] == "categories"
    assert made["verification"]["required"] == "reasonable"
    assert verify(ready, rid, method="email_code", level="reasonable")["status"] == "verified"
    run(ready)
    assert status(ready, rid) == "completed"
    resp = ready.get(f"/v1/requests/{rid}/result", headers=auth())
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["scope"] == "categories"
    assert {"user.contact.email", "user.content", "user.financial"} <= set(report["categories"])
    assert "system.operations" not in report["categories"]
    assert report["purposes"]["analytics"]["legal_basis"] == "consent"
    assert "consent record (web)" in report["sources"]
    assert report["recipients"] == []
    # Categories, never the data: no identity value, no event, no content.
    assert "events" not in report
    assert "identities" not in report
    for value in ("cora@example.com", "secret words", "4111"):
        assert value not in resp.text
    # Data and categories are different asks: neither is the other's duplicate.
    data = request(ready, {"type": "access", "subject": subject, "jurisdiction": "US-CA"})
    assert data["request_id"] != rid
    assert "duplicate" not in data
    bad = {"type": "erasure", "subject": subject, "jurisdiction": "EU", "scope": "categories"}
    assert_problem(ready.post("/v1/requests", headers=auth(), json=bad), 422, "invalid_request")


def rectify_email(subject: dict[str, Any], old: str, new: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "rectification",
        "subject": subject,
        "jurisdiction": "EU",
        "changes": {
            "identities": [
                {"type": "email", "old_sha256": hashlib.sha256(old.encode()).hexdigest()}
                | {"value": new}
            ]
        },
    } | extra


def test_a_rectification_is_verified_with_other_information(ready: TestClient) -> None:
    subject = email("rhea")
    grant(ready, subject, "analytics")
    body = rectify_email(subject, "rhea@example.com", "rhea.new@example.com")
    # A code sent to the address being corrected proves nothing about the correction.
    same = body | {"verification": {"method": "email_code", "level": "high", "matched": ["email"]}}
    resp = ready.post("/v1/requests", headers=auth(), json=same)
    assert_problem(resp, 422, "verification_not_independent")
    assert resp.json()["corrected"] == "email"
    assert ready.get("/v1/requests", headers=auth()).json()["items"] == []  # nothing kept
    unsaid = body | {"verification": {"method": "x", "level": "high"}}
    assert_problem(
        ready.post("/v1/requests", headers=auth(), json=unsaid), 422, "verification_not_independent"
    )
    # Received unverified, then verified: the same rule at /verify.
    rid = request(ready, body)["request_id"]
    resp = ready.post(
        f"/v1/requests/{rid}/verify",
        headers=auth(),
        json={"method": "email_link", "level": "high", "matched": ["phone", "email"]},
    )
    assert_problem(resp, 422, "verification_not_independent")
    assert status(ready, rid) == "received"
    done = verify(ready, rid, method="id_document", level="high", matched=["document", "phone"])
    assert done["status"] == "verified"
    run(ready)
    assert status(ready, rid) == "completed"
    entries = ready.get("/v1/audit/entries?limit=1000", headers=auth()).json()["items"]
    recorded = [e for e in entries if e["action"] == "request:verification:recorded"]
    assert recorded[-1]["details"]["matched"] == ["document", "phone"]


def test_an_authorised_agent_needs_proof_and_the_subject_is_still_verified(
    ready: TestClient,
) -> None:
    subject = email("abel")
    subject_id = grant(ready, subject, "analytics")
    send(ready, subject, 1, "g", topic="t", message="abel's words")
    body: dict[str, Any] = {
        "type": "access",
        "subject": subject,
        "jurisdiction": "US-CA",
        "agent": {"name": "Agnes Agent"},
    }
    resp = ready.post("/v1/requests", headers=auth(), json=body)
    assert_problem(resp, 422, "agent_proof_required")
    assert "Agnes" not in resp.text
    proof = {"kind": "signed_permission", "reference": "permission form 77", "sha256": "ab" * 32}
    body["agent"]["proof"] = proof
    made = request(ready, body)
    rid = made["request_id"]
    assert made["agent"] == {"name": "Agnes Agent", "proof": proof}
    # The agent's proof is no verification of the subject: nothing is disclosed before it.
    assert made["status"] == "received"
    assert made["verification"]["required"] == "high"
    run(ready)
    assert_problem(ready.get(f"/v1/requests/{rid}/result", headers=auth()), 409, "result_not_ready")
    shown = ready.get(f"/v1/requests/{rid}", headers=auth()).json()
    assert shown["agent"]["name"] == "Agnes Agent"
    assert "subject_id" not in shown
    # Recorded without personal values: the audit says an agent acted and how proven.
    entries = ready.get(
        f"/v1/audit/entries?subject_id={subject_id}&limit=1000", headers=auth()
    ).json()["items"]
    received = next(e for e in entries if e["action"] == "request:received")
    assert received["details"]["agent"] == {
        "proof_kind": "signed_permission",
        "proof_sha256": proof["sha256"],
    }
    assert "Agnes" not in str(entries)
    assert "permission form" not in str(entries)
    # Stored sealed.
    with runtime_of(ready).store.read() as conn:
        row = conn.execute(text("SELECT agent_ct, notes_ct FROM requests")).all()
    assert all(b"Agnes" not in bytes(r[0] or b"") for r in row)
    verify(ready, rid, method="id_document", level="high")
    run(ready)
    report = ready.get(f"/v1/requests/{rid}/result", headers=auth()).json()
    assert report["events"][0]["properties"]["message"] == "abel's words"


def required_of(client: TestClient, rid: str) -> str:
    resp = client.get(f"/v1/requests/{rid}", headers=auth())
    return str(resp.json()["verification"]["required"])


def test_a_duplicate_naming_us_ca_raises_the_level_of_the_open_request(
    ready: TestClient,
) -> None:
    subject = email("dora")
    subject_id = grant(ready, subject, "analytics")
    send(ready, subject, 1, "d", topic="t", message="dora's private words")
    first = request(ready, {"type": "access", "subject": subject, "jurisdiction": "EU"})
    rid = first["request_id"]
    assert first["verification"]["required"] == "reasonable"
    # The same ask naming US-CA: the open request is returned, needing what a Californian's
    # data needs (the subject is US-CA on record from now on).
    second = request(ready, {"type": "access", "subject": subject, "jurisdiction": "US-CA"})
    assert second["request_id"] == rid
    assert second["duplicate"] is True
    assert second["verification"]["required"] == "high"
    assert required_of(ready, rid) == "high"
    entries = ready.get(
        f"/v1/audit/entries?subject_id={subject_id}&limit=1000", headers=auth()
    ).json()["items"]
    raised = [e["details"] for e in entries if e["action"] == "request:required_level:raised"]
    assert raised == [{"request_id": rid, "from": "reasonable", "required_level": "high"}]
    assert verify(ready, rid, method="email_code", level="reasonable")["status"] == "received"
    run(ready)
    resp = ready.get(f"/v1/requests/{rid}/result", headers=auth())
    assert_problem(resp, 409, "result_not_ready")
    assert "private words" not in resp.text
    assert verify(ready, rid, method="id_document", level="high")["status"] == "verified"
    run(ready)
    report = ready.get(f"/v1/requests/{rid}/result", headers=auth()).json()
    assert report["events"][0]["properties"]["message"] == "dora's private words"


def move_to_california(client: TestClient, subject: dict[str, Any]) -> None:
    """A consent write naming US-CA: the subject is a Californian on record from then."""
    resp = client.post(
        "/v1/consents",
        headers=auth(),
        json={
            "subject": subject,
            "purposes": {"analytics": "granted"},
            "source": "web",
            "notice": {"id": "main", "version": "1"},
            "jurisdiction": "US-CA",
        },
    )
    assert resp.status_code == 200, resp.text


def test_a_subject_who_became_us_ca_after_receipt_is_not_disclosed_at_reasonable(
    ready: TestClient,
) -> None:
    subject = email("hugo")
    grant(ready, subject, "analytics")
    send(ready, subject, 1, "h", topic="t", message="hugo's private words")
    rid = request(ready, {"type": "access", "subject": subject, "jurisdiction": "EU"})["request_id"]
    move_to_california(ready, subject)
    # At verification the level is that of the subject as it is now.
    made = verify(ready, rid, method="email_code", level="reasonable")
    assert made["status"] == "received"
    assert made["verification"]["required"] == "high"
    run(ready)
    assert_problem(ready.get(f"/v1/requests/{rid}/result", headers=auth()), 409, "result_not_ready")
    assert verify(ready, rid, method="id_document", level="high")["status"] == "verified"
    run(ready)
    assert ready.get(f"/v1/requests/{rid}/result", headers=auth()).status_code == 200


def test_a_subject_who_became_us_ca_after_verification_is_not_disclosed_at_reasonable(
    ready: TestClient,
) -> None:
    # Verified at reasonable, then a Californian before the runner's pass: it waits.
    waits = email("ida")
    grant(ready, waits, "analytics")
    send(ready, waits, 1, "i", topic="t", message="ida's private words")
    rid = request(ready, {"type": "access", "subject": waits, "jurisdiction": "EU"})["request_id"]
    assert verify(ready, rid, method="email_code", level="reasonable")["status"] == "verified"
    move_to_california(ready, waits)
    run(ready)
    shown = ready.get(f"/v1/requests/{rid}", headers=auth()).json()
    assert shown["status"] == "verified"
    assert shown["verification"]["required"] == "high"
    resp = ready.get(f"/v1/requests/{rid}/result", headers=auth())
    assert_problem(resp, 409, "result_not_ready")
    assert "private words" not in resp.text
    verify(ready, rid, method="id_document", level="high")
    run(ready)
    assert status(ready, rid) == "completed"
    assert "ida's private words" in ready.get(f"/v1/requests/{rid}/result", headers=auth()).text

    # Completed at reasonable, then a Californian before the result is read: not disclosed.
    late = email("jan")
    grant(ready, late, "analytics")
    send(ready, late, 1, "j", topic="t", message="jan's private words")
    rid = request(
        ready,
        {
            "type": "access",
            "subject": late,
            "jurisdiction": "EU",
            "verification": {"method": "email_code", "level": "reasonable"},
        },
    )["request_id"]
    run(ready)
    assert status(ready, rid) == "completed"
    move_to_california(ready, late)
    resp = ready.get(f"/v1/requests/{rid}/result", headers=auth())
    assert_problem(resp, 409, "result_not_ready")
    assert "private words" not in resp.text
    assert required_of(ready, rid) == "high"


def test_a_page_of_requests_reads_its_agents_with_its_rows(ready: TestClient) -> None:
    proof = {"kind": "power_of_attorney", "reference": "deed 12"}
    made = []
    for i in range(6):
        body: dict[str, Any] = {
            "type": "access",
            "subject": email(f"page{i}"),
            "jurisdiction": "EU",
        }
        if i % 2 == 0:
            body["agent"] = {"name": f"Agent {i}", "proof": proof}
        made.append(request(ready, body)["request_id"])
    engine = runtime_of(ready).store.engine
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        listed = ready.get("/v1/requests?limit=100", headers=auth()).json()["items"]
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    # One statement reads the page and whether, and whom, each request's agent is: none
    # more per request.
    assert len([s for s in statements if "FROM requests" in s]) == 1
    assert [r["request_id"] for r in listed] == sorted(made)
    by_id = {r["request_id"]: r for r in listed}
    for i, rid in enumerate(made):
        single = ready.get(f"/v1/requests/{rid}", headers=auth()).json()
        assert by_id[rid] == single
        assert single.get("agent") == (
            {"name": f"Agent {i}", "proof": proof} if i % 2 == 0 else None
        )
