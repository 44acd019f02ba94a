"""The request lifecycle through the HTTP API on both back-ends: deadlines, verification,
duplicates, extension, rejection, access and portability, withdrawal purge."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from consentry import clock
from consentry.dsr import deadlines
from consentry.dsr import erasure as erasure_module
from consentry.subjects.models import Jurisdiction
from tests.conftest import auth
from tests.dsr.conftest import check, email, grant, request, run, send
from tests.http.test_conventions import assert_problem


def test_deadlines_follow_the_calendar() -> None:
    jan31 = datetime(2027, 1, 31, 9, 0, tzinfo=UTC)
    assert deadlines.due_at(Jurisdiction.EU, jan31) == datetime(2027, 2, 28, 9, 0, tzinfo=UTC)
    mar15 = datetime(2027, 3, 15, tzinfo=UTC)
    assert deadlines.due_at(Jurisdiction.UK, mar15) == datetime(2027, 4, 15, tzinfo=UTC)
    assert deadlines.due_at(Jurisdiction.US_CA, mar15) == datetime(2027, 4, 29, tzinfo=UTC)
    # Monday 15 March + 10 business days = Monday 29 March.
    assert deadlines.acknowledge_by(Jurisdiction.US_CA, mar15) == datetime(2027, 3, 29, tzinfo=UTC)
    assert deadlines.acknowledge_by(Jurisdiction.EU, mar15) is None
    due = datetime(2027, 4, 15, tzinfo=UTC)
    assert deadlines.extended(
        Jurisdiction.EU, due, mar15, months=2, days=None, already=False
    ) == datetime(2027, 6, 15, tzinfo=UTC)


def test_lifecycle_duplicates_access_and_rejection(ready: TestClient) -> None:
    subject = email("ada")
    grant(ready, subject, "analytics")
    send(ready, subject, 3, "a", topic="t", message="hello from ada", card="4111")
    body = {"type": "access", "subject": subject, "jurisdiction": "EU"}
    first = request(ready, body)
    again = request(ready, body)
    assert again["request_id"] == first["request_id"]
    assert again["duplicate"] is True
    rid = first["request_id"]
    assert_problem(ready.get(f"/v1/requests/{rid}/result", headers=auth()), 409, "result_not_ready")
    # A level below the type's keeps the request waiting.
    low = ready.post(
        f"/v1/requests/{rid}/verify", headers=auth(), json={"method": "x", "level": "reasonable"}
    )
    assert low.json()["status"] == "verified"
    run(ready)
    report = ready.get(f"/v1/requests/{rid}/result", headers=auth()).json()
    assert report["identities"] == [{"type": "email", "value": "ada@example.com"}]
    assert len(report["events"]) == 3
    assert report["events"][0]["properties"]["message"] == "hello from ada"
    assert report["events"][0]["properties"]["card"] == "4111"  # detokenised
    assert report["consent_history"][0]["evidence"] == {"ip": "192.0.2.10"}
    assert report["purposes"]["analytics"]["legal_basis"] == "consent"
    listed = ready.get("/v1/requests?status=completed", headers=auth()).json()["items"]
    assert [r["request_id"] for r in listed] == [rid]

    port = request(
        ready, {"type": "portability", "subject": subject, "jurisdiction": "EU", "format": "csv"}
    )
    pid = port["request_id"]
    assert port["verification"]["required"] == "high"
    ready.post(
        f"/v1/requests/{pid}/verify", headers=auth(), json={"method": "x", "level": "reasonable"}
    )
    assert ready.get(f"/v1/requests/{pid}", headers=auth()).json()["status"] == "received"
    ready.post(f"/v1/requests/{pid}/verify", headers=auth(), json={"method": "x", "level": "high"})
    run(ready)
    rows = list(
        csv.reader(io.StringIO(ready.get(f"/v1/requests/{pid}/result", headers=auth()).text))
    )
    assert rows[0][0] == "event_id"
    assert len(rows) == 4

    unknown = request(ready, {"type": "access", "subject": email("nobody"), "jurisdiction": "EU"})
    verified = ready.post(
        f"/v1/requests/{unknown['request_id']}/verify",
        headers=auth(),
        json={"method": "x", "level": "high"},
    ).json()
    assert verified["status"] == "completed"
    assert verified["subject_found"] is False

    rej = request(ready, {"type": "erasure", "subject": subject, "jurisdiction": "EU"})
    out = ready.post(
        f"/v1/requests/{rej['request_id']}/reject",
        headers=auth(),
        json={"reason": "manifestly unfounded"},
    ).json()
    assert out["status"] == "rejected"
    assert out["reason"] == "manifestly unfounded"
    assert_problem(
        ready.post(
            f"/v1/requests/{rej['request_id']}/verify",
            headers=auth(),
            json={"method": "x", "level": "high"},
        ),
        409,
        "invalid_transition",
    )
    assert check(ready, subject) == "granted"


def test_extension_once_within_limits(ready: TestClient) -> None:
    subject = email("ext")
    grant(ready, subject, "analytics")
    eu = request(ready, {"type": "access", "subject": subject, "jurisdiction": "EU"})
    url = f"/v1/requests/{eu['request_id']}/extend"
    told = "2026-11-23T10:00:00Z"
    assert_problem(
        ready.post(
            url, headers=auth(), json={"days": 10, "reason": "complex", "subject_notified_at": told}
        ),
        409,
        "extension_not_allowed",
    )
    assert_problem(
        ready.post(
            url,
            headers=auth(),
            json={"months": 3, "reason": "complex", "subject_notified_at": told},
        ),
        409,
        "extension_not_allowed",
    )
    ok = ready.post(
        url, headers=auth(), json={"months": 2, "reason": "complex", "subject_notified_at": told}
    )
    assert ok.status_code == 200
    assert ok.json()["extended"] is True
    assert ok.json()["due_at"] > eu["due_at"]
    assert_problem(
        ready.post(
            url, headers=auth(), json={"months": 1, "reason": "again", "subject_notified_at": told}
        ),
        409,
        "extension_not_allowed",
    )


def test_overdue_set_by_the_scheduler(ready: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    subject = email("late")
    grant(ready, subject, "analytics")
    created = request(ready, {"type": "access", "subject": subject, "jurisdiction": "US-CA"})
    later = datetime.now(UTC).replace(microsecond=0)
    monkeypatch.setattr(clock, "now", lambda: later.replace(year=later.year + 1))
    assert run(ready)["overdue"] == 1
    assert (
        ready.get(f"/v1/requests/{created['request_id']}", headers=auth()).json()["status"]
        == "overdue"
    )


def test_withdrawal_purge(ready: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    subject = email("will")
    grant(ready, subject, "analytics", "personalization")
    assert send(ready, subject, 2, "w", topic="t", offer="o")["accepted"] == 2
    resp = ready.post(
        "/v1/consents/withdraw",
        headers=auth(),
        json={"subject": subject, "purposes": ["personalization"]},
    )
    assert resp.status_code == 200
    # A withdrawal settles first (every entry numbered before it has committed by then).
    assert run(ready)["withdrawals"]["narrowed"] == 0
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + erasure_module.SETTLE)
    done = run(ready)["withdrawals"]
    assert done["narrowed"] == 2
    rid = request(
        ready,
        {
            "type": "access",
            "subject": subject,
            "jurisdiction": "EU",
            "verification": {"method": "x", "level": "reasonable"},
        },
    )["request_id"]
    run(ready)
    events = ready.get(f"/v1/requests/{rid}/result", headers=auth()).json()["events"]
    assert all("personalization" not in e["purposes"] for e in events)
    assert all("offer" not in e["properties"] for e in events)


def test_a_verified_erasure_cannot_be_rejected(ready: TestClient) -> None:
    subject = email("erin")
    grant(ready, subject, "analytics")
    body = {
        "type": "erasure",
        "subject": subject,
        "jurisdiction": "EU",
        "verification": {"method": "x", "level": "high"},
    }
    rid = request(ready, body)["request_id"]
    resp = ready.post(f"/v1/requests/{rid}/reject", headers=auth(), json={"reason": "changed mind"})
    assert_problem(resp, 409, "invalid_transition")
    run(ready)
    assert ready.get(f"/v1/requests/{rid}", headers=auth()).json()["status"] == "completed"
