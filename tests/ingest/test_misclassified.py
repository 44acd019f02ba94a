"""Personal data in a field declared non-personal (API.md, Governance): the core redacts what
the recognizers find before anything is stored or delivered; each value is counted per event
type and field (in /metrics and on the dashboard) and audited by count, never by value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry.app import create_app
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage.schema import events
from consentry.web import dashboard
from tests.conftest import auth
from tests.ingest.test_pipeline import event, grant, send, who, with_page_views
from tests.web.test_dashboard import render

EMAIL = "ana.leak@example.com"
PHONE = "+44 7700 900417"


def _stored(client: TestClient) -> dict[str, dict[str, Any]]:
    rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with rt.store.read() as conn:
        return {r.event_id: json.loads(r.properties) for r in conn.execute(select(events))}


def _metric(client: TestClient) -> dict[str, float]:
    text = client.get("/metrics", headers=auth()).text
    found = {}
    for line in text.splitlines():
        if line.startswith("consentry_misclassified_values_total{"):
            labels, value = line.rsplit(" ", 1)
            found[labels[len("consentry_misclassified_values_total") :]] = float(value)
    return found


def test_personal_data_in_a_non_personal_field_is_redacted_counted_and_audited(
    ready: TestClient,
) -> None:
    grant(ready, who("ana"), "analytics")
    # The first batch meets a subject the process has not decided for (shaped in the
    # transaction), the second one it has (shaped before it): both paths redact.
    for batch in (["m1", "m2", "m3"], ["m4", "m5"]):
        results = send(
            ready,
            [
                event(
                    n,
                    who("ana"),
                    properties={"url": f"/u/{EMAIL}?call={PHONE}" if n != "m3" else "/home"},
                )
                for n in batch
            ],
        )
        assert [r["status"] for r in results] == ["accepted"] * len(batch)
    stored = _stored(ready)
    assert stored["m1"]["url"] == "/u/<EMAIL>?call=<PHONE>"
    assert stored["m5"]["url"] == "/u/<EMAIL>?call=<PHONE>"
    assert stored["m3"]["url"] == "/home"
    # A read shows the redacted value.
    shown = ready.get("/v1/events", headers=auth(), params={"purpose": "analytics"}).json()
    assert {e["properties"]["url"] for e in shown["items"]} == {"/u/<EMAIL>?call=<PHONE>", "/home"}

    assert _metric(ready) == {'{event_type="page_view",field="url"}': 4.0}
    entries = ready.get("/v1/audit/entries", headers=auth(), params={"limit": 1000}).json()
    found = [e for e in entries["items"] if e["action"] == "events:misclassified:redacted"]
    # One entry per batch that had any: two values in each.
    assert [e["details"] for e in found] == [
        {"fields": [{"event_type": "page_view", "field": "url", "values": 2}]}
    ] * 2
    assert EMAIL not in json.dumps(entries)
    assert "900417" not in json.dumps(entries)

    rt: Runtime = ready.app.state.runtime  # type: ignore[attr-defined]
    view = dashboard.view(rt)
    assert [(m["event_type"], m["field"], m["n"]) for m in view["misclassified"]] == [
        ("page_view", "url", 4)
    ]
    page = render(view)
    assert '<tr data-misclassified="page_view.url">' in page
    assert '<td class="bad">4</td>' in page


def test_a_refused_event_is_not_counted(ready: TestClient) -> None:
    """Only values that would have been stored count: an event without consent stores none."""
    results = send(ready, [event("r1", who("nobody"), properties={"url": f"/u/{EMAIL}"})])
    assert results[0]["status"] == "rejected"
    assert _metric(ready) == {}


def test_nothing_of_the_value_reaches_the_database_file(sqlite_settings: Settings) -> None:
    with TestClient(create_app(sqlite_settings)) as client:
        with_page_views(client)
        grant(client, who("ana"), "analytics")
        send(client, [event("f1", who("ana"), properties={"url": f"/u/{EMAIL}?t={PHONE}"})])
    data = b"".join(p.read_bytes() for p in Path(sqlite_settings.data_dir).glob("consentry.db*"))
    assert b"/u/<EMAIL>" in data  # the kept, non-personal rest of the value stays searchable
    for value in (EMAIL, PHONE, PHONE.replace(" ", "")):
        assert value.encode() not in data, value


def test_fields_declared_personal_or_treated_are_not_screened(ready: TestClient) -> None:
    """A personal field kept is sealed, a treated one treated: screening is for what would
    otherwise be kept in clear only, and a field declared personal is never counted."""
    schema = {
        "purposes": ["analytics"],
        "fields": {
            "contact": {"type": "string", "category": "user.contact.email", "treatment": "keep"},
            "note": {"type": "string", "category": "system.operations", "treatment": "drop"},
        },
    }
    assert ready.put("/v1/schemas/contact", headers=auth(), json=schema).status_code == 201
    grant(ready, who("bo"), "analytics")
    props = {"contact": EMAIL, "note": EMAIL}
    send(ready, [event("p1", who("bo"), event_type="contact", properties=props)])
    shown = ready.get("/v1/events", headers=auth(), params={"purpose": "analytics"}).json()
    assert [e["properties"] for e in shown["items"]] == [{"contact": EMAIL}]
    assert _metric(ready) == {}
