"""The request lifecycle through the HTTP API on both back-ends: deadlines, verification,
duplicates, extension, rejection, access and portability, restriction, objection,
rectification, downstream acknowledgements (a fake of the dsr port), withdrawal purge."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from consentry import clock
from consentry.dsr import deadlines
from consentry.dsr import erasure as erasure_module
from consentry.dsr import runner as runner_module
from consentry.dsr.models import NoticeKind
from consentry.subjects.models import Jurisdiction
from tests.conftest import auth
from tests.dsr.conftest import check, email, grant, request, run, runtime_of, send
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


def test_rectification(ready: TestClient) -> None:
    subject = email("ruth")
    subject_id = grant(ready, subject, "analytics")
    wrong = {"type": "email", "old_sha256": "0" * 64, "value": "ruth.new@example.com"}
    body = {
        "type": "rectification",
        "subject": subject,
        "jurisdiction": "EU",
        "verification": {"method": "x", "level": "high", "matched": ["document"]},
        "changes": {"identities": [wrong]},
    }
    assert_problem(ready.post("/v1/requests", headers=auth(), json=body), 409, "integrity_mismatch")
    right = dict(wrong, old_sha256=hashlib.sha256(b"ruth@example.com").hexdigest())
    created = request(ready, body | {"changes": {"identities": [right]}})
    run(ready)
    assert (
        ready.get(f"/v1/requests/{created['request_id']}", headers=auth()).json()["status"]
        == "completed"
    )
    assert check(ready, email("ruth.new")) == "granted"
    entries = ready.get(
        f"/v1/audit/entries?subject_id={subject_id}&limit=1000", headers=auth()
    ).json()["items"]
    rect = next(e for e in entries if e["action"] == "subject:identity:rectified")
    assert "ruth" not in str(rect["details"])
    assert rect["details"]["old_keyed_hash"] != right["old_sha256"]


class FakeSystems:
    """A fake of the dsr port (our own interface): two systems received the data; each
    notice is acknowledged once (through the rights endpoint: `acked`, or by hand)."""

    def __init__(self) -> None:
        self.acked: set[str] = set()
        self.sent: list[tuple[str, NoticeKind]] = []
        self.notices: list[dict[str, Any]] = []

    def cancel_pending(
        self, conn: Connection, subject_id: str, purposes: Sequence[str] | None, *, actor: str
    ) -> int:
        return 2

    def notify(
        self,
        conn: Connection,
        subject_id: str,
        kind: NoticeKind,
        *,
        request_id: str | None,
        purposes: Sequence[str] | None,
        actor: str,
        corrected: Sequence[tuple[str, str]] = (),
        jurisdiction: str | None = None,
    ) -> list[str]:
        self.sent.append((subject_id, kind))
        for system_id in ("crm", "warehouse"):
            self.notices.append(
                {"request_id": request_id, "system_id": system_id, "type": kind.value}
                | {"acknowledged_at": None}
            )
        return ["crm", "warehouse"]

    def acknowledgements(self, conn: Connection, request_id: str) -> list[dict[str, Any]]:
        for n in self.notices:
            if n["system_id"] in self.acked and n["acknowledged_at"] is None:
                n["acknowledged_at"] = "2026-11-20T10:00:00Z"
        mine = [n for n in self.notices if n["request_id"] == request_id]
        return [
            {
                "system_id": system_id,
                "kind": [n for n in mine if n["system_id"] == system_id][-1]["type"],
                "sent_at": "2026-11-20T09:00:00Z",
                "acknowledged_at": None
                if any(n["acknowledged_at"] is None for n in mine if n["system_id"] == system_id)
                else "2026-11-20T10:00:00Z",
            }
            for system_id in sorted({n["system_id"] for n in mine})
        ]

    def recipients(self, conn: Connection, subject_id: str) -> list[dict[str, Any]]:
        return []

    def notices_of(self, conn: Connection, request_id: str) -> list[dict[str, Any]]:
        return []

    def acknowledge(self, conn: Connection, request_id: str, system_id: str, *, actor: str) -> int:
        waiting = [
            n
            for n in self.notices
            if n["request_id"] == request_id
            and n["system_id"] == system_id
            and n["acknowledged_at"] is None
        ]
        for n in waiting:
            n["acknowledged_at"] = "2026-11-20T10:00:00Z"
        return len(waiting)


def test_awaiting_downstream_until_each_system_acknowledges(ready: TestClient) -> None:
    rt = runtime_of(ready)
    fake = FakeSystems()
    rt.requests.downstream = rt.erasure.downstream = fake
    subject = email("dora")
    grant(ready, subject, "analytics")
    created = request(
        ready,
        {
            "type": "erasure",
            "subject": subject,
            "jurisdiction": "EU",
            "verification": {"method": "x", "level": "high"},
        },
    )
    rid = created["request_id"]
    run(ready)
    state = ready.get(f"/v1/requests/{rid}", headers=auth()).json()
    assert state["status"] == "awaiting_downstream"
    assert {d["system_id"] for d in state["downstream"]} == {"crm", "warehouse"}
    fake.acked.add("warehouse")  # acknowledged through its rights endpoint
    run(ready)
    assert (
        ready.get(f"/v1/requests/{rid}", headers=auth()).json()["status"] == "awaiting_downstream"
    )
    assert_problem(
        ready.post(f"/v1/requests/{rid}/acks", headers=auth(), json={"system_id": "nope"}),
        409,
        "unexpected_acknowledgement",
    )
    done = ready.post(f"/v1/requests/{rid}/acks", headers=auth(), json={"system_id": "crm"}).json()
    assert done["status"] == "completed"
    assert [k for _, k in fake.sent] == [NoticeKind.PURGE_REQUEST]
    # Answered once: a second acknowledgement is owed nothing.
    assert_problem(
        ready.post(f"/v1/requests/{rid}/acks", headers=auth(), json={"system_id": "crm"}),
        409,
        "unexpected_acknowledgement",
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


def test_requests_awaiting_downstream_never_hold_back_newer_ones(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner goes through every runnable request, a page at a time."""
    monkeypatch.setattr(runner_module, "_PAGE", 2)
    rt = runtime_of(ready)
    rt.requests.downstream = rt.erasure.downstream = FakeSystems()

    def erase(name: str) -> str:
        grant(ready, email(name), "analytics")
        body = {
            "type": "erasure",
            "subject": email(name),
            "jurisdiction": "EU",
            "verification": {"method": "x", "level": "high"},
        }
        return str(request(ready, body)["request_id"])

    waiting = [erase(f"wait{n}") for n in range(3)]
    run(ready)
    states = [ready.get(f"/v1/requests/{r}", headers=auth()).json()["status"] for r in waiting]
    assert states == ["awaiting_downstream"] * 3
    newest = erase("newest")
    run(ready)
    state = ready.get(f"/v1/requests/{newest}", headers=auth()).json()["status"]
    assert state == "awaiting_downstream"


def test_a_direct_marketing_objection_is_never_a_duplicate_of_another(ready: TestClient) -> None:
    """An open objection to other purposes does not swallow a direct-marketing one, which
    takes effect on receipt."""
    subject = email("olga")
    grant(ready, subject, "marketing")
    pending = request(ready, {"type": "objection", "subject": subject, "jurisdiction": "EU"})
    assert pending["status"] == "received"
    dm = request(
        ready,
        {"type": "objection", "subject": subject, "jurisdiction": "EU", "purposes": ["marketing"]},
    )
    assert dm["request_id"] != pending["request_id"]
    assert check(ready, subject, "marketing") == "objected"
    again = request(ready, {"type": "objection", "subject": subject, "jurisdiction": "EU"})
    assert again["request_id"] == pending["request_id"]


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


def test_a_refused_step_fails_its_own_request_only(ready: TestClient) -> None:
    """The runner takes several requests in one transaction, each step in a savepoint: a
    step refused halfway (the first change made, the second naming another subject's
    identity) fails its request and leaves nothing of itself; the requests beside it
    complete."""

    def person(name: str, phone: str) -> dict[str, Any]:
        ids = email(name)["identities"] + [{"type": "phone", "value": f"+44 7700 900{phone}"}]
        return {"identities": ids}

    for name, phone in (("olga", "101"), ("pete", "102"), ("quinn", "103")):
        grant(ready, person(name, phone), "analytics")
    changes = [
        {
            "type": "email",
            "old_sha256": hashlib.sha256(b"olga@example.com").hexdigest(),
            "value": "olga.new@example.com",
        },
        {
            "type": "phone",
            "old_sha256": hashlib.sha256(b"+447700900101").hexdigest(),
            "value": "+44 7700 900102",
        },
    ]
    verified = {
        "jurisdiction": "EU",
        "verification": {"method": "x", "level": "high", "matched": ["document"]},
    }
    rectify = request(
        ready,
        {"type": "rectification", "subject": email("olga"), "changes": {"identities": changes}}
        | verified,
    )
    erase = request(ready, {"type": "erasure", "subject": email("quinn")} | verified)
    run(ready)
    failed = ready.get(f"/v1/requests/{rectify['request_id']}", headers=auth()).json()
    assert (failed["status"], failed["reason"]) == ("failed", "identity_conflict")
    done = ready.get(f"/v1/requests/{erase['request_id']}", headers=auth()).json()
    assert done["status"] == "completed"
    assert check(ready, email("olga")) == "granted"
    assert check(ready, email("olga.new")) == "never_asked"
    assert check(ready, email("quinn")) == "subject_erased"
    entries = ready.get("/v1/audit/entries?limit=1000", headers=auth()).json()["items"]
    assert not any(e["action"] == "subject:identity:rectified" for e in entries)
    assert runtime_of(ready).runner.run_pending()["advanced"] == 0


def test_an_unexpected_failure_holds_back_its_own_request_only(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step failing for a reason of no request's making (not a refusal) is rolled back
    alone and tried again at the next pass; the requests beside it complete."""
    rita = grant(ready, email("rita"), "analytics")
    grant(ready, email("sam"), "analytics")
    verified = {"jurisdiction": "EU", "verification": {"method": "x", "level": "high"}}
    first = request(ready, {"type": "erasure", "subject": email("rita")} | verified)
    second = request(ready, {"type": "erasure", "subject": email("sam")} | verified)
    rt = runtime_of(ready)
    real = rt.erasure.purge

    def purge(conn: Connection, subject_id: str, **kw: Any) -> list[str]:
        if subject_id == rita:
            raise RuntimeError("the disk went away")
        return real(conn, subject_id, **kw)

    monkeypatch.setattr(rt.erasure, "purge", purge)
    run(ready)

    def status(created: dict[str, Any]) -> str:
        url = f"/v1/requests/{created['request_id']}"
        return str(ready.get(url, headers=auth()).json()["status"])

    assert (status(first), status(second)) == ("in_progress", "completed")
    monkeypatch.undo()
    run(ready)
    assert status(first) == "completed"
