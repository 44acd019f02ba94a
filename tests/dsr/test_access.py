"""The access report (Art. 15) on both back-ends holds every field API.md lists: identities,
consent state and history with notice hashes, sources and evidence, events in clear with
their purposes, and per purpose its legal basis, retention, recipients with region and
safeguard, the source of the data, automated decisions; and the text of the rights. The
portable copy (Art. 20(1)) holds what the subject provided, processed on consent or contract."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry.settings import Settings
from tests.conftest import auth
from tests.delivery.receiver import receiver
from tests.dsr.conftest import NOTICE, grant, request, result, run, send
from tests.dsr.recipients.conftest import add, system, worker


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, dsr_poll_seconds=0, delivery_worker=False)


ADA = {
    "identities": [
        {"type": "email", "value": "Ada@Example.com"},
        {"type": "phone", "value": "+44 7700 900123"},
    ]
}


def report(client: TestClient) -> dict[str, Any]:
    rid = request(
        client,
        {
            "type": "access",
            "subject": ADA,
            "jurisdiction": "EU",
            "verification": {"method": "account_login", "level": "reasonable"},
        },
    )["request_id"]
    run(client)
    resp = client.get(f"/v1/requests/{rid}/result", headers=auth())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_every_art15_field(ready: TestClient) -> None:
    subject_id = grant(ready, ADA, "analytics", "personalization")
    denied = ready.post(
        "/v1/consents",
        headers=auth(),
        json={
            "subject": ADA,
            "purposes": {"marketing": "denied"},
            "source": "app",
            "notice": NOTICE,
            "evidence": {"screen": "settings"},
        },
    )
    assert denied.status_code == 200, denied.text
    with receiver() as hook:
        add(
            ready,
            "crm",
            system(hook.url, purposes=["analytics"], data_categories=["system.operations"]),
        )
        add(
            ready,
            "lake",
            system(
                hook.url,
                name="Data lake",
                purposes=["analytics", "personalization"],
                region="US",
                transfer_mechanism="scc",
                tia_ref="TIA-2026-04",
            ),
        )
        send(ready, ADA, 1, "a", topic="billing", message="my dog is called Rex", card="4111")
        send(ready, ADA, 1, "b", topic="offers", offer="spring")
        assert worker(ready).run_once() == 4
    out = report(ready)

    assert out["subject_id"] == subject_id
    assert out["identities"] == [
        {"type": "email", "value": "ada@example.com"},
        {"type": "phone", "value": "+447700900123"},
    ]
    notice_sha = hashlib.sha256(b"Notice.").hexdigest()
    consent = out["consent"]
    assert consent["analytics"]["state"] == "granted"
    assert consent["analytics"]["source"] == "web"
    assert consent["analytics"]["notice_sha256"] == notice_sha
    assert consent["marketing"]["state"] == "denied"
    assert consent["marketing"]["source"] == "app"
    history = out["consent_history"]
    assert [(e["purpose"], e["state"], e["source"]) for e in history] == [
        ("analytics", "granted", "web"),
        ("personalization", "granted", "web"),
        ("marketing", "denied", "app"),
    ]
    assert {e["notice"]["sha256"] for e in history} == {notice_sha}
    assert history[0]["evidence"] == {"ip": "192.0.2.10"}
    assert history[2]["evidence"] == {"screen": "settings"}

    events = {e["event_id"]: e for e in out["events"]}
    assert set(events) == {"a-0", "b-0"}
    # In clear: the sealed message opened, the token replaced by the card it stands for.
    assert events["a-0"]["properties"] == {
        "topic": "billing",
        "message": "my dog is called Rex",
        "card": "4111",
    }
    assert events["a-0"]["purposes"] == ["analytics", "personalization", "legal_compliance"]
    assert events["b-0"]["properties"] == {"topic": "offers", "offer": "spring"}
    assert events["b-0"]["occurred_at"].startswith("2026-11-20T10:00:00")

    analytics = out["purposes"]["analytics"]
    assert analytics["legal_basis"] == "consent"
    assert analytics["retention_days"] == 395
    assert analytics["source"] == "collected from you (app, web)"
    assert analytics["automated_decisions"] is False
    recipients = {r["system_id"]: r for r in analytics["recipients"]}
    assert set(recipients) == {"crm", "lake"}
    assert recipients["crm"]["region"] == "EU"
    assert recipients["crm"]["safeguard"] == "none needed: no transfer outside the exporter's area"
    lake = recipients["lake"]
    assert (lake["name"], lake["region"], lake["transfer_mechanism"]) == ("Data lake", "US", "scc")
    assert lake["safeguard"] == (
        "standard contractual clauses (Art. 46(2)(c)); transfer impact assessment TIA-2026-04"
    )
    assert [r["system_id"] for r in out["purposes"]["personalization"]["recipients"]] == ["lake"]
    legal = out["purposes"]["legal_compliance"]
    assert (legal["legal_basis"], legal["retention_days"]) == ("legal_obligation", 3650)
    assert legal["recipients"] == []
    assert out["automated_decisions"]["made"] is False
    for article in ("Art. 15", "Art. 16", "Art. 17", "Art. 18", "Art. 20", "Art. 21", "Art. 77"):
        assert article in out["rights"]


ORDER = {
    "purposes": ["service_delivery", "security"],
    "fields": {
        "item": {"type": "string", "category": "system.operations", "treatment": "keep"},
        "ref": {"type": "string", "category": "user.unique_id", "treatment": "pseudonymise"},
        "risk": {
            "type": "string",
            "category": "system.operations",
            "treatment": "keep",
            "purposes": ["security"],
        },
    },
}


def test_portability_holds_what_the_subject_provided_on_consent_or_contract(
    ready: TestClient,
) -> None:
    """Art. 20(1): an event stored only for a legal obligation is left out, as are a
    pseudonym we computed and a field kept only for a legitimate interest; the access report
    (Art. 15) still holds all of it."""
    assert ready.put("/v1/schemas/order", headers=auth(), json=ORDER).status_code == 201
    # Before any consent: stored for legal_compliance alone.
    send(ready, ADA, 1, "early", topic="billing", message="before consent")
    grant(ready, ADA, "analytics")
    send(ready, ADA, 1, "late", topic="billing", message="after consent")
    order = {
        "event_id": "o-1",
        "event_type": "order",
        "occurred_at": "2026-11-20T10:00:00Z",
        "subject": ADA,
        "properties": {"item": "tea", "ref": "ORD-77", "risk": "low"},
    }
    resp = ready.post("/v1/events", headers=auth(), json={"events": [order]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == 1, resp.text

    access = {e["event_id"]: e for e in json.loads(result(ready, ADA, "access"))["events"]}
    assert access["early-0"]["purposes"] == ["legal_compliance"]
    assert set(access["o-1"]["properties"]) == {"item", "ref", "risk"}

    portable = json.loads(result(ready, ADA, "portability"))
    events = {e["event_id"]: e for e in portable["events"]}
    assert set(events) == {"late-0", "o-1"}
    assert events["late-0"]["properties"] == {"topic": "billing", "message": "after consent"}
    assert events["o-1"]["properties"] == {"item": "tea"}
    assert "Art. 20(1)" in portable["provided"]
    assert portable["identities"][0] == {"type": "email", "value": "ada@example.com"}
    rows = list(csv.DictReader(io.StringIO(result(ready, ADA, "portability", "text/csv"))))
    assert [(r["event_id"], json.loads(r["properties"])) for r in rows] == [
        ("late-0", {"topic": "billing", "message": "after consent"}),
        ("o-1", {"item": "tea"}),
    ]
