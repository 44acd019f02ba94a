"""Acting on a request from the backlog when it waits for downstream systems, through HTTP on
both back-ends, the delivery worker driven by the test."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from consentry.people.models import PersonRole
from tests.conftest import auth
from tests.consent.helpers import install_clock
from tests.delivery.receiver import receiver
from tests.dsr.conftest import email, grant, request, run, runtime_of
from tests.dsr.recipients.conftest import VISIT, add, delivered, settings, system
from tests.people.helpers import enrol
from tests.web.test_portal import visitor
from tests.web.test_staff import _field, _sign_in

__all__ = ["settings"]


def test_acknowledging_for_a_system_from_the_backlog(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An erasure waits for a system with no rights endpoint: its row offers the
    acknowledgement for that system, and acknowledging from the page completes it."""
    assert ready.put("/v1/schemas/visit", headers=auth(), json=VISIT).status_code == 201
    subject = email("ida")
    grant(ready, subject, "analytics")
    with receiver() as hook:
        add(ready, "paper", system(hook.url))
        delivered(ready, hook, subject)
        rid = request(
            ready,
            {
                "type": "erasure",
                "subject": subject,
                "jurisdiction": "EU",
                "verification": {"method": "id card", "level": "high"},
            },
        )["request_id"]
        run(ready)
    assert ready.get(f"/v1/requests/{rid}", headers=auth()).json()["status"] == (
        "awaiting_downstream"
    )
    # The people's clock (TOTP steps) from here: the delivery above ran on the real one.
    fake = install_clock(monkeypatch)
    people = runtime_of(ready).people
    dpo = enrol(people, fake, email="dpo@example.com", role=PersonRole.DPO)
    auditor = enrol(people, fake, email="audit@example.com", role=PersonRole.AUDITOR)

    watcher = visitor(ready)
    assert _sign_in(watcher, auditor.email, auditor.secret, fake) == 303
    assert "/dashboard/requests/acknowledge" not in watcher.get("/dashboard").text

    officer = visitor(ready)
    assert _sign_in(officer, dpo.email, dpo.secret, fake) == 303
    page = officer.get("/dashboard").text
    row = page[page.index(f'id="request-{rid}"') :]
    row = row[: row.index("</tr>")]
    assert re.findall(r'name="system_id" value="([^"]+)"', row) == ["paper"]
    csrf = _field(page, "csrf")
    for system_id, status in (("", 422), ("crm", 409)):
        wrong = officer.post(
            "/dashboard/requests/acknowledge",
            data={"csrf": csrf, "request_id": rid, "system_id": system_id},
        )
        assert wrong.status_code == status, wrong.text
    done = officer.post(
        "/dashboard/requests/acknowledge",
        data={"csrf": csrf, "request_id": rid, "system_id": "paper"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    got = ready.get(f"/v1/requests/{rid}", headers=auth()).json()
    assert got["status"] == "completed"
    assert [d["system_id"] for d in got["downstream"] if d["acknowledged_at"]] == ["paper"]
    entries = ready.get("/v1/audit/entries", headers=auth(), params={"limit": 1000}).json()
    assert any(
        e["action"] == "request:downstream:acknowledged" and e["actor"] == f"person:{dpo.person_id}"
        for e in entries["items"]
    )
    assert f'id="request-{rid}"' not in officer.get("/dashboard").text
