"""API.md "Purposes and notices": the purposes of a fresh install, PUT/GET, refusals, locking."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import auth
from tests.consent.helpers import publish, record, withdraw
from tests.http.test_conventions import assert_problem

FRESH = {
    "analytics": "consent",
    "personalization": "consent",
    "marketing": "consent",
    "advertising": "consent",
    "location": "consent",
    "third_party_sharing": "consent",
    "service_delivery": "contract",
    "legal_compliance": "legal_obligation",
    "security": "legitimate_interest",
}
FLAGS = ("sale_or_share", "direct_marketing", "strictly_necessary")
LEGAL_BASES = (
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interest",
)


def put(client: TestClient, key: str, **fields: Any) -> Any:
    body = {"name": key.title(), "legal_basis": "consent", "retention_days": 30} | fields
    return client.put(f"/v1/purposes/{key}", headers=auth(), json=body)


def get(client: TestClient, key: str) -> dict[str, Any]:
    resp = client.get(f"/v1/purposes/{key}", headers=auth())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_fresh_install_has_the_documented_purposes(client: TestClient) -> None:
    """API.md: "A fresh install has: analytics, personalization, marketing (direct_marketing),
    advertising (sale_or_share), location, third_party_sharing (sale_or_share), all consent;
    service_delivery (contract); legal_compliance (legal_obligation); security
    (legitimate_interest, strictly_necessary)." Lists are {items, next}; a purpose carries
    its key."""
    body = client.get("/v1/purposes", headers=auth()).json()
    assert set(body) == {"items", "next"}
    assert body["next"] is None
    purposes = {item["key"]: item for item in body["items"]}
    assert {key: p["legal_basis"] for key, p in purposes.items()} == FRESH
    flagged = {flag: {k for k, p in purposes.items() if p[flag]} for flag in FLAGS}
    assert flagged == {
        "sale_or_share": {"advertising", "third_party_sharing"},
        "direct_marketing": {"marketing"},
        "strictly_necessary": {"security"},
    }
    for key, purpose in purposes.items():
        assert purpose["us_ca_model"] == "opt_in", key
        assert purpose["special_category_condition"] is None, key
        assert purpose["consent_ttl_days"] == 395, key
        assert get(client, key) == purpose


def test_put_creates_then_replaces_and_get_returns_it(client: TestClient) -> None:
    """`PUT /v1/purposes/{key}` with name, legal_basis, retention_days and the optional
    fields; every Art. 6 legal basis is accepted; defaults as documented."""
    resp = put(client, "loyalty", retention_days=90)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["key"] == "loyalty"
    assert created["consent_ttl_days"] == 395
    assert created["us_ca_model"] == "opt_in"
    assert not any(created[flag] for flag in FLAGS)
    full = {
        "consent_ttl_days": 30,
        "sale_or_share": True,
        "direct_marketing": True,
        "special_category_condition": "a",
        "us_ca_model": "opt_out",
        "retain_identities": True,
        "data_use": "marketing.advertising",
        "description": "Points and offers for members.",
    }
    resp = put(client, "loyalty", name="Loyalty club", retention_days=120, **full)
    assert resp.status_code == 200, resp.text
    stored = get(client, "loyalty")
    assert stored == resp.json()
    assert stored["name"] == "Loyalty club"
    assert stored["retention_days"] == 120
    assert {k: stored[k] for k in full} == full
    for basis in LEGAL_BASES:
        resp = put(client, f"basis_{basis}", legal_basis=basis)
        assert resp.status_code == 201, resp.text
        assert get(client, f"basis_{basis}")["legal_basis"] == basis
    for letter in "abcdefghij":
        assert put(client, f"special_{letter}", special_category_condition=letter).is_success
    listed = [p["key"] for p in client.get("/v1/purposes", headers=auth()).json()["items"]]
    assert "loyalty" in listed
    assert listed == sorted(listed)


def test_bad_definitions_are_refused_with_a_code(client: TestClient) -> None:
    """Bad purpose definitions are 4xx problem+json (`invalid_purpose`; an unknown legal basis
    or a wrong type is 422), and nothing is stored."""
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("Bad-Key", {}, 422, "invalid_purpose"),
        ("9lives", {}, 422, "invalid_purpose"),
        ("x" * 65, {}, 422, "invalid_purpose"),
        ("upper_Case", {}, 422, "invalid_purpose"),
        ("condition_z", {"special_category_condition": "z"}, 422, "invalid_purpose"),
        ("condition_empty", {"special_category_condition": ""}, 422, "invalid_purpose"),
        ("bad_use", {"data_use": "not.a.fideslang.use"}, 422, "invalid_purpose"),
        ("basis", {"legal_basis": "because"}, 422, "invalid_request"),
        ("basis_art9", {"legal_basis": "explicit_consent"}, 422, "invalid_request"),
        ("retention", {"retention_days": 0}, 422, "invalid_request"),
        ("ttl", {"consent_ttl_days": 0}, 422, "invalid_request"),
        ("ttl_text", {"consent_ttl_days": "30"}, 422, "invalid_request"),
        ("model", {"us_ca_model": "maybe"}, 422, "invalid_request"),
        ("flag", {"sale_or_share": "yes"}, 422, "invalid_request"),
        ("extra", {"colour": "red"}, 422, "unknown_field"),
    ]
    before = client.get("/v1/purposes", headers=auth()).json()
    for key, fields, status, code in cases:
        assert_problem(put(client, key, **fields), status, code)
    assert client.get("/v1/purposes", headers=auth()).json() == before
    assert_problem(client.get("/v1/purposes/bad_use", headers=auth()), 404, "purpose_not_found")


def test_legal_basis_locks_once_a_ledger_entry_refers_to_it(client: TestClient) -> None:
    """API.md: "Once a ledger entry ... refers to a purpose, its legal basis can no longer change
    (409 `legal_basis_locked`): a new basis is a new purpose." Other fields still change."""
    # Unused purposes may still change basis.
    assert put(client, "location", name="Location", legal_basis="contract").status_code == 200
    assert put(client, "location", name="Location", legal_basis="consent").status_code == 200
    record(client, "lock.one", {"analytics": "denied"}, notice=None)
    withdraw(client, "lock.two", ["marketing"])
    for key in ("analytics", "marketing"):
        problem = assert_problem(
            put(client, key, legal_basis="contract"), 409, "legal_basis_locked"
        )
        assert problem["purpose"] == key
        assert get(client, key)["legal_basis"] == "consent"
        resp = put(client, key, name="Renamed", retention_days=45, consent_ttl_days=30)
        assert resp.status_code == 200, resp.text
        stored = get(client, key)
        assert (stored["name"], stored["retention_days"], stored["consent_ttl_days"]) == (
            "Renamed",
            45,
            30,
        )
        assert stored["legal_basis"] == "consent"
    # A new basis is a new purpose.
    assert put(client, "analytics_li", legal_basis="legitimate_interest").status_code == 201


def test_legal_basis_locks_once_a_notice_refers_to_it(client: TestClient) -> None:
    """API.md: "Once a ... notice refers to a purpose, its legal basis can no longer change"."""
    assert put(client, "surveys").status_code == 201
    assert put(client, "surveys", legal_basis="legitimate_interest").status_code == 200
    assert put(client, "surveys", legal_basis="consent").status_code == 200
    publish(client, "surveys-notice", "1", ["surveys"], "We ask you about our service.")
    assert_problem(put(client, "surveys", legal_basis="contract"), 409, "legal_basis_locked")
    resp = put(client, "surveys", name="Customer surveys", description="Twice a year.")
    assert resp.status_code == 200, resp.text
    assert get(client, "surveys")["description"] == "Twice a year."
    assert get(client, "surveys")["legal_basis"] == "consent"
