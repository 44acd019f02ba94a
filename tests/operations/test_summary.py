"""GET /v1/compliance/summary (both back-ends): events counted per day and code at ingest,
accepted and refused batches alike; windows, the daily series, bad windows, who may read it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry import clock as real_clock
from tests.conftest import auth
from tests.consent.helpers import install_clock, publish, record, withdraw
from tests.http.test_conventions import assert_problem, make_key
from tests.ingest.test_pipeline import SCHEMA


def send(client: TestClient, at: datetime, events: list[tuple[str, str]]) -> None:
    """A batch of (person, event type) events happening at `at`."""
    batch = [
        {
            "event_id": f"ev-{at.timestamp()}-{i}",
            "event_type": kind,
            "occurred_at": real_clock.rfc3339(at),
            "subject": {"identities": [{"type": "email", "value": f"{who}@example.com"}]},
            "properties": {"url": "https://shop.example.com/"},
        }
        for i, (who, kind) in enumerate(events)
    ]
    resp = client.post("/v1/events", headers=auth(), json={"events": batch})
    assert resp.status_code == 200, resp.text


def summary(client: TestClient, key: str | None = None, **params: str) -> dict[str, Any]:
    resp = client.get("/v1/compliance/summary", headers=auth(key) if key else auth(), params=params)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_events_windows_and_daily_series(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = install_clock(monkeypatch)
    publish(client)
    assert client.put("/v1/schemas/page_view", headers=auth(), json=SCHEMA).status_code == 201
    assert summary(client)["events"] == {"accepted": 0, "rejected": {}}
    assert summary(client)["since"] is None

    first = clock()
    record(client, "ana", {"analytics": "granted"})
    send(client, first, [("ana", "page_view"), ("ana", "page_view"), ("bob", "page_view")])
    send(client, first, [("ana", "no_such_type")])
    second = clock.advance(days=1)
    # A batch refused whole is counted too.
    send(client, second, [("bob", "page_view"), ("bob", "page_view")])
    withdraw(client, "ana", ["analytics"])

    day1, day2 = first.date().isoformat(), second.date().isoformat()
    body = summary(client)
    assert body["events"] == {
        "accepted": 2,
        "rejected": {"no_consent": 3, "unknown_event_type": 1},
    }
    assert body["since"] == f"{day1}T00:00:00.000000Z"
    assert set(body) == {
        "coverage",
        "status_counts",
        "events",
        "processed_without_consent",
        "requests",
        "deliveries",
        "keys",
        "incidents",
        "reconsent_due",
        "since",
    }

    # A window counts the whole UTC days it touches.
    late = summary(client, **{"from": f"{day2}T10:00:00Z", "to": f"{day2}T11:00:00+00:00"})
    assert late["events"] == {"accepted": 0, "rejected": {"no_consent": 2}}
    assert late["since"] == f"{day2}T00:00:00.000000Z"
    early = summary(client, to=real_clock.rfc3339(first))
    assert early["events"]["accepted"] == 2
    assert early["events"]["rejected"] == {"no_consent": 1, "unknown_event_type": 1}

    daily = summary(client, series="day", **{"from": real_clock.rfc3339(first - timedelta(days=1))})
    assert daily["series"] == [
        {
            "day": (first - timedelta(days=1)).date().isoformat(),
            "events": {"accepted": 0, "rejected": 0},
            "grants": 0,
            "opt_outs": 0,
            "expiries": 0,
        },
        {
            "day": day1,
            "events": {"accepted": 2, "rejected": 2},
            "grants": 1,
            "opt_outs": 0,
            "expiries": 0,
        },
        {
            "day": day2,
            "events": {"accepted": 0, "rejected": 2},
            "grants": 0,
            "opt_outs": 1,
            "expiries": 0,
        },
    ]


def test_the_series_starts_at_the_first_consent_change_and_counts_expiries_apart(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `from`, the series (and `since`) start at the first day anything was counted,
    a consent change before any event included; a lapsed grant's expiry is no opt-out: it is
    counted under `expiries`, on the day the grant lapsed."""
    clock = install_clock(monkeypatch)
    publish(client)
    assert client.put("/v1/schemas/page_view", headers=auth(), json=SCHEMA).status_code == 201
    first = clock()
    granted = record(client, "ana", {"analytics": "granted"})
    record(client, "bob", {"analytics": "denied"})
    clock.advance(days=2)
    send(client, clock(), [("ana", "page_view")])
    day0 = first.date().isoformat()
    body = summary(client, series="day")
    assert body["since"] == f"{day0}T00:00:00.000000Z"
    assert body["series"][0] == {
        "day": day0,
        "events": {"accepted": 0, "rejected": 0},
        "grants": 1,
        "opt_outs": 1,
        "expiries": 0,
    }
    assert [p["events"]["accepted"] for p in body["series"]] == [0, 0, 1]

    lapses = datetime.fromisoformat(granted["purposes"]["analytics"]["expires_at"])
    clock.moment = lapses + timedelta(days=1)
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert runtime.expiry.expire_due()["expired"] == 1
    points = summary(client, series="day")["series"]
    assert len(points) == (clock().date() - first.date()).days + 1
    assert sum(p["opt_outs"] for p in points) == 1
    assert [p["day"] for p in points if p["expiries"]] == [lapses.date().isoformat()]
    assert sum(p["expiries"] for p in points) == 1


def test_bad_windows_and_roles(client: TestClient) -> None:
    url = "/v1/compliance/summary"
    reversed_ = {"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}
    assert_problem(client.get(url, headers=auth(), params=reversed_), 422, "invalid_window")
    for bad in (
        {"from": "yesterday"},
        {"to": "2026-03-01T00:00:00"},  # no zone
        {"from": "0001-01-01T00:00:00+14:00"},
        {"series": "week"},
    ):
        assert_problem(client.get(url, headers=auth(), params=bad), 422, "invalid_request")
    decade = {"from": "2000-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z", "series": "day"}
    assert_problem(client.get(url, headers=auth(), params=decade), 422, "invalid_window")
    keys = {r: make_key(client, r) for r in ("auditor", "dpo", "operator", "collector", "analyst")}
    for role in ("auditor", "dpo"):
        assert "status_counts" in summary(client, keys[role])
    for role in ("operator", "collector", "analyst"):
        assert_problem(client.get(url, headers=auth(keys[role])), 403, "forbidden")
