"""GET /v1/subjects/{id}/consent and /history (API.md "Consent"), and the audit of each change."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry.app import create_app
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage.schema import metadata
from tests.conftest import auth
from tests.consent.helpers import (
    audit_entries,
    consent_state,
    history,
    publish,
    record,
    withdraw,
)

EMAIL = "Maria.Example@Example.com"
EVIDENCE = {
    "parental_authorization": {"parent": "lucas.example@example.com", "phone": "+44 7700 900461"},
    "ip": "192.0.2.44",
}
NEEDLES = ("maria.example", "lucas.example", "7700 900461", "7700900461", "192.0.2.44")
HISTORY_ITEM = {
    "entry_id",
    "version",
    "purpose",
    "state",
    "source",
    "at",
    "expires_at",
    "notice",
    "jurisdiction",
    "explicit",
    "actor",
    "evidence",
}


def scenario(client: TestClient) -> str:
    """Seven ledger changes for one fictional child: grants, a denial, withdrawals."""
    publish(client)
    subject_id = record(
        client,
        EMAIL,
        {"analytics": "granted", "marketing": "granted"},
        age_band="13_15",
        jurisdiction="UK",
        evidence=EVIDENCE,
    )["subject_id"]
    record(client, EMAIL, {"personalization": "denied"}, source="app", notice=None)
    withdraw(client, EMAIL, ["marketing"], source="email")
    record(client, EMAIL, {"location": "granted"}, evidence=EVIDENCE)
    withdraw(client, EMAIL, ["analytics", "location"])
    return str(subject_id)


def test_consent_state_is_the_latest_entry_per_purpose(client: TestClient) -> None:
    """`GET /v1/subjects/{id}/consent`: the subject's current state per purpose, with its
    version and the attributes decisions depend on (jurisdiction, age band, GPC)."""
    subject_id = scenario(client)
    state = consent_state(client, subject_id)
    assert set(state) == {
        "subject_id",
        "version",
        "jurisdiction",
        "age_band",
        "gpc",
        "sensitive_limited",
        "purposes",
    }
    assert state["sensitive_limited"] is False
    assert state["subject_id"] == subject_id
    assert (state["jurisdiction"], state["age_band"], state["gpc"]) == ("UK", "13_15", False)
    states = {key: (p["state"], p["source"]) for key, p in state["purposes"].items()}
    assert states == {
        "analytics": ("withdrawn", "web"),
        "marketing": ("withdrawn", "email"),
        "personalization": ("denied", "app"),
        "location": ("withdrawn", "web"),
    }
    entries = history(client, subject_id)
    assert state["version"] == entries[-1]["version"]
    for key, item in state["purposes"].items():
        last = [e for e in entries if e["purpose"] == key][-1]
        assert item["updated_at"] == last["at"]
        assert item["expires_at"] is None


def test_history_lists_every_entry_with_its_evidence(client: TestClient) -> None:
    """`GET /v1/subjects/{id}/consent/history`: every ledger entry, oldest first, with the
    notice hash and the evidence returned to the reader."""
    subject_id = scenario(client)
    notice_sha = publish(client)["sha256"]
    entries = history(client, subject_id)
    assert all(set(e) == HISTORY_ITEM for e in entries)
    assert [(e["purpose"], e["state"]) for e in entries] == [
        ("analytics", "granted"),
        ("marketing", "granted"),
        ("personalization", "denied"),
        ("marketing", "withdrawn"),
        ("location", "granted"),
        ("analytics", "withdrawn"),
        ("location", "withdrawn"),
    ]
    versions = [e["version"] for e in entries]
    assert versions == sorted(set(versions))
    assert len({e["entry_id"] for e in entries}) == len(entries)
    grants = [e for e in entries if e["state"] == "granted"]
    for entry in grants:
        assert entry["evidence"] == EVIDENCE
        assert entry["notice"] == {"id": "privacy", "version": "1", "sha256": notice_sha}
        assert entry["expires_at"] is not None
    for entry in entries:
        assert entry["jurisdiction"] == "UK"
        assert entry["actor"]
        if entry["state"] != "granted":
            assert entry["expires_at"] is None
            assert entry["explicit"] is False
    assert entries[2]["evidence"] is None
    assert entries[3]["notice"] is None


def test_history_pages_with_next(client: TestClient) -> None:
    """Lists come as `{"items": [...], "next": <cursor or null>}`."""
    subject_id = scenario(client)
    everything = history(client, subject_id)
    seen = []
    params: dict[str, object] = {"limit": 3}
    pages = 0
    while True:
        url = f"/v1/subjects/{subject_id}/consent/history"
        body = client.get(url, headers=auth(), params=params).json()
        assert set(body) == {"items", "next"}
        assert len(body["items"]) <= 3
        seen += body["items"]
        pages += 1
        if body["next"] is None:
            break
        params = {"limit": 3, "cursor": body["next"]}
    assert pages == 3
    assert seen == everything
    assert history(client, subject_id, limit=7) == everything


def test_every_ledger_change_is_audited_without_personal_data(client: TestClient) -> None:
    """STYLE.md: "Every state change is audited by name": each ledger change is one
    `consent:granted|denied|withdrawn` entry with the subject id, and no personal data in
    clear."""
    subject_id = scenario(client)
    entries = history(client, subject_id)
    audited = [e for e in audit_entries(client, subject_id) if e["action"].startswith("consent:")]
    assert [(a["action"], a["details"]["purpose"], a["details"]["version"]) for a in audited] == [
        (f"consent:{e['state']}", e["purpose"], e["version"]) for e in entries
    ]
    for entry, audit in zip(entries, audited, strict=True):
        assert audit["subject_id"] == subject_id
        assert audit["details"]["entry_id"] == entry["entry_id"]
        assert audit["details"]["source"] == entry["source"]
    everything = client.get("/v1/audit/entries", headers=auth(), params={"limit": 1000}).text
    for needle in NEEDLES:
        assert needle not in everything.lower()


def test_evidence_and_identities_are_not_stored_in_clear(settings: Settings) -> None:
    """DESIGN.md: "Nothing personal is ever written to disk in clear text": no ledger or
    audit column, and on SQLite no byte of the database files, holds the evidence or the
    e-mail address."""
    with TestClient(create_app(settings)) as client:
        scenario(client)
    runtime = Runtime(settings)
    try:
        with runtime.store.read() as conn:
            for table in metadata.sorted_tables:
                rows = conn.execute(select(table)).all()
                text = json.dumps([list(map(repr, row)) for row in rows]).lower()
                for needle in NEEDLES:
                    assert needle not in text, (table.name, needle)
    finally:
        runtime.close()
    if not settings.db:
        for path in Path(settings.data_dir).iterdir():
            if path.is_file():
                data = path.read_bytes().lower()
                for needle in NEEDLES:
                    assert needle.encode() not in data, (path.name, needle)
