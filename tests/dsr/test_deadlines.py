"""Extensions through the HTTP API on both back-ends: US-CA by days (1-45), EU and other
jurisdictions by months (1-2), once, and only before `due_at`; `extension_not_allowed`
otherwise."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry import clock
from tests.conftest import auth
from tests.dsr.conftest import email, grant, request, run
from tests.http.test_conventions import assert_problem

TOLD = "2026-11-23T10:00:00Z"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def open_request(client: TestClient, name: str, jurisdiction: str) -> dict[str, Any]:
    grant(client, email(name), "analytics")
    return request(client, {"type": "access", "subject": email(name), "jurisdiction": jurisdiction})


def extend(client: TestClient, request_id: str, **amount: int) -> Any:
    return client.post(
        f"/v1/requests/{request_id}/extend",
        headers=auth(),
        json=amount | {"reason": "many systems to search", "subject_notified_at": TOLD},
    )


def test_a_us_ca_deadline_is_extended_by_days(ready: TestClient) -> None:
    created = open_request(ready, "cal", "US-CA")
    rid = created["request_id"]
    assert _at(created["due_at"]) - _at(created["received_at"]) == timedelta(days=45)
    for refused in (
        {"months": 1},
        {"days": 0},
        {"days": 46},
        {"days": -1},
        {"months": 1, "days": 5},
    ):
        assert_problem(extend(ready, rid, **refused), 409, "extension_not_allowed")
    assert ready.get(f"/v1/requests/{rid}", headers=auth()).json()["extended"] is False
    ok = extend(ready, rid, days=45)
    assert ok.status_code == 200, ok.text
    assert ok.json()["extended"] is True
    assert _at(ok.json()["due_at"]) == _at(created["due_at"]) + timedelta(days=45)
    assert_problem(extend(ready, rid, days=1), 409, "extension_not_allowed")
    entries = ready.get("/v1/audit/entries?limit=1000", headers=auth()).json()["items"]
    [entry] = [e for e in entries if e["action"] == "request:extended"]
    assert entry["details"]["days"] == 45
    assert _at(entry["details"]["subject_notified_at"]) == _at(TOLD)
    assert "many systems" not in str(entry)  # the reason is sealed with the request


@pytest.mark.parametrize("jurisdiction", ["EU", "UK", "OTHER"])
def test_other_deadlines_are_extended_by_one_or_two_months(
    ready: TestClient, jurisdiction: str
) -> None:
    created = open_request(ready, "mon", jurisdiction)
    rid = created["request_id"]
    for refused in ({"days": 10}, {"months": 0}, {"months": 3}):
        assert_problem(extend(ready, rid, **refused), 409, "extension_not_allowed")
    ok = extend(ready, rid, months=1)
    assert ok.status_code == 200, ok.text
    due, new = _at(created["due_at"]), _at(ok.json()["due_at"])
    assert (new.year * 12 + new.month) - (due.year * 12 + due.month) == 1


@pytest.mark.parametrize(
    ("jurisdiction", "amount"), [("EU", {"months": 1}), ("US-CA", {"days": 10})]
)
def test_an_extension_only_before_the_deadline(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch, jurisdiction: str, amount: dict[str, int]
) -> None:
    created = open_request(ready, "late", jurisdiction)
    rid = created["request_id"]
    due = _at(created["due_at"])
    monkeypatch.setattr(clock, "now", lambda: due)  # at the deadline is too late already
    assert_problem(extend(ready, rid, **amount), 409, "extension_not_allowed")
    monkeypatch.setattr(clock, "now", lambda: due + timedelta(days=1))
    assert run(ready)["overdue"] == 1
    assert ready.get(f"/v1/requests/{rid}", headers=auth()).json()["status"] == "overdue"
    assert_problem(extend(ready, rid, **amount), 409, "extension_not_allowed")
    # A second before its deadline, a request is still extended.
    second = open_request(ready, "early", jurisdiction)
    monkeypatch.setattr(clock, "now", lambda: _at(second["due_at"]) - timedelta(seconds=1))
    assert extend(ready, second["request_id"], **amount).status_code == 200
