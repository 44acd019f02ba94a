"""Helpers shared by the consent tests: fictional people, the notice, calls over HTTP, a clock."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry import clock
from consentry.consent import tcf
from tests.conftest import auth

# The consent-based purposes of a fresh install (API.md, Purposes and notices).
CONSENT_PURPOSES = (
    "advertising",
    "analytics",
    "location",
    "marketing",
    "personalization",
    "third_party_sharing",
)
SALE_OR_SHARE = ("advertising", "third_party_sharing")
NOTICE_TEXT = "Example Ltd privacy notice, version 1: analytics, ads, location, offers, sharing."
NOTICE = {"id": "privacy", "version": "1"}
TC_MOMENT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def ref(who: str) -> dict[str, Any]:
    """A subject reference: a subject id as is, anything else as a fictional e-mail address."""
    if who.startswith("sub_"):
        return {"subject_id": who}
    address = who if "@" in who else f"{who}@example.com"
    return {"identities": [{"type": "email", "value": address}]}


def tc_string(
    purposes: Iterable[int], special_features: Iterable[int] = (), policy: int = 4
) -> str:
    """A TC string made with `consentry.consent.tcf.encode` (v2.2 unless `policy` says not)."""
    return tcf.encode(
        tcf.TCString(
            created=TC_MOMENT,
            last_updated=TC_MOMENT,
            cmp_id=300,
            cmp_version=2,
            consent_screen=1,
            consent_language="EN",
            vendor_list_version=150,
            policy_version=policy,
            is_service_specific=True,
            use_non_standard_texts=False,
            special_feature_opt_ins=frozenset(special_features),
            purposes_consent=frozenset(purposes),
            purposes_li_transparency=frozenset({2, 7, 10}),
            purpose_one_treatment=False,
            publisher_cc="GB",
            vendor_consents=frozenset({28, 755}),
            vendor_legitimate_interests=frozenset({755}),
        )
    )


def publish(
    client: TestClient,
    notice_id: str = "privacy",
    version: str = "1",
    purposes: tuple[str, ...] | list[str] = CONSENT_PURPOSES,
    text: str = NOTICE_TEXT,
) -> dict[str, Any]:
    resp = client.put(
        f"/v1/notices/{notice_id}",
        headers=auth(),
        json={"version": version, "text": text, "purposes": list(purposes)},
    )
    assert resp.status_code in {200, 201}, resp.text
    return dict(resp.json())


def post_consent(
    client: TestClient, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Any:
    return client.post("/v1/consents", headers=auth() | (headers or {}), json=body)


def record(
    client: TestClient,
    who: str,
    purposes: dict[str, str],
    *,
    source: str = "web",
    notice: dict[str, str] | None = NOTICE,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """POST /v1/consents that must succeed; returns its body."""
    body: dict[str, Any] = {"subject": ref(who), "purposes": purposes, "source": source}
    if notice is not None:
        body["notice"] = notice
    resp = post_consent(client, body | extra, headers)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def withdraw(
    client: TestClient,
    who: str,
    purposes: list[str] | str,
    *,
    source: str = "web",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    resp = client.post(
        "/v1/consents/withdraw",
        headers=auth() | (headers or {}),
        json={"subject": ref(who), "purposes": purposes, "source": source},
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def check(client: TestClient, who: str, purpose: str) -> dict[str, Any]:
    resp = client.post(
        "/v1/consents/check", headers=auth(), json={"subject": ref(who), "purpose": purpose}
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def history(client: TestClient, subject_id: str, limit: int = 1000) -> list[dict[str, Any]]:
    """Every ledger entry of the subject, following `next` to the end."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    for _ in range(1000):
        resp = client.get(
            f"/v1/subjects/{subject_id}/consent/history", headers=auth(), params=params
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        items += body["items"]
        if body["next"] is None:
            return items
        params = {"limit": limit, "cursor": body["next"]}
    raise AssertionError("history paging did not end")


def consent_state(client: TestClient, subject_id: str) -> dict[str, Any]:
    resp = client.get(f"/v1/subjects/{subject_id}/consent", headers=auth())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def audit_entries(client: TestClient, subject_id: str) -> list[dict[str, Any]]:
    resp = client.get(
        "/v1/audit/entries", headers=auth(), params={"subject_id": subject_id, "limit": 1000}
    )
    assert resp.status_code == 200, resp.text
    return list(resp.json()["items"])


class FakeClock:
    """Stands in for `consentry.clock.now`, the single time source; starts at the real now."""

    def __init__(self) -> None:
        self.moment = clock.now()

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> datetime:
        self.moment += timedelta(**delta)
        return self.moment


def install_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Replace `consentry.clock.now` for the rest of the test."""
    fake = FakeClock()
    monkeypatch.setattr(clock, "now", fake)
    return fake
