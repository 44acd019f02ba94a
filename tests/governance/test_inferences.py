"""Model inferences (Art. 22) through the HTTP API on SQLite and PostgreSQL: decided against
consent like events, Art. 22(2) and 22(4) enforced, listed in the access report, contested and
reviewed, sealed under the subject's key and gone with an erasure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry import clock
from consentry.dsr import erasure as erasure_module
from consentry.errors import SubjectKeyDestroyed
from consentry.governance.inferences import content_aad
from consentry.settings import Settings
from consentry.storage.schema import inferences
from tests.conftest import auth
from tests.consent.helpers import install_clock
from tests.dsr.conftest import email, request, result, run, runtime_of
from tests.http.test_conventions import assert_problem

NOTICE = {"id": "models", "version": "1"}
# Fictional values that would give a person away if found in the database file.
OUTPUT_MARKER = "declined-quokka-5531"
SLICE_MARKER = "Quillfeather Lane 12"
PURPOSES: dict[str, dict[str, Any]] = {
    # Significant decisions on explicit consent (Art. 22(2)(c)).
    "loan_offer": {
        "legal_basis": "consent",
        "automated_decision_basis": "explicit_consent",
        "description": "A scoring model weighs your repayments and income to set an offer.",
    },
    # Necessary for the contract (Art. 22(2)(a)).
    "credit_check": {"legal_basis": "contract", "automated_decision_basis": "contract"},
    # Special-category data on explicit consent: Art. 9(2)(a), allowed by Art. 22(4).
    "care": {
        "legal_basis": "consent",
        "special_category_condition": "a",
        "automated_decision_basis": "explicit_consent",
    },
    # Special-category data for health care (Art. 9(2)(h)): not a ground Art. 22(4) allows.
    "triage": {
        "legal_basis": "contract",
        "special_category_condition": "h",
        "automated_decision_basis": "contract",
    },
    # No Art. 9(2) condition: special-category inputs are not for it.
    "insight": {"legal_basis": "consent"},
}
CHECKUP: dict[str, Any] = {
    "purposes": ["care", "insight"],
    "fields": {
        "condition": {
            "type": "string",
            "category": "user.health_and_medical",
            "treatment": "keep",
        },
        "step_count": {"type": "integer", "category": "system.operations", "treatment": "keep"},
    },
}


@pytest.fixture
def ready(client: TestClient) -> TestClient:
    for key, definition in PURPOSES.items():
        body = {"name": key.replace("_", " ").title(), "retention_days": 365} | definition
        resp = client.put(f"/v1/purposes/{key}", headers=auth(), json=body)
        assert resp.status_code == 201, resp.text
    resp = client.put(
        "/v1/notices/models",
        headers=auth(),
        json={"version": "1", "text": "Models.", "purposes": ["analytics", *PURPOSES]},
    )
    assert resp.status_code == 201, resp.text
    assert client.put("/v1/schemas/checkup", headers=auth(), json=CHECKUP).status_code == 201
    return client


def grant(
    client: TestClient, subject: dict[str, Any], *purposes: str, explicit: bool = False
) -> str:
    body: dict[str, Any] = {
        "subject": subject,
        "purposes": dict.fromkeys(purposes, "granted"),
        "source": "web",
        "notice": NOTICE,
    }
    if explicit:
        body |= {"explicit": True, "evidence": {"checkbox": "explicit-consent-v1"}}
    resp = client.post("/v1/consents", headers=auth(), json=body)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["subject_id"])


def infer(
    client: TestClient,
    subject: dict[str, Any],
    purpose: str,
    *,
    significant: bool = True,
    automated: bool = True,
    event_ids: list[str] | None = None,
) -> Any:
    body = {
        "model": "risk-gbm",
        "version": "2026.11.3",
        "purpose": purpose,
        "subject": subject,
        "inputs": {"event_ids": event_ids or [], "slice": {"address": SLICE_MARKER}},
        "output": {"decision": OUTPUT_MARKER, "score": 0.31},
        "automated_decision": automated,
        "significant_effect": significant,
    }
    return client.post("/v1/inferences", headers=auth(), json=body)


def test_model_and_version_are_identifiers_not_free_text(ready: TestClient) -> None:
    """They are stored in clear and in the audit log, so they may not carry a person's name or
    address: a value that is not an identifier is refused, and not repeated."""
    subject = email("otto")
    grant(ready, subject, "analytics")
    body = {
        "purpose": "analytics",
        "subject": subject,
        "output": 1,
        "automated_decision": False,
        "significant_effect": False,
    }
    for model, version in (("risk model for otto@example.com", "1"), ("risk", "v1 for Otto")):
        resp = ready.post(
            "/v1/inferences", headers=auth(), json=body | {"model": model, "version": version}
        )
        assert_problem(resp, 422, "invalid_request")
        assert "otto" not in resp.text.lower()
    ok = body | {"model": "openai/gpt-4o-mini@2026-11", "version": "2026.11.3+build.7"}
    assert ready.post("/v1/inferences", headers=auth(), json=ok).status_code == 201


def test_refused_without_consent_and_after_a_withdrawal(ready: TestClient) -> None:
    """As an event would be: never asked, then granted, then withdrawn."""
    subject = email("nadia")
    assert_problem(infer(ready, subject, "analytics", significant=False), 409, "no_consent")
    grant(ready, subject, "analytics")
    resp = infer(ready, subject, "analytics", significant=False)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["inference_id"].startswith("inf_")
    assert (created["model"], created["version"], created["purpose"]) == (
        "risk-gbm",
        "2026.11.3",
        "analytics",
    )
    assert created["output"] == {"decision": OUTPUT_MARKER, "score": 0.31}
    assert created["status"] == "recorded"
    withdrawn = ready.post(
        "/v1/consents/withdraw",
        headers=auth(),
        json={"subject": subject, "purposes": ["analytics"], "source": "web"},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert_problem(infer(ready, subject, "analytics", significant=False), 409, "no_consent")
    assert_problem(infer(ready, subject, "no_such_purpose"), 422, "unknown_purpose")


def test_a_significant_decision_needs_the_purposes_basis(ready: TestClient) -> None:
    """Art. 22(2): none on analytics (no basis); on contract without any consent."""
    subject = email("omar")
    grant(ready, subject, "analytics")
    assert_problem(infer(ready, subject, "analytics"), 409, "automated_decision_basis_required")
    # An automated decision without significant effect needs no basis.
    assert infer(ready, subject, "analytics", significant=False).status_code == 201
    resp = infer(ready, subject, "credit_check")
    assert resp.status_code == 201, resp.text
    assert resp.json()["significant_effect"] is True


def test_explicit_consent_basis_needs_an_explicit_grant(ready: TestClient) -> None:
    subject = email("priya")
    grant(ready, subject, "loan_offer")
    assert_problem(infer(ready, subject, "loan_offer"), 409, "explicit_grant_required")
    # An inference that decides nothing significant rests on the grant alone.
    assert infer(ready, subject, "loan_offer", significant=False).status_code == 201
    grant(ready, subject, "loan_offer", explicit=True)
    assert infer(ready, subject, "loan_offer").status_code == 201


def test_special_category_inputs_only_under_art_9_2_a_or_g(ready: TestClient) -> None:
    """Art. 9 for every inference, Art. 22(4) for significant decisions; an input event of
    another subject is refused as one stored for nobody."""
    subject = email("quentin")
    grant(ready, subject, "care", "insight", explicit=True)
    sent = send_checkup(ready, subject, "chk-1")
    assert sent["results"][0]["status"] == "accepted", sent
    # `insight` has no Art. 9(2) condition: the health value may not feed it.
    resp = infer(ready, subject, "insight", significant=False, event_ids=["chk-1"])
    assert_problem(resp, 409, "special_category_not_allowed")
    # Without the special-category input, insight may infer.
    assert infer(ready, subject, "insight", significant=False).status_code == 201
    # `care` rests on explicit consent (condition a): allowed, even significant.
    resp = infer(ready, subject, "care", event_ids=["chk-1"])
    assert resp.status_code == 201, resp.text
    assert resp.json()["special_inputs"] is True
    # `triage` (condition h) processes such data, but may not decide on it by automated means.
    assert_problem(infer(ready, subject, "triage"), 409, "special_category_decision_refused")
    assert infer(ready, subject, "triage", significant=False).status_code == 201

    other = email("rosa")
    grant(ready, other, "care", explicit=True)
    resp = infer(ready, other, "care", event_ids=["chk-1"])
    assert_problem(resp, 422, "unknown_input_event")
    assert_problem(infer(ready, other, "care", event_ids=["nope"]), 422, "unknown_input_event")


def send_checkup(client: TestClient, subject: dict[str, Any], event_id: str) -> Any:
    event = {
        "event_id": event_id,
        "event_type": "checkup",
        "occurred_at": "2026-11-20T10:00:00Z",
        "subject": subject,
        "properties": {"condition": "asthma", "step_count": 4200},
    }
    resp = client.post("/v1/events", headers=auth(), json={"events": [event]})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_purpose_flag_round_trips_and_is_checked(ready: TestClient) -> None:
    stored = ready.get("/v1/purposes/loan_offer", headers=auth()).json()
    assert stored["automated_decision_basis"] == "explicit_consent"
    assert (
        ready.get("/v1/purposes/analytics", headers=auth()).json()["automated_decision_basis"]
        is None
    )
    body = {"name": "X", "legal_basis": "contract", "retention_days": 30}
    bad = ready.put(
        "/v1/purposes/x",
        headers=auth(),
        json=body | {"automated_decision_basis": "explicit_consent"},
    )
    assert_problem(bad, 422, "invalid_purpose")
    other = ready.put(
        "/v1/purposes/x", headers=auth(), json=body | {"automated_decision_basis": "hunch"}
    )
    assert_problem(other, 422, "invalid_request")
    law = ready.put(
        "/v1/purposes/x", headers=auth(), json=body | {"automated_decision_basis": "law"}
    )
    assert law.status_code == 201, law.text
    assert law.json()["automated_decision_basis"] == "law"


def test_contest_then_review_recorded_and_audited(ready: TestClient, settings: Settings) -> None:
    subject = email("sven")
    subject_id = grant(ready, subject, "analytics")
    iid = infer(ready, subject, "credit_check").json()["inference_id"]
    plain = infer(ready, subject, "analytics", automated=False, significant=False).json()

    review = {"outcome": "overturned", "explanation": "income was misread from a payslip"}
    path = f"/v1/inferences/{iid}"
    assert_problem(
        ready.put(f"{path}/review", headers=auth(), json=review), 409, "inference_not_contested"
    )
    resp = ready.post(
        f"{path}/contest", headers=auth(), json={"grounds": "my salary doubled in May"}
    )
    assert resp.status_code == 200, resp.text
    contested = resp.json()
    assert contested["status"] == "contested"
    assert contested["review"]["grounds"] == "my salary doubled in May"
    assert contested["review"]["outcome"] is None
    assert_problem(
        ready.post(f"{path}/contest", headers=auth()), 409, "inference_already_contested"
    )

    resp = ready.put(f"{path}/review", headers=auth(), json=review)
    assert resp.status_code == 200, resp.text
    reviewed = resp.json()
    assert reviewed["status"] == "reviewed"
    assert reviewed["review"]["outcome"] == "overturned"
    assert reviewed["review"]["explanation"] == review["explanation"]
    # Reading it opened is a read of personal data: audited, without its content.
    assert _audited(ready, "inference:read", subject_id) == []
    shown = ready.get(path, headers=auth())
    assert shown.status_code == 200, shown.text
    assert shown.json()["review"]["outcome"] == "overturned"
    assert _audited(ready, "inference:read", subject_id) == [{"inference_id": iid}]
    assert reviewed["review"]["reviewer"].startswith("key:")
    assert ready.get(path, headers=auth()).json() == reviewed
    assert_problem(
        ready.put(f"{path}/review", headers=auth(), json=review), 409, "inference_not_contested"
    )

    not_automated = f"/v1/inferences/{plain['inference_id']}/contest"
    assert_problem(ready.post(not_automated, headers=auth()), 409, "inference_not_contestable")
    assert_problem(ready.get("/v1/inferences/inf_0", headers=auth()), 404, "inference_not_found")
    bad = ready.put(f"{path}/review", headers=auth(), json={"outcome": "shrug", "explanation": "x"})
    assert_problem(bad, 422, "invalid_request")

    entries = ready.get(
        "/v1/audit/entries", headers=auth(), params={"limit": 1000, "subject_id": subject_id}
    ).json()
    mine = [
        (e["action"], e["details"]["inference_id"])
        for e in entries["items"]
        if e["action"].startswith("inference:") and e["action"] != "inference:read"
    ]
    assert mine == [
        ("inference:recorded", iid),
        ("inference:recorded", plain["inference_id"]),
        ("inference:contested", iid),
        ("inference:reviewed", iid),
    ]
    text = json.dumps(entries)
    for secret in ("salary", "payslip", OUTPUT_MARKER, SLICE_MARKER):
        assert secret not in text
    if settings.db == "":
        # The grounds and the explanation are sealed too: nothing of them in the files.
        runtime_of(ready).store.checkpoint()
        needles = [b"salary doubled", b"misread from a payslip", OUTPUT_MARKER.encode()]
        assert _scan(settings.data_dir, needles) == []


def test_listed_in_the_access_report(ready: TestClient) -> None:
    """Art. 15(1)(h): the logic (the purpose's description), significance, consequences."""
    subject = email("tara")
    grant(ready, subject, "loan_offer", explicit=True)
    iid = infer(ready, subject, "loan_offer").json()["inference_id"]
    contested = ready.post(f"/v1/inferences/{iid}/contest", headers=auth(), json={})
    assert contested.status_code == 200, contested.text
    review = {"outcome": "amended", "explanation": "offer raised after a person's look"}
    reviewed = ready.put(f"/v1/inferences/{iid}/review", headers=auth(), json=review)
    assert reviewed.status_code == 200, reviewed.text
    report = json.loads(result(ready, subject, "access"))
    decisions = report["automated_decisions"]
    assert decisions["made"] is True
    [item] = decisions["inferences"]
    assert item["inference_id"] == iid
    assert item["output"] == {"decision": OUTPUT_MARKER, "score": 0.31}
    assert item["inputs"] == {"event_ids": [], "slice": {"address": SLICE_MARKER}}
    assert PURPOSES["loan_offer"]["description"] in item["logic"]
    assert "risk-gbm" in item["logic"]
    assert "Art. 22(2)(c)" in item["significance"]
    assert "contest" in item["consequences"]
    # What the review decided, not which member of staff it was.
    assert item["review"]["outcome"] == "amended"
    assert item["review"]["explanation"] == review["explanation"]
    assert item["review"]["grounds"] is None
    assert "reviewer" not in item["review"]
    assert report["purposes"]["loan_offer"]["automated_decisions"] is True
    assert report["purposes"]["analytics"]["automated_decisions"] is False


def test_sealed_at_rest_and_gone_with_an_erasure(ready: TestClient, settings: Settings) -> None:
    subject = email("ulla")
    subject_id = grant(ready, subject, "analytics")
    iid = infer(ready, subject, "credit_check").json()["inference_id"]
    rt = runtime_of(ready)
    with rt.store.read() as conn:
        row = conn.execute(select(inferences).where(inferences.c.inference_id == iid)).one()
    blob = bytes(row.sealed)
    assert OUTPUT_MARKER.encode() not in blob
    needles = [OUTPUT_MARKER.encode(), SLICE_MARKER.encode()]
    if settings.db == "":
        rt.store.checkpoint()
        assert _scan(settings.data_dir, needles) == []
        # The scan does find what is stored in clear: the model's name.
        assert _scan(settings.data_dir, [b"risk-gbm"])

    created = request(
        ready,
        {
            "type": "erasure",
            "subject": subject,
            "jurisdiction": "EU",
            "verification": {"method": "account_login", "level": "high"},
        },
    )
    run(ready)
    done = ready.get(f"/v1/requests/{created['request_id']}", headers=auth()).json()
    assert done["status"] == "completed", done
    with rt.store.read() as conn:
        assert (
            conn.execute(select(inferences).where(inferences.c.subject_id == subject_id)).all()
            == []
        )
        # The key that sealed it is destroyed: the bytes, wherever a copy went, stay shut.
        with pytest.raises(SubjectKeyDestroyed):
            rt.subject_keys.sealer(conn, subject_id)
    rt.subject_keys.forget(subject_id)
    assert_problem(ready.get(f"/v1/inferences/{iid}", headers=auth()), 404, "inference_not_found")
    assert_problem(infer(ready, {"subject_id": subject_id}, "credit_check"), 410, "subject_erased")
    assert content_aad(iid).startswith(b"consentry:inference:")


def _stored(client: TestClient, subject_id: str) -> list[str]:
    with runtime_of(client).store.read() as conn:
        rows = conn.execute(select(inferences).where(inferences.c.subject_id == subject_id))
        return sorted(r.purpose for r in rows)


def _audited(client: TestClient, action: str, subject_id: str | None = None) -> list[Any]:
    params: dict[str, Any] = {"limit": 1000}
    if subject_id is not None:
        params["subject_id"] = subject_id
    entries = client.get("/v1/audit/entries", headers=auth(), params=params).json()["items"]
    return [e["details"] for e in entries if e["action"] == action]


def test_a_withdrawal_purges_the_purposes_inferences(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As its events: those recorded before it, for the withdrawn purpose only."""
    subject = email("vera")
    subject_id = grant(ready, subject, "analytics", "loan_offer")
    assert infer(ready, subject, "analytics", significant=False).status_code == 201
    assert infer(ready, subject, "loan_offer", significant=False).status_code == 201
    assert infer(ready, subject, "credit_check").status_code == 201
    resp = ready.post(
        "/v1/consents/withdraw",
        headers=auth(),
        json={"subject": subject, "purposes": ["analytics"], "source": "web"},
    )
    assert resp.status_code == 200, resp.text
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + erasure_module.SETTLE)
    run(ready)
    assert _stored(ready, subject_id) == ["credit_check", "loan_offer"]
    purged = _audited(ready, "events:withdrawal:purged", subject_id)
    assert [(p["purpose"], p["inferences"]) for p in purged] == [("analytics", 1)]


def test_the_retention_sweep_deletes_ended_inferences_but_a_restricted_subjects(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    subjects = {}
    for name in ("wim", "xena"):
        subjects[name] = grant(ready, email(name), "analytics")
        assert infer(ready, email(name), "credit_check").status_code == 201
    restricted = request(
        ready,
        {
            "type": "restriction",
            "subject": email("xena"),
            "jurisdiction": "EU",
            "ground": "18_1_a",
            "verification": {"method": "account_login", "level": "reasonable"},
        },
    )
    assert restricted["status"] == "completed", restricted
    sweeper = runtime_of(ready).retention
    assert sweeper.run_steps("test")["inferences"] == {"deleted": 0, "skipped_restricted": 0}
    fake.advance(days=364)
    assert sweeper.run_steps("test")["inferences"] == {"deleted": 0, "skipped_restricted": 0}
    fake.advance(days=1)  # credit_check keeps them 365 days
    sweeper.INFERENCE_SPAN = 1  # one transaction per inference: one audit entry still
    assert sweeper.run_steps("test")["inferences"] == {"deleted": 1, "skipped_restricted": 1}
    assert _stored(ready, subjects["wim"]) == []
    assert _stored(ready, subjects["xena"]) == ["credit_check"]
    swept = _audited(ready, "inference:retention:swept")
    assert [(s["deleted"], s["skipped_restricted"]) for s in swept] == [(1, 1)]


def _scan(data_dir: Path, needles: list[bytes]) -> list[tuple[str, bytes]]:
    found = []
    for path in data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            found += [(path.name, n) for n in needles if n in content]
    return found
