"""API.md "Purposes and notices" (PUT /v1/notices) and the notice rules of "Consent"."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry.consent import notices
from consentry.consent.models import LegalBasis, Purpose
from consentry.errors import InvalidRequest
from consentry.runtime import Runtime
from tests.conftest import auth
from tests.consent.helpers import (
    NOTICE,
    history,
    post_consent,
    publish,
    record,
    ref,
    tc_string,
)
from tests.http.test_conventions import assert_problem

TEXT_V1 = "Política de privacidad de Example Ltd — versión 1. Ñandú ✓"
TEXT_V2 = "Política de privacidad de Example Ltd — versión 2."


def put_notice(client: TestClient, notice_id: str, **body: object) -> object:
    return client.put(f"/v1/notices/{notice_id}", headers=auth(), json=body)


def test_notice_answers_the_sha256_of_its_text(client: TestClient) -> None:
    """`PUT /v1/notices/{notice_id}` `{"version", "text", "purposes"}` ->
    `{"notice_id", "version", "sha256"}`, the SHA-256 of the text (UTF-8)."""
    resp = client.put(
        "/v1/notices/privacy",
        headers=auth(),
        json={"version": "1", "text": TEXT_V1, "purposes": ["analytics", "marketing"]},
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["notice_id"] == "privacy"
    assert body["version"] == "1"
    assert body["sha256"] == hashlib.sha256(TEXT_V1.encode("utf-8")).hexdigest()
    assert sorted(body["purposes"]) == ["analytics", "marketing"]


def test_notice_versions_are_immutable(client: TestClient) -> None:
    """A published version cannot change (`notice_version_conflict`); publishing the same
    content again changes nothing; a new version gets the SHA-256 of its own text, and each
    grant records the hash of the version the customer saw."""
    first = publish(client, "privacy", "1", ["analytics", "marketing"], TEXT_V1)
    again = client.put(
        "/v1/notices/privacy",
        headers=auth(),
        json={"version": "1", "text": TEXT_V1, "purposes": ["marketing", "analytics", "analytics"]},
    )
    assert again.status_code == 200, again.text
    assert again.json()["sha256"] == first["sha256"]
    for body in (
        {"version": "1", "text": TEXT_V1 + " ", "purposes": ["analytics", "marketing"]},
        {"version": "1", "text": TEXT_V1, "purposes": ["analytics"]},
        {"version": "1", "text": TEXT_V1, "purposes": ["analytics", "marketing", "location"]},
    ):
        assert_problem(put_notice(client, "privacy", **body), 409, "notice_version_conflict")
    second = publish(client, "privacy", "2", ["analytics"], TEXT_V2)
    assert second["sha256"] == hashlib.sha256(TEXT_V2.encode()).hexdigest()
    old = record(client, "nia", {"marketing": "granted"}, notice={"id": "privacy", "version": "1"})
    new = record(client, "nia", {"analytics": "granted"}, notice={"id": "privacy", "version": "2"})
    assert old["purposes"]["marketing"]["notice_sha256"] == first["sha256"]
    assert new["purposes"]["analytics"]["notice_sha256"] == second["sha256"]
    entries = history(client, new["subject_id"])
    assert [e["notice"] for e in entries] == [
        {"id": "privacy", "version": "1", "sha256": first["sha256"]},
        {"id": "privacy", "version": "2", "sha256": second["sha256"]},
    ]


def test_notice_with_unknown_purposes_is_refused(client: TestClient) -> None:
    """A notice may only cover purposes that exist (`unknown_purpose`); nothing is stored."""
    body = {"version": "1", "text": TEXT_V1, "purposes": ["analytics", "telepathy"]}
    problem = assert_problem(put_notice(client, "privacy", **body), 422, "unknown_purpose")
    assert problem["purpose"] == "telepathy"
    assert_problem(
        put_notice(client, "privacy", version="1", text=TEXT_V1, purposes=[]),
        422,
        "invalid_request",
    )
    resp = post_consent(
        client,
        {
            "subject": ref("oren"),
            "purposes": {"analytics": "granted"},
            "source": "web",
            "notice": NOTICE,
        },
    )
    assert_problem(resp, 422, "unknown_notice")
    # The refused version was never stored: publishing it now is a creation.
    assert publish(client, "privacy", "1", ["analytics"], TEXT_V1)["version"] == "1"


def test_a_grant_needs_a_known_notice_that_covers_it(client: TestClient) -> None:
    """API.md: "Granting a consent-based purpose, by `purposes` or by a TC string, needs a known
    notice that covers it (`notice_required`, `notice_mismatch`)"; an unknown notice is
    `unknown_notice`. Denials and purposes not based on consent need no notice. A refused
    call leaves the ledger unchanged."""
    notice = publish(client, "privacy", "1", ["analytics", "marketing"], TEXT_V1)
    base = record(client, "pia", {"marketing": "denied"}, notice=None)
    subject_id = base["subject_id"]
    before = history(client, subject_id)
    grant = {"subject": ref("pia"), "purposes": {"analytics": "granted"}, "source": "web"}
    tc_grant = {"subject": ref("pia"), "tcf": tc_string(range(1, 11), {1}), "source": "web"}
    refused = [
        (grant, "notice_required"),
        (grant | {"notice": {"id": "privacy", "version": "9"}}, "unknown_notice"),
        (grant | {"notice": {"id": "cookies", "version": "1"}}, "unknown_notice"),
        (
            grant | {"purposes": {"location": "granted"}, "notice": NOTICE},
            "notice_mismatch",
        ),
        (
            grant | {"purposes": {"analytics": "granted", "location": "granted"}, "notice": NOTICE},
            "notice_mismatch",
        ),
        (tc_grant, "notice_required"),
        (tc_grant | {"notice": NOTICE}, "notice_mismatch"),
        (
            {"subject": ref("pia.new"), "purposes": {"analytics": "granted"}, "source": "web"},
            "notice_required",
        ),
    ]
    for body, code in refused:
        problem = assert_problem(post_consent(client, body), 422, code)
        if code != "unknown_notice":
            assert problem["purpose"] in {"analytics", "location", "advertising", "personalization"}
        assert history(client, subject_id) == before
    # The refused call for a new person did not create them.
    created = client.post("/v1/subjects", headers=auth(), json={"subject": ref("pia.new")})
    assert created.status_code == 201, created.text
    denial = record(client, "pia", {"analytics": "denied", "location": "denied"}, notice=None)
    assert denial["purposes"]["analytics"]["notice_sha256"] is None
    contract = record(client, "pia", {"service_delivery": "granted"}, notice=None)
    assert contract["purposes"]["service_delivery"]["state"] == "granted"
    granted = record(client, "pia", {"analytics": "granted"}, notice=NOTICE)
    assert granted["purposes"]["analytics"]["notice_sha256"] == notice["sha256"]
    assert history(client, subject_id)[-1]["notice"] == {
        "id": "privacy",
        "version": "1",
        "sha256": notice["sha256"],
    }


def test_an_overlong_notice_id_is_refused_on_both_back_ends(client: TestClient) -> None:
    """API.md: "Bad input never gives a 500"; a notice id is at most 64 characters, as a
    consent write's `notice.id` is, on SQLite and PostgreSQL alike."""
    resp: Any = put_notice(client, "n" * 65, version="1", text=TEXT_V1, purposes=["analytics"])
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] in {"invalid_request", "invalid_notice"}


def test_publishing_checks_the_id_and_version_whatever_the_caller(runtime: Runtime) -> None:
    """The rules of a notice's id and version hold in `notices.publish` itself, so a caller
    other than the route (`consentry apply`, a fideslang import) cannot store what the API
    could never address, nor fail on a column's length."""
    with runtime.store.write() as conn:
        runtime.purposes.put(conn, Purpose("analytics", "A", LegalBasis.CONSENT, 30), actor="t")
    for notice_id, version in (("bad id/../x", "1"), ("n" * 65, "1"), ("ok", "v" * 65), ("ok", "")):
        with pytest.raises(InvalidRequest), runtime.store.write() as conn:
            notices.publish(
                conn, runtime.purposes, notice_id, version, "T.", ["analytics"], actor="t"
            )
    with runtime.store.write() as conn:
        _, created = notices.publish(
            conn, runtime.purposes, "ok", "v" * 64, "T.", ["analytics"], actor="t"
        )
    assert created
