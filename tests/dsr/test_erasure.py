"""Erasure through the HTTP API on both back-ends: effective at once, retained items listed,
rows gone, tombstones, nothing of the person left in the data directory's files."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry import clock
from consentry.app import create_app
from consentry.dsr import erasure as erasure_module
from consentry.settings import Settings
from consentry.storage.schema import consent_ledger, events, subjects
from consentry.storage.schema import retained as retained_table
from tests.conftest import auth
from tests.consent.helpers import install_clock
from tests.consent.test_gpc_tcf import scenario
from tests.dsr.conftest import check, email, erase, grant, request, run, runtime_of, send
from tests.http.test_conventions import assert_problem

MARKER = "zebra-lasagne-8471"
SECRET_TEXT = "my parcel to 12 Quillfeather Lane never came"


@pytest.fixture(params=("env", "pkcs11"))
def key_source(request: pytest.FixtureRequest) -> str:
    """Erasure runs with each key source: CONSENTRY_MASTER_KEY and a PKCS#11 token."""
    return str(request.param)


def _scan(data_dir: Path, needles: list[bytes]) -> list[tuple[str, bytes]]:
    found = []
    for path in data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            found += [(path.name, n) for n in needles if n in content]
    return found


def test_erasure_end_to_end(ready: TestClient, settings: Settings) -> None:
    subject = email("erin")
    subject_id = grant(ready, subject, "analytics", "personalization")
    sent = send(ready, subject, 20, "e", topic=MARKER, message=SECRET_TEXT, card="4111")
    assert sent["accepted"] == 20
    other = email("olaf")
    grant(ready, other, "analytics")
    send(ready, other, 3, "o", topic="kept-for-olaf")
    needles = [b"erin@example.com", MARKER.encode(), SECRET_TEXT.encode()]
    if settings.db == "":
        runtime_of(ready).store.checkpoint()
        # The marker is stored in clear while the person is a customer: the scan can fail.
        assert any(n == MARKER.encode() for _, n in _scan(settings.data_dir, needles))

    body = {"type": "erasure", "subject": subject, "jurisdiction": "EU"}
    created = request(ready, body)
    assert created["status"] == "received"
    assert "subject_id" not in created  # nothing disclosed before verification
    assert check(ready, subject) == "granted"  # nothing destroyed either

    resp = ready.post(
        f"/v1/requests/{created['request_id']}/verify",
        headers=auth(),
        json={"method": "id_document", "level": "high"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "in_progress"
    assert check(ready, {"subject_id": subject_id}) == "subject_erased"
    refused = send(ready, {"subject_id": subject_id}, 1, "late", topic="x")
    assert refused["results"][0]["code"] == "subject_erased"

    assert run(ready)["advanced"] >= 1
    done = ready.get(f"/v1/requests/{created['request_id']}", headers=auth()).json()
    assert done["status"] == "completed"
    assert done["subject_found"] is True
    result = ready.get(f"/v1/requests/{created['request_id']}/result", headers=auth()).json()
    proof = [r for r in result["retained"] if r["item"] == "consent_proof"]
    assert proof
    assert proof[0]["ground"] == "art17_3_e"

    # The same person met again is refused until they consent anew.
    again = send(ready, subject, 1, "again", topic="x")
    assert again["results"][0]["code"] == "subject_erased"
    assert check(ready, subject) == "subject_erased"
    assert_problem(
        ready.post(
            "/v1/consents",
            headers=auth(),
            json={
                "subject": {"subject_id": subject_id},
                "purposes": {},
                "source": "web",
                "gpc": True,
            },
        ),
        410,
        "subject_erased",
    )
    # Someone else is untouched.
    assert check(ready, other) == "granted"

    if settings.db == "":
        assert _scan(settings.data_dir, needles) == []

    grant(ready, subject, "analytics")
    assert check(ready, subject) == "granted"
    assert send(ready, subject, 1, "back", topic="x")["accepted"] == 1


def test_erasure_retains_legal_obligation_events(ready: TestClient) -> None:
    subject = email("lena")
    grant(ready, subject, "analytics")
    assert send(ready, subject, 2, "l", topic="invoice")["accepted"] == 2
    created = request(
        ready,
        {
            "type": "erasure",
            "subject": subject,
            "jurisdiction": "US-CA",
            "verification": {"method": "account_login", "level": "high"},
        },
    )
    assert created["acknowledge_by"]
    run(ready)
    result = ready.get(f"/v1/requests/{created['request_id']}/result", headers=auth()).json()
    grounds = {(r["item"], r["ground"]) for r in result["retained"]}
    # legal_compliance (legal_obligation) events stay, under the CCPA paragraph for US-CA.
    assert ("event", "1798.105(d)(8)") in grounds
    assert ("consent_proof", "1798.105(d)(8)") in grounds


def test_retention_counts_from_receipt_when_occurred_at_is_later(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """API.md, Retention: retention runs from the earlier of `occurred_at` and receipt. An
    event dated 4 minutes ahead (a client clock running fast) is kept for its legal obligation
    until 3650 days after it was received, not after the time it claims."""
    fake = install_clock(monkeypatch)
    subject = email("rhea")
    grant(ready, subject, "analytics")
    received = fake()
    ahead = {
        "event_id": "rhea-ahead",
        "event_type": "chat",
        "occurred_at": clock.rfc3339(received + timedelta(minutes=4)),
        "subject": subject,
        "properties": {"topic": "invoice"},
    }
    resp = ready.post("/v1/events", headers=auth(), json={"events": [ahead]})
    assert resp.json()["results"][0]["status"] == "accepted", resp.text
    request_id = erase(ready, subject)
    run(ready)
    result = ready.get(f"/v1/requests/{request_id}/result", headers=auth()).json()
    kept = {r["item"]: r for r in result["retained"]}
    assert _at(kept["event"]["until"]) == received + timedelta(days=3650)


def test_a_request_survives_a_restart(ready: TestClient, settings: Settings) -> None:
    subject = email("rita")
    grant(ready, subject, "analytics")
    send(ready, subject, 5, "r", topic=MARKER)
    created = request(
        ready,
        {
            "type": "erasure",
            "subject": subject,
            "jurisdiction": "EU",
            "verification": {"method": "id_document", "level": "high"},
        },
    )
    assert created["status"] == "in_progress"
    ready.__exit__(None, None, None)  # the server stops between shredding and deleting
    with TestClient(create_app(settings)) as restarted:
        assert run(restarted)["advanced"] >= 1
        done = restarted.get(f"/v1/requests/{created['request_id']}", headers=auth()).json()
        assert done["status"] == "completed"
        assert done["step"] == "done"


ORDER = {
    "purposes": ["service_delivery"],
    "fields": {"sku": {"type": "string", "category": "system.operations", "treatment": "keep"}},
}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_retained_items_name_their_ground_obligation_and_end(ready: TestClient) -> None:
    """art17_3_b names the legal obligation; contract_ongoing says until when; identities
    stay only for a purpose that processed the person's data (an order: a contract)."""
    assert ready.put("/v1/schemas/order", headers=auth(), json=ORDER).status_code == 201
    nora, noel = email("nora"), email("noel")
    for subject in (nora, noel):
        grant(ready, subject, "analytics")
        assert (
            send(ready, subject, 2, subject["identities"][0]["value"], topic="invoice")["accepted"]
            == 2
        )
    order = {
        "event_id": "o1",
        "event_type": "order",
        "occurred_at": "2026-11-20T10:00:00Z",
        "subject": nora,
        "properties": {"sku": "A-1"},
    }
    resp = ready.post("/v1/events", headers=auth(), json={"events": [order]})
    assert resp.json()["results"][0]["purposes"] == ["service_delivery"], resp.text
    erased = {name: erase(ready, s) for name, s in (("nora", nora), ("noel", noel))}
    run(ready)
    now = datetime.now(UTC)

    def retained(name: str) -> dict[str, dict[str, Any]]:
        url = f"/v1/requests/{erased[name]}/result"
        items = ready.get(url, headers=auth()).json()["retained"]
        return {r["item"]: r for r in items}

    kept = retained("nora")
    assert set(kept) == {
        "consent_proof",
        "event",
        "identities:legal_compliance",
        "identities:service_delivery",
    }
    assert kept["consent_proof"]["ground"] == "art17_3_e"
    assert abs(_at(kept["consent_proof"]["until"]) - (now + timedelta(days=1095))) < timedelta(
        minutes=5
    )
    event = kept["event"]
    assert (event["ground"], event["purpose"], event["count"]) == (
        "art17_3_b",
        "legal_compliance",
        2,
    )
    assert event["obligation"] == "Meeting a legal obligation."
    # Kept until the legal obligation's retention ends, counted from the event.
    assert _at(event["until"]) == datetime(2026, 11, 20, 10, tzinfo=UTC) + timedelta(days=3650)
    ids = kept["identities:legal_compliance"]
    assert (ids["ground"], ids["obligation"]) == ("art17_3_b", "Meeting a legal obligation.")
    contract = kept["identities:service_delivery"]
    assert (contract["ground"], contract["purpose"]) == ("contract_ongoing", "service_delivery")
    assert "obligation" not in contract
    assert abs(_at(contract["until"]) - (now + timedelta(days=2190))) < timedelta(minutes=5)
    # Noel never ordered anything: no contract keeps who he is.
    assert set(retained("noel")) == {"consent_proof", "event", "identities:legal_compliance"}

    # What is kept opens under the retention key only, and holds what its item says.
    rt = runtime_of(ready)
    with rt.store.read() as conn:
        rows = conn.execute(
            select(retained_table)
            .where(retained_table.c.request_id == erased["nora"])
            .order_by(retained_table.c.retained_id)
        ).all()
    opened = {
        row.item: json.loads(
            rt.erasure.retention.open(
                bytes(row.sealed), f"consentry:retained:{erased['nora']}:{n}".encode()
            )
        )
        for n, row in enumerate(rows)
    }
    assert opened["identities:service_delivery"]["identities"] == [
        {"type": "email", "value": "nora@example.com"}
    ]
    assert b"nora@example.com" not in b"".join(bytes(r.sealed) for r in rows)


PREFS = {
    "purposes": ["analytics", "personalization"],
    "fields": {
        "topic": {"type": "string", "category": "system.operations", "treatment": "keep"},
        "message": {"type": "string", "category": "user.content", "treatment": "keep"},
        "offer": {
            "type": "string",
            "category": "system.operations",
            "treatment": "keep",
            "purposes": ["personalization"],
        },
        "note": {
            "type": "string",
            "category": "user.content",
            "treatment": "keep",
            "purposes": ["personalization"],
        },
    },
}


def test_withdrawal_purge_deletes_and_narrows(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event stored only for the withdrawn purpose is deleted; one stored for another
    purpose too loses the purpose and the fields (clear and sealed) that served only it."""
    assert ready.put("/v1/schemas/prefs", headers=auth(), json=PREFS).status_code == 201
    subject = email("wanda")
    props = {"topic": "t", "message": "hello there", "offer": "spring", "note": "likes jazz"}

    def prefs(event_id: str) -> list[str]:
        event = {
            "event_id": event_id,
            "event_type": "prefs",
            "occurred_at": "2026-11-20T10:00:00Z",
            "subject": subject,
            "properties": props,
        }
        resp = ready.post("/v1/events", headers=auth(), json={"events": [event]})
        assert resp.status_code == 200, resp.text
        return list(resp.json()["results"][0]["purposes"])

    subject_id = grant(ready, subject, "personalization")
    assert prefs("only") == ["personalization"]
    grant(ready, subject, "analytics")
    assert prefs("both") == ["analytics", "personalization"]
    resp = ready.post(
        "/v1/consents/withdraw",
        headers=auth(),
        json={"subject": subject, "purposes": ["personalization"]},
    )
    assert resp.status_code == 200, resp.text
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + erasure_module.SETTLE)
    assert run(ready)["withdrawals"] == {"withdrawals": 1, "deleted": 1, "narrowed": 1}

    rt = runtime_of(ready)
    with rt.store.read() as conn:
        rows = {
            r.event_id: r
            for r in conn.execute(select(events).where(events.c.subject_id == subject_id))
        }
        sealer = rt.subject_keys.sealer(conn, subject_id)
    assert set(rows) == {"both"}  # the row itself is gone, not hidden
    both = rows["both"]
    assert json.loads(both.purposes) == ["analytics"]
    assert json.loads(both.properties) == {"topic": "t"}
    assert json.loads(sealer.open(bytes(both.sealed), b"consentry:event:both")) == {
        "message": "hello there"
    }
    assert both.field_purposes is None
    entries = ready.get(
        f"/v1/audit/entries?subject_id={subject_id}&limit=1000", headers=auth()
    ).json()["items"]
    purged = [e for e in entries if e["action"] == "events:withdrawal:purged"]
    assert [(e["details"]["deleted"], e["details"]["narrowed"]) for e in purged] == [(1, 1)]


def test_erasure_forgets_the_tc_string_vendor_consents(ready: TestClient) -> None:
    """The vendor consents of the subject's latest TC string are linked to the person: an
    erasure clears them from the subject's row with the rest of its consent attributes."""
    subject = email("tess")
    resp = ready.post(
        "/v1/consents",
        headers=auth(),
        json={
            "subject": subject,
            "source": "web",
            "notice": {"id": "main", "version": "1"},
            "tcf": scenario("publisher_widens")["tcString"],
        },
    )
    assert resp.status_code == 200, resp.text
    subject_id = resp.json()["subject_id"]
    store = runtime_of(ready).store
    row = select(subjects.c.tcf_vendors).where(subjects.c.subject_id == subject_id)
    with store.read() as conn:
        assert conn.execute(row).scalar_one() == "3"
    created = request(ready, {"type": "erasure", "subject": subject, "jurisdiction": "EU"})
    verified = ready.post(
        f"/v1/requests/{created['request_id']}/verify",
        headers=auth(),
        json={"method": "id_document", "level": "high"},
    )
    assert verified.status_code == 200, verified.text
    with store.read() as conn:
        assert conn.execute(row).scalar_one() is None


def test_an_erased_subjects_categories_report_answers_as_its_data_report(
    ready: TestClient,
) -> None:
    subject = email("enzo")
    subject_id = grant(ready, subject, "analytics")
    send(ready, subject, 1, "z", topic="t", message=SECRET_TEXT)
    high = {"method": "id_document", "level": "high"}
    erased = {"type": "erasure", "subject": subject, "jurisdiction": "EU", "verification": high}
    request(ready, erased)
    run(ready)
    for scope in ("data", "categories"):
        rid = request(
            ready,
            {
                "type": "access",
                "subject": {"subject_id": subject_id},
                "jurisdiction": "EU",
                "scope": scope,
                "verification": high,
            },
        )["request_id"]
        run(ready)
        resp = ready.get(f"/v1/requests/{rid}/result", headers=auth())
        # Its key is gone: neither report is built from what the erasure retained.
        assert_problem(resp, 410, "subject_key_destroyed")
        assert SECRET_TEXT not in resp.text


def test_erasure_strips_the_ledgers_evidence_and_keeps_its_entries(ready: TestClient) -> None:
    """The ledger is append-only: an erasure keeps its entries (what was agreed, when) and
    strips the evidence they held about the person."""
    subject = email("ines")
    subject_id = grant(ready, subject, "analytics", "marketing")
    rt = runtime_of(ready)
    with rt.store.read() as conn:
        before = conn.execute(
            select(consent_ledger.c.evidence_ct).where(consent_ledger.c.subject_id == subject_id)
        ).all()
    assert before
    assert all(row.evidence_ct is not None for row in before)
    erase(ready, subject)
    run(ready)
    with rt.store.read() as conn:
        after = conn.execute(
            select(consent_ledger.c.evidence_ct).where(consent_ledger.c.subject_id == subject_id)
        ).all()
    assert len(after) >= len(before)
    assert all(row.evidence_ct is None for row in after)
