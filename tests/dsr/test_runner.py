"""The runner through the HTTP API on both back-ends: every runnable request is taken, a page
at a time; a step refused or failing unexpectedly holds back its own request only."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from consentry.dsr import runner as runner_module
from tests.conftest import auth
from tests.dsr.conftest import FakeSystems, check, email, grant, request, run, runtime_of


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
