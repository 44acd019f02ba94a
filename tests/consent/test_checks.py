"""API.md "Consent": POST /v1/consents/check reasons, withdrawals, unknown subjects, US-CA."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth
from tests.consent.helpers import (
    CONSENT_PURPOSES,
    audit_entries,
    check,
    consent_state,
    history,
    install_clock,
    publish,
    record,
    withdraw,
)

LEGAL_BASES = {
    "service_delivery": "contract",
    "legal_compliance": "legal_obligation",
    "security": "legitimate_interest",
}


def opt_out_model(client: TestClient, key: str, *, sale_or_share: bool) -> None:
    body = {
        "name": key,
        "legal_basis": "consent",
        "retention_days": 395,
        "sale_or_share": sale_or_share,
        "us_ca_model": "opt_out",
    }
    assert client.put(f"/v1/purposes/{key}", headers=auth(), json=body).is_success


def test_check_answers_each_reason_with_basis_and_version(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`POST /v1/consents/check` -> `{"allowed", "legal_basis", "reason", "version"}` with
    reasons granted, denied, expired, never_asked, not_required."""
    clock = install_clock(monkeypatch)
    publish(client)
    record(client, "jo", {"analytics": "granted", "location": "granted"})
    record(client, "jo", {"marketing": "denied"}, notice=None)
    version = withdraw(client, "jo", ["location"])["version"]
    expected = {
        "analytics": (True, "granted"),
        "marketing": (False, "denied"),
        "location": (False, "denied"),
        "personalization": (False, "never_asked"),
        "service_delivery": (True, "not_required"),
        "legal_compliance": (True, "not_required"),
        "security": (True, "not_required"),
    }
    for purpose, (allowed, reason) in expected.items():
        answer = check(client, "jo", purpose)
        assert set(answer) == {"allowed", "legal_basis", "reason", "version"}
        assert (answer["allowed"], answer["reason"]) == (allowed, reason), purpose
        assert answer["legal_basis"] == LEGAL_BASES.get(purpose, "consent")
        assert answer["version"] == version
    clock.advance(days=396)
    assert check(client, "jo", "analytics")["reason"] == "expired"
    assert check(client, "jo", "security")["reason"] == "not_required"


def test_check_of_an_unknown_subject_creates_nobody(client: TestClient) -> None:
    """ "a check for an unknown subject answers `never_asked` (or `not_required` for a
    non-consent purpose)" and does not create the subject."""
    for who in ("kim", "sub_" + "f" * 24):
        for purpose in CONSENT_PURPOSES:
            answer = check(client, who, purpose)
            assert answer == {
                "allowed": False,
                "legal_basis": "consent",
                "reason": "never_asked",
                "version": 0,
            }
        for purpose, basis in LEGAL_BASES.items():
            answer = check(client, who, purpose)
            assert (answer["allowed"], answer["reason"]) == (True, "not_required")
            assert answer["legal_basis"] == basis
    resp = client.post(
        "/v1/subjects",
        headers=auth(),
        json={"subject": {"identities": [{"type": "email", "value": "kim@example.com"}]}},
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["created"] is True
    sid = "sub_" + "f" * 24
    assert client.get(f"/v1/subjects/{sid}", headers=auth()).status_code == 404


def test_withdraw_a_list(client: TestClient) -> None:
    """`POST /v1/consents/withdraw` `{"subject", "purposes": [...], "source"}` -> the same
    shape as a write; no notice needed; the rest stays as it was."""
    publish(client)
    granted = record(client, "lea", {"analytics": "granted", "marketing": "granted"})
    body = withdraw(client, "lea", ["analytics", "analytics"], source="email")
    assert set(body) == {
        "subject_id",
        "version",
        "purposes",
        "gpc_honored",
        "token",
        "token_expires_at",
    }
    assert body["subject_id"] == granted["subject_id"]
    assert body["version"] == granted["version"] + 1
    analytics = body["purposes"]["analytics"]
    assert (analytics["state"], analytics["source"], analytics["expires_at"]) == (
        "withdrawn",
        "email",
        None,
    )
    assert body["purposes"]["marketing"] == granted["purposes"]["marketing"]
    assert check(client, "lea", "analytics")["reason"] == "denied"
    # "Values are normalised before use": the check finds the same person.
    assert check(client, " LEA@Example.COM ", "marketing")["reason"] == "granted"
    assert check(client, "lea", "marketing")["reason"] == "granted"
    assert [e["purpose"] for e in history(client, body["subject_id"])][-1:] == ["analytics"]
    assert len(history(client, body["subject_id"])) == 3


def test_withdraw_all(client: TestClient) -> None:
    """`"purposes": "all"` withdraws every consent purpose (and any other with an entry)."""
    publish(client)
    record(client, "max", {"analytics": "granted", "advertising": "granted"})
    record(client, "max", {"service_delivery": "granted"}, notice=None)
    body = withdraw(client, "max", "all")
    withdrawn = {k for k, p in body["purposes"].items() if p["state"] == "withdrawn"}
    assert withdrawn == {*CONSENT_PURPOSES, "service_delivery"}
    assert "legal_compliance" not in body["purposes"]
    for purpose in CONSENT_PURPOSES:
        assert check(client, "max", purpose)["reason"] == "denied"
    # Withdrawing a contract purpose's entry does not end processing based on the contract.
    assert check(client, "max", "service_delivery")["reason"] == "not_required"


def test_withdrawal_for_an_unknown_person_is_a_pre_emptive_opt_out(client: TestClient) -> None:
    """ "a withdrawal for an unknown person is a valid pre-emptive opt-out": it creates the
    subject, needs no notice, and later checks answer `denied`, not `never_asked`."""
    body = withdraw(client, "noor", "all")
    subject_id = body["subject_id"]
    assert set(body["purposes"]) == set(CONSENT_PURPOSES)
    assert {p["state"] for p in body["purposes"].values()} == {"withdrawn"}
    assert check(client, "noor", "analytics") == {
        "allowed": False,
        "legal_basis": "consent",
        "reason": "denied",
        "version": body["version"],
    }
    listed = withdraw(client, "omar", ["marketing"])
    assert list(listed["purposes"]) == ["marketing"]
    assert check(client, "omar", "marketing")["reason"] == "denied"
    assert check(client, "omar", "analytics")["reason"] == "never_asked"
    resp = client.post(
        "/v1/subjects",
        headers=auth(),
        json={"subject": {"identities": [{"type": "email", "value": "noor@example.com"}]}},
    )
    assert resp.json()["created"] is False
    assert resp.json()["subject_id"] == subject_id
    actions = [e["action"] for e in audit_entries(client, subject_id)]
    assert actions.count("consent:withdrawn") == len(CONSENT_PURPOSES)


def test_us_ca_opt_out_model(client: TestClient) -> None:
    """ "with `opt_out`, a US-CA subject never asked is allowed (reason `not_opted_out`) until
    it opts out"; "for a US-CA subject under 16, sale_or_share purposes are opt-in only,
    whatever `us_ca_model` says"; other jurisdictions (and unknown, as EU) are opt-in."""
    opt_out_model(client, "third_party_sharing", sale_or_share=True)
    opt_out_model(client, "personalization", sale_or_share=False)
    record(client, "pat", {"marketing": "denied"}, notice=None, jurisdiction="US-CA")
    record(
        client,
        "pam",
        {"marketing": "denied"},
        notice=None,
        jurisdiction="US-CA",
        age_band="unknown",
    )
    record(
        client, "pia", {"marketing": "denied"}, notice=None, jurisdiction="US-CA", age_band="13_15"
    )
    record(client, "pol", {"marketing": "denied"}, notice=None, jurisdiction="US")
    pez = record(client, "pez", {"marketing": "denied"}, notice=None)["subject_id"]
    # "unknown counts as EU (the strictest)".
    assert consent_state(client, pez)["jurisdiction"] == "EU"
    assert {e["jurisdiction"] for e in history(client, pez)} == {"EU"}
    expected = {
        ("pat", "third_party_sharing"): (True, "not_opted_out"),
        ("pat", "personalization"): (True, "not_opted_out"),
        ("pat", "advertising"): (False, "never_asked"),
        ("pam", "third_party_sharing"): (True, "not_opted_out"),
        ("pia", "third_party_sharing"): (False, "never_asked"),
        ("pia", "personalization"): (True, "not_opted_out"),
        ("pol", "third_party_sharing"): (False, "never_asked"),
        ("pez", "third_party_sharing"): (False, "never_asked"),
    }
    for (who, purpose), (allowed, reason) in expected.items():
        answer = check(client, who, purpose)
        assert (answer["allowed"], answer["reason"]) == (allowed, reason), (who, purpose)
        assert answer["legal_basis"] == "consent"
    # Opting out ends it, by a denial, a withdrawal or GPC.
    record(client, "pat", {"third_party_sharing": "denied"}, notice=None)
    withdraw(client, "pat", ["personalization"])
    record(client, "pam", {}, notice=None, gpc=True)
    for who, purpose in (
        ("pat", "third_party_sharing"),
        ("pat", "personalization"),
        ("pam", "third_party_sharing"),
    ):
        assert check(client, who, purpose)["reason"] == "denied"


def test_jurisdiction_follows_the_latest_write(client: TestClient) -> None:
    """ "Jurisdiction ... is an attribute of the subject, set by its latest consent write or
    request": moving a US-CA subject to the EU ends the opt-out model at once."""
    opt_out_model(client, "personalization", sale_or_share=False)
    subject_id = record(client, "quin", {"marketing": "denied"}, notice=None, jurisdiction="US-CA")[
        "subject_id"
    ]
    assert check(client, "quin", "personalization")["reason"] == "not_opted_out"
    record(client, "quin", {"marketing": "denied"}, notice=None, jurisdiction="EU")
    answer = check(client, "quin", "personalization")
    assert answer["reason"] == "never_asked"
    assert answer["version"] == consent_state(client, subject_id)["version"]
    assert consent_state(client, subject_id)["jurisdiction"] == "EU"
    resp = client.post(
        "/v1/subjects",
        headers=auth(),
        json={"subject": {"subject_id": subject_id}, "jurisdiction": "US-CA"},
    )
    assert resp.status_code == 200, resp.text
    assert check(client, "quin", "personalization")["reason"] == "not_opted_out"
