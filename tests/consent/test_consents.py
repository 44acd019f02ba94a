"""API.md "Consent": POST /v1/consents, expiry, explicit consent (Art. 9) and children (Art. 8)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.settings import Settings
from tests.conftest import auth
from tests.consent.helpers import (
    CONSENT_PURPOSES,
    NOTICE,
    check,
    consent_state,
    history,
    install_clock,
    post_consent,
    publish,
    record,
    ref,
    tc_string,
    withdraw,
)
from tests.http.test_conventions import assert_problem

PURPOSE_STATE = {"state", "updated_at", "expires_at", "source", "notice_sha256"}


def parse(moment: str) -> datetime:
    assert moment.endswith("Z"), moment
    return datetime.fromisoformat(moment)


def test_write_answers_the_documented_shape(client: TestClient) -> None:
    """`POST /v1/consents` -> `{"subject_id", "version", "purposes": {"analytics": {"state",
    "updated_at", "expires_at", "source", "notice_sha256"}}, "gpc_honored", "token",
    "token_expires_at"}`; an unknown identity creates the subject; values are normalised."""
    notice = publish(client)
    body = record(
        client,
        "Ana.Example@Example.com",
        {"analytics": "granted", "marketing": "denied"},
        jurisdiction="UK",
    )
    assert set(body) == {
        "subject_id",
        "version",
        "purposes",
        "gpc_honored",
        "token",
        "token_expires_at",
    }
    assert body["subject_id"].startswith("sub_")
    assert body["gpc_honored"] is False
    assert body["token"].count(".") == 2
    assert set(body["purposes"]) == {"analytics", "marketing"}
    for item in body["purposes"].values():
        assert set(item) == PURPOSE_STATE
        assert item["source"] == "web"
        assert item["notice_sha256"] == notice["sha256"]
    analytics, marketing = body["purposes"]["analytics"], body["purposes"]["marketing"]
    assert analytics["state"] == "granted"
    assert parse(analytics["expires_at"]) - parse(analytics["updated_at"]) == timedelta(days=395)
    assert marketing["state"] == "denied"
    assert marketing["expires_at"] is None
    entries = history(client, body["subject_id"])
    assert len(entries) == 2
    assert body["version"] == entries[-1]["version"]
    assert {e["jurisdiction"] for e in entries} == {"UK"}
    again = record(client, "ana.example@example.com", {"location": "denied"}, notice=None)
    assert again["subject_id"] == body["subject_id"]
    assert again["version"] > body["version"]
    assert set(again["purposes"]) == {"analytics", "marketing", "location"}
    assert consent_state(client, body["subject_id"])["jurisdiction"] == "UK"


def test_only_grants_expire(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """API.md: "Only grants expire (after `consent_ttl_days`, default 395: the check then says
    `expired`); denials and withdrawals never lapse.\""""
    clock = install_clock(monkeypatch)
    resp = client.put(
        "/v1/purposes/analytics",
        headers=auth(),
        json={
            "name": "Analytics",
            "legal_basis": "consent",
            "retention_days": 395,
            "consent_ttl_days": 1,
        },
    )
    assert resp.status_code == 200, resp.text
    publish(client)
    start = clock()
    body = record(client, "ben", {"analytics": "granted", "marketing": "granted"})
    record(client, "ben", {"personalization": "denied"}, notice=None)
    withdraw(client, "ben", ["location"])
    assert parse(body["purposes"]["analytics"]["expires_at"]) == start + timedelta(days=1)
    assert parse(body["purposes"]["marketing"]["expires_at"]) == start + timedelta(days=395)
    assert check(client, "ben", "analytics")["reason"] == "granted"
    clock.advance(days=1, seconds=-1)
    assert check(client, "ben", "analytics")["reason"] == "granted"
    clock.moment = start + timedelta(days=2)
    expired = check(client, "ben", "analytics")
    assert (expired["allowed"], expired["reason"]) == (False, "expired")
    assert check(client, "ben", "marketing")["reason"] == "granted"
    clock.moment = start + timedelta(days=3650)
    reasons = {p: check(client, "ben", p)["reason"] for p in ("marketing", "personalization")}
    assert reasons == {"marketing": "expired", "personalization": "denied"}
    location = check(client, "ben", "location")
    assert (location["allowed"], location["reason"]) == (False, "denied")
    # A new grant starts a new lifetime.
    renewed = record(client, "ben", {"analytics": "granted"})
    assert parse(renewed["purposes"]["analytics"]["expires_at"]) == clock() + timedelta(days=1)
    assert check(client, "ben", "analytics")["reason"] == "granted"


def special_purpose(client: TestClient, key: str, condition: str) -> None:
    body = {
        "name": key,
        "legal_basis": "consent",
        "retention_days": 30,
        "special_category_condition": condition,
    }
    assert client.put(f"/v1/purposes/{key}", headers=auth(), json=body).status_code == 201


def test_special_category_condition_a_needs_explicit_consent(client: TestClient) -> None:
    """API.md: "A grant of a purpose with special-category condition `a` needs `"explicit": true`
    and evidence (`explicit_consent_required`)"; other conditions do not."""
    special_purpose(client, "health_tips", "a")
    special_purpose(client, "health_claims", "f")
    publish(client, "health", "1", ["health_tips", "health_claims"], "Health notice, v1.")
    notice = {"id": "health", "version": "1"}
    subject_id = record(client, "cara", {"health_tips": "denied"}, notice=None)["subject_id"]
    before = history(client, subject_id)
    base = {"subject": ref("cara"), "purposes": {"health_tips": "granted"}, "source": "app"}
    evidence = {"method": "double opt-in", "screen": "health-v1"}
    for extra in (
        {},
        {"explicit": False, "evidence": evidence},
        {"explicit": True},
        {"explicit": True, "evidence": {}},
    ):
        resp = post_consent(client, base | {"notice": notice} | extra)
        problem = assert_problem(resp, 422, "explicit_consent_required")
        assert problem["purpose"] == "health_tips"
        assert history(client, subject_id) == before
    body = record(
        client,
        "cara",
        {"health_tips": "granted", "health_claims": "granted"},
        notice=notice,
        explicit=True,
        evidence=evidence,
    )
    assert body["purposes"]["health_tips"]["state"] == "granted"
    entries = {e["purpose"]: e for e in history(client, subject_id)[len(before) :]}
    assert entries["health_tips"]["explicit"] is True
    assert entries["health_tips"]["evidence"] == evidence
    assert record(client, "cara.two", {"health_claims": "granted"}, notice=notice)
    assert check(client, "cara", "health_tips")["reason"] == "granted"


def test_children_need_parental_authorization(client: TestClient) -> None:
    """API.md: "below `CONSENTRY_DIGITAL_CONSENT_AGE` (default 16; Art. 8) a grant needs
    `evidence.parental_authorization` (`parental_authorization_required`) ... An age band
    counts as below the age when its lowest age is; `unknown` counts as adult.\""""
    publish(client)
    for band in ("under_13", "13_15"):
        body = {
            "subject": ref(f"child.{band}"),
            "purposes": {"analytics": "granted"},
            "source": "app",
            "notice": NOTICE,
            "age_band": band,
        }
        problem = assert_problem(post_consent(client, body), 422, "parental_authorization_required")
        assert problem["purpose"] == "analytics"
        other = body | {"evidence": {"note": "no parent here"}}
        assert_problem(post_consent(client, other), 422, "parental_authorization_required")
        parent = {"parental_authorization": {"by": "parent@example.com", "method": "card"}}
        granted = record(
            client, f"child.{band}", {"analytics": "granted"}, age_band=band, evidence=parent
        )
        assert granted["purposes"]["analytics"]["state"] == "granted"
        # Denials need no authorisation.
        record(client, f"child.{band}", {"marketing": "denied"}, age_band=band, notice=None)
    for band in ("16_17", "adult", "unknown"):
        body = record(client, f"teen.{band}", {"analytics": "granted"}, age_band=band)
        assert body["purposes"]["analytics"]["state"] == "granted"
        assert consent_state(client, body["subject_id"])["age_band"] == band
    # Without any age band a subject counts as adult.
    assert record(client, "no.band", {"analytics": "granted"})["purposes"]
    # A grant by a TC string is a grant too.
    body = {
        "subject": ref("child.tcf"),
        "tcf": tc_string(range(1, 11), {1}),
        "source": "web",
        "notice": NOTICE,
        "age_band": "under_13",
    }
    assert_problem(post_consent(client, body), 422, "parental_authorization_required")


def test_the_age_band_is_remembered_for_later_grants(client: TestClient) -> None:
    """The age band is an attribute of the subject: a later grant without `age_band` still
    needs parental authorisation; a later write with another band replaces it."""
    publish(client)
    subject_id = record(client, "dan", {"marketing": "denied"}, notice=None, age_band="13_15")[
        "subject_id"
    ]
    assert consent_state(client, subject_id)["age_band"] == "13_15"
    before = history(client, subject_id)
    body = {"subject": ref("dan"), "purposes": {"analytics": "granted"}, "source": "web"}
    resp = post_consent(client, body | {"notice": NOTICE})
    assert_problem(resp, 422, "parental_authorization_required")
    assert history(client, subject_id) == before
    resp = post_consent(client, body | {"notice": NOTICE, "age_band": "unknown"})
    assert resp.status_code == 200, resp.text
    assert consent_state(client, subject_id)["age_band"] == "unknown"
    record(client, "dan", {"personalization": "granted"})


def test_digital_consent_age_is_a_setting(settings: Settings) -> None:
    """With `CONSENTRY_DIGITAL_CONSENT_AGE=13` a 13-15 year old grants alone; under 13 not."""
    younger = dataclasses.replace(settings, digital_consent_age=13)
    with TestClient(create_app(younger)) as client:
        publish(client)
        assert record(client, "eve", {"analytics": "granted"}, age_band="13_15")["purposes"]
        body = {
            "subject": ref("finn"),
            "purposes": {"analytics": "granted"},
            "source": "web",
            "notice": NOTICE,
            "age_band": "under_13",
        }
        assert_problem(post_consent(client, body), 422, "parental_authorization_required")


def test_every_consent_purpose_can_be_granted_with_the_notice(client: TestClient) -> None:
    """A notice that covers every consent purpose lets each be granted in one call, each an
    entry of its own with consecutive versions."""
    publish(client)
    body = record(client, "gus", dict.fromkeys(CONSENT_PURPOSES, "granted"))
    assert {p["state"] for p in body["purposes"].values()} == {"granted"}
    versions = [e["version"] for e in history(client, body["subject_id"])]
    assert versions == list(range(versions[0], versions[0] + len(CONSENT_PURPOSES)))
    assert body["version"] == versions[-1]


def test_the_digital_consent_age_follows_the_jurisdiction(client: TestClient) -> None:
    """API.md: "below the digital-consent age of the subject's jurisdiction (... the UK's is
    13 ...)": a UK 13-15 year old grants alone, an EU one (and one of no jurisdiction, counted
    as EU) needs a parent; under 13 needs one in the UK too. The subject's jurisdiction on
    record counts when a write names none."""
    publish(client)
    parent = {"parental_authorization": {"by": "parent@example.com", "method": "card"}}

    def grant(who: str, band: str, **extra: str) -> int:
        body = {
            "subject": ref(who),
            "purposes": {"analytics": "granted"},
            "source": "app",
            "notice": NOTICE,
            "age_band": band,
        }
        return int(post_consent(client, body | extra).status_code)

    assert grant("uk.teen", "13_15", jurisdiction="UK") == 200
    problem = assert_problem(
        post_consent(
            client,
            {
                "subject": ref("uk.child"),
                "purposes": {"analytics": "granted"},
                "source": "app",
                "notice": NOTICE,
                "age_band": "under_13",
                "jurisdiction": "UK",
            },
        ),
        422,
        "parental_authorization_required",
    )
    assert "13" in problem["detail"]
    for where in ("EU", "US", "US-CA", "OTHER"):
        assert grant(f"teen.{where}", "13_15", jurisdiction=where) == 422, where
    assert grant("teen.nowhere", "13_15") == 422
    # The jurisdiction on record (set by an earlier write) counts when a write names none.
    record(client, "uk.later", {"marketing": "denied"}, notice=None, jurisdiction="UK")
    assert grant("uk.later", "13_15") == 200
    record(client, "eu.later", {"marketing": "denied"}, notice=None, jurisdiction="EU")
    assert grant("eu.later", "13_15") == 422
    granted = record(
        client, "eu.later", {"analytics": "granted"}, age_band="13_15", evidence=parent
    )
    assert granted["purposes"]["analytics"]["state"] == "granted"


def test_the_setting_is_the_age_outside_the_uk(settings: Settings) -> None:
    """`CONSENTRY_DIGITAL_CONSENT_AGE` sets the age of every jurisdiction but the UK's, whose
    13 does not move with it."""
    younger = dataclasses.replace(settings, digital_consent_age=14)
    with TestClient(create_app(younger)) as client:
        publish(client)
        for where, status in (("EU", 422), ("US", 422), ("UK", 200)):
            body = {
                "subject": ref(f"thirteen.{where}"),
                "purposes": {"analytics": "granted"},
                "source": "app",
                "notice": NOTICE,
                "age_band": "13_15",
                "jurisdiction": where,
            }
            assert post_consent(client, body).status_code == status, where
