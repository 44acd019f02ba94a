"""The retention sweep on both back-ends: events dated in the past through the HTTP API,
deleted or narrowed exactly when their retention ends per purpose, a restricted subject
skipped until its restriction is lifted; the audit entry's counts; a sweep interrupted
between transactions resumes with exact totals; `consentry retention sweep`."""

from __future__ import annotations

import dataclasses
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from consentry import clock
from consentry.app import create_app
from consentry.cli import app
from consentry.governance.retention import Progress
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage import retention as retention_sql
from consentry.storage.errors import SerializationFailure
from consentry.storage.schema import events
from tests.conftest import MASTER_KEY, auth
from tests.consent.helpers import install_clock

SCHEMA: dict[str, Any] = {
    "purposes": ["analytics", "personalization"],
    "fields": {
        "topic": {"type": "string", "category": "system.operations", "treatment": "keep"},
        "visit": {
            "type": "string",
            "category": "system.operations",
            "treatment": "keep",
            "purposes": ["analytics"],
        },
        "offer": {
            "type": "string",
            "category": "system.operations",
            "treatment": "keep",
            "purposes": ["personalization"],
        },
        "message": {"type": "string", "category": "user.content", "treatment": "keep"},
        "note": {
            "type": "string",
            "category": "user.content",
            "treatment": "keep",
            "purposes": ["analytics"],
        },
    },
}
PROPS = {"topic": "t", "visit": "v", "offer": "o", "message": "hello", "note": "jazz"}
# Days before now each event says it happened: analytics keeps 30 days, personalization 90.
AGES = {"old": 100, "mid": 60, "new": 1}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """No background runner nor sweep: the test drives them."""
    return dataclasses.replace(settings, dsr_poll_seconds=0, retention_sweep_seconds=0)


def _runtime(client: TestClient) -> Runtime:
    rt = client.app.state.runtime  # type: ignore[attr-defined]
    assert isinstance(rt, Runtime)
    return rt


def _prepare(client: TestClient) -> None:
    for key, days in (("analytics", 30), ("personalization", 90)):
        body = {"name": key.title(), "legal_basis": "consent", "retention_days": days}
        resp = client.put(f"/v1/purposes/{key}", headers=auth(), json=body)
        assert resp.status_code in {200, 201}, resp.text
    notice = {"version": "1", "text": "Notice.", "purposes": ["analytics", "personalization"]}
    assert client.put("/v1/notices/main", headers=auth(), json=notice).status_code == 201
    assert client.put("/v1/schemas/prefs", headers=auth(), json=SCHEMA).status_code == 201


def _customer(client: TestClient, name: str, now: datetime, ages: dict[str, float]) -> str:
    """A fictional customer who granted both purposes, with an event per age (in days)."""
    subject = {"identities": [{"type": "email", "value": f"{name}@example.com"}]}
    resp = client.post(
        "/v1/consents",
        headers=auth(),
        json={
            "subject": subject,
            "purposes": {"analytics": "granted", "personalization": "granted"},
            "source": "web",
            "notice": {"id": "main", "version": "1"},
        },
    )
    assert resp.status_code == 200, resp.text
    subject_id = str(resp.json()["subject_id"])
    batch = [
        {
            "event_id": f"{name}-{label}",
            "event_type": "prefs",
            "occurred_at": clock.rfc3339(now - timedelta(days=age)),
            "subject": subject,
            "properties": PROPS,
        }
        for label, age in ages.items()
    ]
    resp = client.post("/v1/events", headers=auth(), json={"events": batch})
    assert resp.status_code == 200, resp.text
    assert all(r["purposes"] == ["analytics", "personalization"] for r in resp.json()["results"])
    return subject_id


def _stored(rt: Runtime) -> dict[str, tuple[list[str], dict[str, Any], dict[str, Any]]]:
    """Every stored event: its purposes, clear properties and opened sealed values."""
    out = {}
    with rt.store.read() as conn:
        for row in conn.execute(select(events)):
            sealer = rt.subject_keys.sealer(conn, row.subject_id)
            sealed = json.loads(
                sealer.open(bytes(row.sealed), f"consentry:event:{row.event_id}".encode())
            )
            out[row.event_id] = (json.loads(row.purposes), json.loads(row.properties), sealed)
    return out


def _restrict(client: TestClient, name: str) -> None:
    resp = client.post(
        "/v1/requests",
        headers=auth(),
        json={
            "type": "restriction",
            "subject": {"identities": [{"type": "email", "value": f"{name}@example.com"}]},
            "jurisdiction": "EU",
            "ground": "18_1_a",
            "verification": {"method": "account_login", "level": "reasonable"},
        },
    )
    assert resp.status_code == 202, resp.text
    assert resp.json()["status"] == "completed"


def _swept(client: TestClient) -> list[dict[str, Any]]:
    resp = client.get("/v1/audit/entries", headers=auth(), params={"limit": 1000})
    assert resp.status_code == 200, resp.text
    found = [e for e in resp.json()["items"] if e["action"] == "events:retention:swept"]
    assert all(e["subject_id"] is None for e in found)
    return [
        {k: e["details"][k] for k in ("deleted", "narrowed", "skipped_restricted")} for e in found
    ]


FULL = (
    ["analytics", "personalization"],
    {"topic": "t", "visit": "v", "offer": "o"},
    {"message": "hello", "note": "jazz"},
)
NARROW = (["personalization"], {"topic": "t", "offer": "o"}, {"message": "hello"})


def test_sweep_deletes_and_narrows_exactly_the_expired(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    _prepare(client)
    now = fake()
    _customer(client, "ada", now, AGES)
    bo = _customer(client, "bo", now, AGES)
    _restrict(client, "bo")
    rt = _runtime(client)

    done = rt.retention.sweep()
    # ada: old (100 days) past both retentions, mid (60) past analytics only, new kept.
    assert done.counts == {"examined": 4, "deleted": 1, "narrowed": 1, "skipped_restricted": 2}
    stored = _stored(rt)
    assert stored == {
        "ada-mid": NARROW,
        "ada-new": FULL,
        "bo-old": FULL,
        "bo-mid": FULL,
        "bo-new": FULL,
    }
    assert _swept(client) == [{"deleted": 1, "narrowed": 1, "skipped_restricted": 2}]

    # 29.5 days on: ada's new event (30.5 days old) has passed analytics' 30 days, ada's mid
    # (89.5) not yet personalization's 90. Bo's restriction is lifted meanwhile: what ended
    # during it goes at this sweep.
    fake.advance(days=29.5)
    _customer(client, "cy", fake(), {"fresh": 0})
    lift = {"reason": "accuracy confirmed", "subject_informed_at": clock.rfc3339(fake())}
    resp = client.request("DELETE", f"/v1/subjects/{bo}/restriction", headers=auth(), json=lift)
    assert resp.status_code == 200, resp.text
    done = rt.retention.sweep()
    assert done.counts == {"examined": 5, "deleted": 1, "narrowed": 3, "skipped_restricted": 0}
    assert _stored(rt) == {
        "ada-mid": NARROW,
        "ada-new": NARROW,
        "bo-mid": NARROW,
        "bo-new": NARROW,
        "cy-fresh": FULL,
    }
    assert _swept(client) == [
        {"deleted": 1, "narrowed": 1, "skipped_restricted": 2},
        {"deleted": 1, "narrowed": 3, "skipped_restricted": 0},
    ]


class Crash(Exception):
    """Stands for a process stopped between two of the sweep's transactions."""


def test_an_interrupted_sweep_resumes_without_losing_or_counting_twice(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    _prepare(client)
    ages = {f"old{n}": 100 for n in range(20)} | {f"mid{n}": 60 for n in range(20)}
    _customer(client, "dee", fake(), ages | {"new": 1})
    rt = _runtime(client)
    rt.retention.span = rt.retention.max_span = 4
    seen: list[Progress] = []

    def crash(at: Progress) -> None:
        seen.append(at)
        if len(seen) == 3:
            raise Crash

    with pytest.raises(Crash):
        rt.retention.sweep(progress=crash)
    # Counts were committed with the work they count: the first three windows' events.
    partial = seen[-1].counts
    assert partial["deleted"] + partial["narrowed"] == 12
    assert len(_stored(rt)) == 41 - partial["deleted"]
    assert _swept(client) == []

    # Two processes resume it at once: each window is swept by one of them only.
    other = Runtime(settings)
    try:
        other.retention.span = other.retention.max_span = 4
        with ThreadPoolExecutor(2) as pool:
            outcomes = list(pool.map(lambda r: r.retention.sweep(fresh_for=3600), (rt, other)))
    finally:
        other.close()
    assert {o.sweep_id for o in outcomes} == {seen[0].sweep_id}
    expected = {"examined": 40, "deleted": 20, "narrowed": 20, "skipped_restricted": 0}
    assert [o.counts for o in outcomes] == [expected, expected]
    stored = _stored(rt)
    assert sorted(stored) == sorted([f"dee-mid{n}" for n in range(20)] + ["dee-new"])
    assert all(stored[f"dee-mid{n}"] == NARROW for n in range(20))
    assert _swept(client) == [{"deleted": 20, "narrowed": 20, "skipped_restricted": 0}]
    # A new sweep looks at the narrowed events again and finds nothing more to do.
    assert rt.retention.sweep().counts == dict.fromkeys(expected, 0) | {"examined": 20}


def test_cli_sweep_prints_what_it_deleted_and_narrowed(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    _prepare(client)
    _customer(client, "eve", fake(), AGES)
    env = {
        "CONSENTRY_DATA_DIR": str(settings.data_dir),
        "CONSENTRY_DB": settings.db,
        "CONSENTRY_MASTER_KEY": MASTER_KEY,
    }
    result = CliRunner().invoke(app, ["retention", "sweep"], env=env)
    assert result.exit_code == 0, result.output
    assert "deleted 1 events, narrowed 1, skipped 0 of restricted subjects" in result.output
    # Consent expiry is a step of every sweep.
    assert "expiry: 0 deleted, 0 expired, 0 narrowed, 0 notices, 0 subjects" in result.output
    # Not a terminal: no progress bar drawn.
    assert "sweeping" not in result.output
    assert _stored(_runtime(client)) == {"eve-mid": NARROW, "eve-new": FULL}
    entries = _swept(client)
    assert entries == [{"deleted": 1, "narrowed": 1, "skipped_restricted": 0}]
    resp = client.get("/v1/audit/entries", headers=auth(), params={"limit": 1000})
    swept = [e for e in resp.json()["items"] if e["action"] == "events:retention:swept"]
    assert swept[0]["actor"] == "cli"


def test_the_server_sweeps_every_interval(settings: Settings) -> None:
    quick = dataclasses.replace(settings, retention_sweep_seconds=0.1)
    with TestClient(create_app(quick)) as client:
        _prepare(client)
        _customer(client, "fay", clock.now(), {"old": 100, "new": 1})
        rt = _runtime(client)
        deadline = time.monotonic() + 10
        while "fay-old" in _stored(rt) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(_stored(rt)) == ["fay-new"]
        resp = client.get("/v1/audit/entries", headers=auth(), params={"limit": 1000})
        swept = [e for e in resp.json()["items"] if e["action"] == "events:retention:swept"]
        assert {e["actor"] for e in swept} == {"system"}
        assert sum(e["details"]["deleted"] for e in swept) == 1


def test_a_window_aborted_to_break_a_lock_cycle_is_run_again(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL aborts one transaction of a lock cycle (an erasure holding a subject whose
    events a window holds): the window is run again, its counts once."""
    fake = install_clock(monkeypatch)
    _prepare(client)
    _customer(client, "gus", fake(), AGES)
    partly_ended = retention_sql.partly_ended
    calls = []

    def aborted_once(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            # After the window's delete statement: it is rolled back with the rest.
            raise SerializationFailure("DeadlockDetected")
        return partly_ended(*args)

    monkeypatch.setattr(retention_sql, "partly_ended", aborted_once)
    done = _runtime(client).retention.sweep()
    assert len(calls) == 2
    assert done.counts == {"examined": 2, "deleted": 1, "narrowed": 1, "skipped_restricted": 0}
    assert _swept(client) == [{"deleted": 1, "narrowed": 1, "skipped_restricted": 0}]


def test_a_stopping_server_leaves_the_sweep_between_windows(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    _prepare(client)
    _customer(client, "hal", fake(), {f"old{n}": 100 for n in range(8)})
    sweeper = _runtime(client).retention
    sweeper.span = sweeper.max_span = 2
    first = sweeper.sweep(progress=lambda at: sweeper.stop())
    assert first.batches == 1
    assert _swept(client) == []
    # Started again (with the interval 0 of these tests, no thread), sweeps go on.
    sweeper.start()
    done = sweeper.sweep()
    assert done.sweep_id == first.sweep_id
    assert done.counts["deleted"] == 8
    assert _swept(client) == [{"deleted": 8, "narrowed": 0, "skipped_restricted": 0}]


def test_what_a_purge_and_a_restriction_changed_before_the_sweep_is_kept(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep's delete statement reads purposes from the events' purpose bits as a
    withdrawal purge left them: the event it would have narrowed to personalization lost
    personalization meanwhile, so it goes whole (its one purpose left has ended) rather than
    getting personalization back; the subject just restricted keeps its events."""
    fake = install_clock(monkeypatch)
    _prepare(client)
    _customer(client, "ida", fake(), AGES)
    _customer(client, "jo", fake(), {"mid": 60})
    rt = _runtime(client)
    subject = {"identities": [{"type": "email", "value": "ida@example.com"}]}
    body = {"subject": subject, "purposes": ["personalization"]}
    resp = client.post("/v1/consents/withdraw", headers=auth(), json=body)
    assert resp.status_code == 200, resp.text
    purged = rt.erasure.purge_withdrawals(actor="test", settle=timedelta(0))
    assert purged["narrowed"] == 3
    _restrict(client, "jo")
    sweeper = rt.retention
    done = sweeper.sweep()
    assert done.counts == {"examined": 3, "deleted": 2, "narrowed": 0, "skipped_restricted": 1}
    analytics_only = (
        ["analytics"],
        {"topic": "t", "visit": "v"},
        {"message": "hello", "note": "jazz"},
    )
    assert _stored(rt) == {"ida-new": analytics_only, "jo-mid": FULL}
    assert _swept(client) == [{"deleted": 2, "narrowed": 0, "skipped_restricted": 1}]
