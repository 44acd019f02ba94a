"""The dashboard's audit log section through HTTP on both back-ends: the last verification
and "verify now", for the roles that read the log, which finds an edited entry."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from consentry.audit import verify
from consentry.people.models import PersonRole
from tests.conftest import auth
from tests.consent.helpers import install_clock
from tests.dsr.conftest import email, grant, runtime_of
from tests.people.helpers import enrol
from tests.web.test_portal import visitor
from tests.web.test_staff import _field, _sign_in


def test_verify_now_keeps_the_last_verification(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    rt = runtime_of(ready)
    auditor = enrol(rt.people, fake, email="audit@example.com", role=PersonRole.AUDITOR)
    operator = enrol(rt.people, fake, email="ops@example.com", role=PersonRole.OPERATOR)
    grant(ready, email("ada"), "analytics")

    hand = visitor(ready)
    assert _sign_in(hand, operator.email, operator.secret, fake) == 303
    seen = hand.get("/dashboard").text
    assert "/dashboard/audit/verify" not in seen
    refused = hand.post("/dashboard/audit/verify", data={"csrf": _field(seen, "csrf")})
    assert refused.status_code == 403

    watcher = visitor(ready)
    assert _sign_in(watcher, auditor.email, auditor.secret, fake) == 303
    page = watcher.get("/dashboard").text
    assert '<p data-figure="verification">Never verified.</p>' in page
    csrf = _field(page, "csrf")
    forged = watcher.post("/dashboard/audit/verify", data={"csrf": "0" * 64})
    assert forged.status_code == 403
    done = watcher.post("/dashboard/audit/verify", data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == "/dashboard#h-audit"

    page = watcher.get("/dashboard").text
    shown = page[page.index('data-figure="verification"') :]
    shown = shown[: shown.index("</p>")]
    assert "Intact" in shown
    assert f"person:{auditor.person_id}" in shown
    with rt.store.read() as conn:
        size = conn.execute(text("SELECT size FROM audit_state")).scalar_one()
    # Every entry up to the verification's own audit entry, which is its first step.
    entries = ready.get("/v1/audit/entries", headers=auth(), params={"limit": 1000}).json()
    verified = [e for e in entries["items"] if e["action"] == "audit:log:verified"]
    assert [e["actor"] for e in verified] == [f"person:{auditor.person_id}"]
    checked = int(re.search(r"\((\d+) entries", shown).group(1))  # type: ignore[union-attr]
    assert verified[0]["index"] + 1 <= checked <= size

    # An edited entry: the next verification says where.
    with rt.store.write() as conn:
        conn.execute(text("UPDATE audit_entries SET actor = 'someone-else' WHERE idx = 1"))
    fake.advance(minutes=5)
    page = watcher.get("/dashboard").text
    assert "Intact" in page  # the last verification, until the next one
    again = watcher.post("/dashboard/audit/verify", data={"csrf": _field(page, "csrf")})
    assert again.status_code == 200  # followed to the dashboard
    shown = again.text[again.text.index('data-figure="verification"') :]
    shown = shown[: shown.index("</p>")]
    assert "<strong>Not intact</strong>: entry 1: " in shown
    assert 'class="bad"' in again.text[again.text.index("<h3>Last verification</h3>") :]


def test_one_verification_at_a_time(ready: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second "verify now" while this process verifies the log is told so, and starts
    nothing (no second read of the whole log, no second record)."""
    fake = install_clock(monkeypatch)
    rt = runtime_of(ready)
    auditor = enrol(rt.people, fake, email="audit@example.com", role=PersonRole.AUDITOR)
    watcher = visitor(ready)
    assert _sign_in(watcher, auditor.email, auditor.secret, fake) == 303
    csrf = _field(watcher.get("/dashboard").text, "csrf")
    assert verify._running.acquire(blocking=False)  # a verification under way
    try:
        busy = watcher.post("/dashboard/audit/verify", data={"csrf": csrf})
    finally:
        verify._running.release()
    assert busy.status_code == 409
    assert "The audit log is being verified" in busy.text
    with rt.store.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_verifications")).scalar_one() == 0
    done = watcher.post("/dashboard/audit/verify", data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
