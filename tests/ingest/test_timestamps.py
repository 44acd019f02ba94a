"""API.md, Retention: an `occurred_at` more than 5 minutes ahead of the server's clock is
refused as `invalid_event` (with a detail); up to 5 minutes ahead, or any offset spelling of
a time within it, is accepted."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from consentry import clock
from tests.consent.helpers import install_clock
from tests.ingest.test_pipeline import event, grant, send, who


def test_an_occurred_at_in_the_future_is_refused(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    grant(ready, who("tia"), "analytics")
    now = fake()
    plus = timezone(timedelta(hours=2))
    times = {
        "past": now - timedelta(days=30),
        "now": now,
        "edge": now + timedelta(minutes=5),
        "edge-offset": (now + timedelta(minutes=5)).astimezone(plus),
        "ahead": now + timedelta(minutes=5, seconds=1),
        "ahead-offset": (now + timedelta(minutes=5, seconds=1)).astimezone(plus),
        "far": now + timedelta(days=365),
    }
    results = send(
        ready,
        [event(name, who("tia"), occurred_at=at.isoformat()) for name, at in times.items()],
    )
    status = {r["event_id"]: r["status"] for r in results}
    assert status == {
        "past": "accepted",
        "now": "accepted",
        "edge": "accepted",
        "edge-offset": "accepted",
        "ahead": "rejected",
        "ahead-offset": "rejected",
        "far": "rejected",
    }
    for result in results:
        if result["status"] == "rejected":
            assert result["code"] == "invalid_event"
            assert result["detail"] == (
                "occurred_at is more than 5 minutes ahead of the server's clock"
            )
            assert result["purposes"] == []
    # The same event, once the server's clock has caught up, is accepted under its id.
    fake.advance(seconds=1)
    again = send(ready, [event("ahead", who("tia"), occurred_at=times["ahead"].isoformat())])
    assert again[0]["status"] == "accepted", again


def test_the_future_is_judged_before_the_schema(ready: TestClient) -> None:
    """invalid_event comes first in API.md's order: an unknown event type in the future is
    still invalid_event."""
    later = (clock.now() + timedelta(hours=1)).isoformat()
    results = send(ready, [event("x", who("uma"), occurred_at=later, event_type="nope")])
    assert (results[0]["code"], results[0]["status"]) == ("invalid_event", "rejected")
