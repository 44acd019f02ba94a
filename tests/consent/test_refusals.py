"""Refused consent calls: 4xx problem+json with a stable code, and no half-written entry."""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import auth
from tests.consent.helpers import NOTICE, audit_entries, history, publish, record, ref
from tests.http.test_conventions import assert_problem

WHO = "hana"

# (body of POST /v1/consents without the subject, status, code)
BAD_WRITES: list[tuple[dict[str, Any], int, str]] = [
    ({"purposes": {"telepathy": "granted"}}, 422, "unknown_purpose"),
    ({"purposes": {"analytics": "denied", "telepathy": "denied"}}, 422, "unknown_purpose"),
    ({"purposes": {"analytics": "withdrawn"}}, 422, "invalid_consent_state"),
    ({"purposes": {"analytics": "yes"}}, 422, "invalid_consent_state"),
    ({"purposes": {"marketing": "denied", "analytics": "GRANTED"}}, 422, "invalid_consent_state"),
    ({"source": "fax"}, 422, "invalid_source"),
    ({"source": ""}, 422, "invalid_source"),
    ({"source": "WEB"}, 422, "invalid_source"),
    ({"age_band": "toddler"}, 422, "invalid_age_band"),
    ({"age_band": "13-15"}, 422, "invalid_age_band"),
    ({"jurisdiction": "FR"}, 422, "invalid_jurisdiction"),
    ({"jurisdiction": "us-ca"}, 422, "invalid_jurisdiction"),
    ({"tcf": "not a TC string"}, 422, "invalid_tcf"),
    ({"purposes": {}}, 422, "nothing_to_record"),
    ({"explicit": "true"}, 422, "invalid_request"),
    ({"gpc": 1}, 422, "invalid_request"),
    ({"evidence": ["signed"]}, 422, "invalid_request"),
    ({"notice": {"id": "privacy"}}, 422, "invalid_request"),
    ({"purposes": ["analytics"]}, 422, "invalid_request"),
    ({"colour": "red"}, 422, "unknown_field"),
]
# (body of POST /v1/consents/withdraw without the subject, status, code)
BAD_WITHDRAWALS: list[tuple[dict[str, Any], int, str]] = [
    ({"purposes": ["telepathy"]}, 422, "unknown_purpose"),
    ({"purposes": ["analytics", "telepathy"]}, 422, "unknown_purpose"),
    ({"purposes": ["analytics"], "source": "carrier-pigeon"}, 422, "invalid_source"),
    ({"purposes": "some"}, 422, "invalid_request"),
    ({"purposes": "analytics"}, 422, "invalid_request"),
    ({}, 422, "invalid_request"),
]


def snapshot(client: TestClient, subject_id: str) -> tuple[Any, ...]:
    state = client.get(f"/v1/subjects/{subject_id}/consent", headers=auth()).json()
    consent_audit = [e for e in audit_entries(client, subject_id) if "consent:" in e["action"]]
    return history(client, subject_id), state, consent_audit


def test_bad_consent_writes_are_refused_whole(client: TestClient) -> None:
    """Unknown purposes (`unknown_purpose`), bad states (`invalid_consent_state`), bad
    sources (`invalid_source`), bad age bands (`invalid_age_band`), bad jurisdictions
    (`invalid_jurisdiction`) and other bad input are 4xx problem+json ("Bad input never
    gives a 500"); after each, the subject's ledger and state are unchanged."""
    publish(client)
    subject_id = record(client, WHO, {"marketing": "granted"}, jurisdiction="UK")["subject_id"]
    before = snapshot(client, subject_id)
    for fields, status, code in BAD_WRITES:
        body = {
            "subject": ref(WHO),
            "purposes": {"analytics": "granted"},
            "source": "web",
            "notice": NOTICE,
        }
        resp = client.post("/v1/consents", headers=auth(), json=body | fields)
        assert_problem(resp, status, code)
        assert snapshot(client, subject_id) == before, fields


def test_bad_withdrawals_are_refused_whole(client: TestClient) -> None:
    """A withdrawal naming an unknown purpose or source is refused and withdraws nothing."""
    publish(client)
    subject_id = record(client, WHO, {"analytics": "granted", "marketing": "granted"})["subject_id"]
    before = snapshot(client, subject_id)
    for fields, status, code in BAD_WITHDRAWALS:
        body = {"subject": ref(WHO), "source": "web"} | fields
        resp = client.post("/v1/consents/withdraw", headers=auth(), json=body)
        assert_problem(resp, status, code)
        assert snapshot(client, subject_id) == before, fields


def test_refused_calls_for_a_new_person_create_nobody(client: TestClient) -> None:
    """A refused consent write or withdrawal leaves no subject behind for new identities."""
    publish(client)
    for fields, status, code in BAD_WRITES:
        body = {"subject": ref("ivo"), "purposes": {"analytics": "granted"}, "source": "web"}
        resp = client.post("/v1/consents", headers=auth(), json=body | {"notice": NOTICE} | fields)
        assert_problem(resp, status, code)
    for fields, status, code in BAD_WITHDRAWALS:
        body = {"subject": ref("ivo"), "source": "web"} | fields
        assert_problem(
            client.post("/v1/consents/withdraw", headers=auth(), json=body), status, code
        )
    resp = client.post("/v1/subjects", headers=auth(), json={"subject": ref("ivo")})
    assert resp.status_code == 201, resp.text


def test_bad_subject_references_and_checks_are_problems(client: TestClient) -> None:
    """An unknown subject id is `subject_not_found`; a malformed reference, an unknown
    identity type, or a check of an unknown purpose is a 4xx problem."""
    missing = "sub_" + "0" * 24
    body = {"subject": {"subject_id": missing}, "purposes": {"analytics": "denied"}}
    assert_problem(
        client.post("/v1/consents", headers=auth(), json=body | {"source": "web"}),
        404,
        "subject_not_found",
    )
    withdrawal = {"subject": {"subject_id": missing}, "purposes": "all"}
    assert_problem(
        client.post("/v1/consents/withdraw", headers=auth(), json=withdrawal),
        404,
        "subject_not_found",
    )
    for path in ("consent", "consent/history", "consent/token"):
        resp = client.get(f"/v1/subjects/{missing}/{path}", headers=auth())
        assert_problem(resp, 404, "subject_not_found")
    bad_refs: list[tuple[dict[str, Any], str]] = [
        ({}, "invalid_subject_ref"),
        ({"subject_id": "not-a-subject"}, "invalid_subject_ref"),
        ({"identities": []}, "empty_identities"),
        ({"identities": [{"type": "shoe_size", "value": "42"}]}, "unknown_identity_type"),
    ]
    for subject, code in bad_refs:
        body = {"subject": subject, "purposes": {"analytics": "denied"}, "source": "web"}
        assert_problem(client.post("/v1/consents", headers=auth(), json=body), 422, code)
        check = {"subject": subject, "purpose": "analytics"}
        assert_problem(client.post("/v1/consents/check", headers=auth(), json=check), 422, code)
    check = {"subject": ref(WHO), "purpose": "telepathy"}
    resp = client.post("/v1/consents/check", headers=auth(), json=check)
    assert_problem(resp, 422, "unknown_purpose")
    record(client, WHO, {"analytics": "denied"}, notice=None)
    resp = client.post("/v1/consents/check", headers=auth(), json=check)
    assert_problem(resp, 422, "unknown_purpose")


def cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def test_bad_history_cursors_are_400(client: TestClient) -> None:
    """A cursor the server did not make is `invalid_cursor` (API.md Conventions)."""
    subject_id = record(client, WHO, {"analytics": "denied"}, notice=None)["subject_id"]
    url = f"/v1/subjects/{subject_id}/consent/history"
    for bad in ("!!", "e30", cursor({"from_index": 1})):
        assert_problem(
            client.get(url, headers=auth(), params={"cursor": bad}), 400, "invalid_cursor"
        )
    for limit in ("0", "-1", "many"):
        resp = client.get(url, headers=auth(), params={"limit": limit})
        assert_problem(resp, 422, "invalid_request")


def test_history_cursor_with_a_non_integer_position_is_400(client: TestClient) -> None:
    """API.md: "Bad input never gives a 500": a well-formed cursor whose position is not a
    non-negative integer is `invalid_cursor`."""
    subject_id = record(client, WHO, {"analytics": "denied"}, notice=None)["subject_id"]
    url = f"/v1/subjects/{subject_id}/consent/history"
    for position in ({"after": "x"}, {"after": None}, {"after": [1]}, {"after": -1}):
        resp = client.get(url, headers=auth(), params={"cursor": cursor(position)})
        assert_problem(resp, 400, "invalid_cursor")
