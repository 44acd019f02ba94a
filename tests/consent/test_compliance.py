"""GET /v1/subjects/{id}/compliance and the summary's statuses and coverage, each status reached
by real consent calls, restriction and erasure requests, and a moved clock."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry import clock as real_clock
from consentry.settings import Settings
from tests.conftest import auth
from tests.consent.helpers import CONSENT_PURPOSES, install_clock, publish, record, ref, withdraw
from tests.http.test_conventions import assert_problem, make_key

VERIFIED = {"method": "id_document", "level": "high"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Requests run when the test says (no background runner)."""
    return dataclasses.replace(settings, dsr_poll_seconds=0)


def compliance(client: TestClient, subject_id: str, key: str | None = None) -> dict[str, Any]:
    headers = auth(key) if key else auth()
    resp = client.get(f"/v1/subjects/{subject_id}/compliance", headers=headers)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def summary(client: TestClient, **params: str) -> dict[str, Any]:
    resp = client.get("/v1/compliance/summary", headers=auth(), params=params)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def dsr(client: TestClient, who: str, kind: str, **extra: Any) -> None:
    body = {"type": kind, "subject": ref(who), "jurisdiction": "EU", **extra}
    resp = client.post("/v1/requests", headers=auth(), json=body)
    assert resp.status_code == 202, resp.text
    client.app.state.runtime.runner.run_pending()  # type: ignore[attr-defined]


def statuses(client: TestClient, ids: dict[str, str]) -> dict[str, str]:
    return {who: compliance(client, sid)["status"] for who, sid in ids.items()}


def test_every_status_per_subject_and_in_the_summary(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = install_clock(monkeypatch)
    publish(client)
    # A US-CA adult never asked about advertising may be used until they opt out (CCPA).
    resp = client.put(
        "/v1/purposes/advertising",
        headers=auth(),
        json={
            "name": "Advertising",
            "legal_basis": "consent",
            "retention_days": 395,
            "sale_or_share": True,
            "us_ca_model": "opt_out",
        },
    )
    assert resp.status_code == 200, resp.text
    everything = dict.fromkeys(CONSENT_PURPOSES, "granted")
    ids = {
        "full": record(client, "full", everything)["subject_id"],
        "part": record(client, "part", {"analytics": "granted"})["subject_id"],
        "out": record(client, "out", {"analytics": "denied"}, notice=None)["subject_id"],
        "rest": record(client, "rest", {"analytics": "granted"})["subject_id"],
        "gone": record(client, "gone", {"analytics": "granted"})["subject_id"],
    }
    others = {k: v for k, v in everything.items() if k != "advertising"}
    ids["cal"] = record(client, "cal", others, jurisdiction="US-CA")["subject_id"]
    created = client.post("/v1/subjects", headers=auth(), json={"subject": ref("none")})
    assert created.status_code in {200, 201}, created.text
    ids["none"] = created.json()["subject_id"]
    # Known only by its jurisdiction, never by a consent write: advertising is allowed.
    body = {"subject": ref("ca"), "jurisdiction": "US-CA"}
    created = client.post("/v1/subjects", headers=auth(), json=body)
    assert created.status_code == 201, created.text
    ids["ca"] = created.json()["subject_id"]

    cal = compliance(client, ids["cal"])
    assert cal["status"] == "NOT_OPTED_OUT"
    assert cal["purposes"]["advertising"] == "not_opted_out"
    assert "may_ask_again_at" not in cal
    opted_out_at = clock.advance(minutes=5)
    withdraw(client, "cal", ["advertising"])
    dsr(client, "rest", "restriction", ground="18_1_a", verification=VERIFIED)
    dsr(client, "gone", "erasure", verification=VERIFIED)

    full = compliance(client, ids["full"])
    assert full["purposes"] == dict.fromkeys(sorted(CONSENT_PURPOSES), "granted")
    cal = compliance(client, ids["cal"])
    assert cal["purposes"]["advertising"] == "denied"
    # §1798.135(c)(4): 12 months after the opt-out before asking again.
    assert cal["may_ask_again_at"] == real_clock.rfc3339(
        opted_out_at.replace(year=opted_out_at.year + 1)
    )
    gone = compliance(client, ids["gone"])
    assert (gone["status"], gone["purposes"]) == ("ERASED", {})
    assert compliance(client, ids["rest"])["purposes"]["analytics"] == "restricted"
    assert compliance(client, ids["out"])["version"] >= 1
    assert statuses(client, ids) == {
        "full": "FULLY_OPTED_IN",
        "part": "PARTIAL_OPT_IN",
        "out": "FULLY_OPTED_OUT",
        "rest": "RESTRICTED",
        "gone": "ERASED",
        "cal": "PARTIAL_OPT_IN",
        "none": "NOT_ASKED",
        "ca": "PARTIAL_OPT_IN",
    }
    body = summary(client)
    assert _nonzero(body["status_counts"]) == {
        "FULLY_OPTED_IN": 1,
        "PARTIAL_OPT_IN": 3,
        "FULLY_OPTED_OUT": 1,
        "RESTRICTED": 1,
        "ERASED": 1,
        "NOT_ASKED": 1,
    }
    assert set(body["coverage"]) == set(CONSENT_PURPOSES)
    # The erased subject is no longer counted anywhere in coverage.
    assert body["coverage"]["analytics"] == _cov(granted=4, denied=1, never_asked=2)
    assert body["coverage"]["advertising"] == _cov(granted=1, withdrawn=1, never_asked=5)

    # A new consent-based purpose: nobody has been asked about it yet.
    resp = client.put(
        "/v1/purposes/surveys",
        headers=auth(),
        json={"name": "Surveys", "legal_basis": "consent", "retention_days": 30},
    )
    assert resp.status_code == 201, resp.text
    assert compliance(client, ids["full"])["status"] == "PARTIAL_OPT_IN"
    counts = summary(client)["status_counts"]
    assert (counts["FULLY_OPTED_IN"], counts["PARTIAL_OPT_IN"]) == (0, 4)

    # Every grant lapses (395 days): statuses and coverage follow the clock, with no write.
    clock.advance(days=400)
    assert statuses(client, ids) == {
        "full": "EXPIRED",
        "part": "EXPIRED",
        "out": "FULLY_OPTED_OUT",
        "rest": "RESTRICTED",
        "gone": "ERASED",
        "cal": "FULLY_OPTED_OUT",
        "none": "NOT_ASKED",
        "ca": "PARTIAL_OPT_IN",
    }
    body = summary(client)
    assert _nonzero(body["status_counts"]) == {
        "EXPIRED": 2,
        "FULLY_OPTED_OUT": 2,
        "PARTIAL_OPT_IN": 1,
        "RESTRICTED": 1,
        "ERASED": 1,
        "NOT_ASKED": 1,
    }
    assert body["coverage"]["analytics"] == _cov(expired=4, denied=1, never_asked=2)
    assert body["coverage"]["surveys"] == _cov(never_asked=7)


def test_compliance_reads_follow_the_consent_reads(client: TestClient) -> None:
    """The roles of GET /v1/subjects/{id}/consent; an unknown subject is 404."""
    publish(client)
    subject_id = record(client, "role.test", {"analytics": "granted"})["subject_id"]
    keys = {r: make_key(client, r) for r in ("collector", "operator", "analyst", "auditor")}
    url = f"/v1/subjects/{subject_id}/compliance"
    for role in ("collector", "analyst", "auditor"):
        assert_problem(client.get(url, headers=auth(keys[role])), 403, "forbidden")
    assert compliance(client, subject_id, keys["operator"])["status"] == "PARTIAL_OPT_IN"
    missing = client.get("/v1/subjects/sub_nobody/compliance", headers=auth())
    assert_problem(missing, 404, "subject_not_found")


def _cov(**counts: int) -> dict[str, int]:
    return {
        k: counts.get(k, 0) for k in ("granted", "denied", "withdrawn", "expired", "never_asked")
    }


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {k: n for k, n in counts.items() if n}
