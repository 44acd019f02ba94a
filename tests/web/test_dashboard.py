"""The dashboard's view on both back-ends: its figures are the compliance summary's, and the
request backlog stands each open request against its deadline (on track, due within 5 days,
overdue) in the counts and in the rows alike."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry import clock
from consentry.dsr.deadlines import Standing, standing
from consentry.web import dashboard
from consentry.web.brand import Brand
from consentry.web.pages import _ENV
from tests.conftest import auth
from tests.consent.helpers import FakeClock, install_clock
from tests.dsr.conftest import email, grant, request, runtime_of


def render(view: dict[str, Any]) -> str:
    """The dashboard page of `view`, for a DPO who may do everything it offers."""
    return _ENV.get_template("dashboard.html").render(
        static="/static",
        brand=Brand("Consentry", None, None),
        role="dpo",
        csrf="x",
        can_act=True,
        can_report=True,
        can_verify=True,
        can_assess=True,
        **view,
    )


def _access(client: TestClient, name: str, jurisdiction: str = "EU") -> str:
    grant(client, email(name), "analytics")
    body = {"type": "access", "subject": email(name), "jurisdiction": jurisdiction}
    return str(request(client, body)["request_id"])


def test_the_view_shows_the_summary_and_stands_requests_against_their_deadlines(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    late = _access(ready, "ada")  # EU: a month
    fake.advance(days=27)
    soon = _access(ready, "bo")
    erasure = request(ready, {"type": "erasure", "subject": email("bo"), "jurisdiction": "EU"})
    fake.advance(days=26)
    # ada's month has passed; bo's requests are due in 4 or 5 days.
    fresh = _access(ready, "cy", "US-CA")  # 45 days
    rt = runtime_of(ready)

    view = dashboard.view(rt)
    api = ready.get("/v1/compliance/summary", headers=auth(), params={"series": "day"}).json()
    assert view["summary"]["coverage"] == api["coverage"]
    assert view["summary"]["requests"] == api["requests"]
    assert view["summary"]["status_counts"] == api["status_counts"]
    assert len(view["days"]) == dashboard.SERIES_DAYS

    backlog = view["backlog"]
    assert backlog.counts == {
        "access": {"on_track": 1, "due_soon": 1, "overdue": 1},
        "erasure": {"on_track": 0, "due_soon": 1, "overdue": 0},
    }
    assert api["requests"]["overdue"] == 1
    rows = {r.request.request_id: r.standing for r in backlog.rows}
    assert rows == {
        late: Standing.OVERDUE,
        soon: Standing.DUE_SOON,
        erasure["request_id"]: Standing.DUE_SOON,
        fresh: Standing.ON_TRACK,
    }
    # Nearest deadline first.
    assert backlog.rows[0].request.request_id == late

    page = render(view)
    assert f'<tr data-request="{late}" id="request-{late}">' in page
    assert '<tr data-type="access"><th scope="row">access</th><td>3</td><td>1</td>' in page
    entries = ready.get("/v1/audit/entries", headers=auth(), params={"limit": 1}).json()
    assert view["audit_entries"] >= entries["items"][0]["index"] + 1
    assert f'<p data-figure="audit_entries">{view["audit_entries"]} entries.</p>' in page


def test_standing_bounds() -> None:
    now = FakeClock()()
    assert standing(now - timedelta(seconds=1), now) is Standing.OVERDUE
    assert standing(now, now) is Standing.DUE_SOON
    assert standing(now + timedelta(days=5), now) is Standing.DUE_SOON
    assert standing(now + timedelta(days=5, seconds=1), now) is Standing.ON_TRACK
    assert standing(now + timedelta(days=30), now, marked_overdue=True) is Standing.OVERDUE


def test_open_incidents_show_the_clocks_still_running(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    aware = fake() - timedelta(hours=2)
    body = {
        "detected_at": clock.rfc3339(aware - timedelta(hours=1)),
        "aware_at": clock.rfc3339(aware),
        "description": "A laptop with an export was stolen.",
        "nature": "confidentiality",
        "data_categories": ["user.contact.email"],
        "risk": "risk",
        "keys_compromised": False,
    }
    made = ready.post("/v1/incidents", headers=auth(), json=body)
    assert made.status_code == 201, made.text
    incident_id = made.json()["incident_id"]
    rt = runtime_of(ready)

    (shown,) = dashboard.view(rt)["incidents"]
    assert shown.incident_id == incident_id
    assert [(c.label, c.left) for c in shown.clocks] == [
        ("Supervisory authority (Art. 33(1))", "2 d 22 h 0 min left")
    ]
    fake.advance(hours=71)
    (late,) = dashboard.incident_clocks(rt, fake())
    assert late.clocks[0].left == "overdue by 1 h 0 min"
    # Notified: that clock stops.
    told = {"to": "authority", "at": clock.rfc3339(fake()), "delay_reasons": ["found late"]}
    resp = ready.post(f"/v1/incidents/{incident_id}/notifications", headers=auth(), json=told)
    assert resp.status_code in {200, 201}, resp.text
    (stopped,) = dashboard.incident_clocks(rt, fake())
    assert stopped.clocks == []


def test_time_left_reads_plainly() -> None:
    now = FakeClock()()
    assert dashboard.time_left(now + timedelta(minutes=5, seconds=59), now) == "0 h 5 min left"
    assert dashboard.time_left(now + timedelta(days=3, hours=4), now) == "3 d 4 h 0 min left"
    assert dashboard.time_left(now - timedelta(minutes=90), now) == "overdue by 1 h 30 min"
