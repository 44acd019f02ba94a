"""Browser keys through HTTP, on SQLite and PostgreSQL: honoured only as X-Consentry-Key from
their origins, CORS for exactly those, customer_id vouched for by identity_proof, rate limits
that never hold back a withdrawal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from consentry import clock
from consentry.app import create_app
from consentry.auth.identity import proof
from consentry.settings import Settings
from tests.conftest import auth

ORIGIN = "https://shop.example.com"
OTHER = "https://elsewhere.example.net"


def cookie(value: str) -> dict[str, Any]:
    return {"identities": [{"type": "cookie_id", "value": value}]}


def customer(value: str) -> dict[str, Any]:
    return {"identities": [{"type": "customer_id", "value": value}]}


def mint(client: TestClient, *origins: str) -> str:
    resp = client.post(
        "/v1/api-keys", headers=auth(), json={"role": "browser", "origins": list(origins)}
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["origins"] == list(origins)
    return str(resp.json()["key"])


def headers(key: str, subject: str, origin: str = ORIGIN) -> dict[str, str]:
    return {"X-Consentry-Key": key, "Origin": origin, "X-Consentry-Subject": subject}


def deny(value: str) -> dict[str, Any]:
    return {"subject": cookie(value), "purposes": {"analytics": "denied"}, "source": "web"}


@pytest.fixture
def limited(settings: Settings) -> Iterator[TestClient]:
    """An app whose browser keys may make 1 request every 100 seconds (bursts of 1): no
    token comes back while a test runs, however slow the machine."""
    with TestClient(create_app(replace(settings, browser_rate_limit=0.01))) as client:
        yield client


def test_a_browser_key_is_honoured_only_from_its_origins(client: TestClient) -> None:
    key = mint(client, ORIGIN, "http://localhost:5173")
    good = headers(key, "cookie_id=ck-1")
    resp = client.post("/v1/consents", headers=good, json=deny("ck-1"))
    assert resp.status_code == 200, resp.text
    assert resp.headers["access-control-allow-origin"] == ORIGIN
    assert "Origin" in resp.headers["vary"]
    assert "access-control-allow-credentials" not in resp.headers
    dev = headers(key, "cookie_id=ck-1", "http://localhost:5173")
    assert client.get("/v1/purposes", headers=dev).status_code == 200

    elsewhere = client.post(
        "/v1/consents", headers=headers(key, "cookie_id=ck-1", OTHER), json=deny("ck-1")
    )
    assert elsewhere.status_code == 403
    assert elsewhere.json()["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in elsewhere.headers

    no_origin = {k: v for k, v in good.items() if k != "Origin"}
    resp = client.post("/v1/consents", headers=no_origin, json=deny("ck-1"))
    assert resp.status_code == 403
    assert resp.json()["code"] == "origin_not_allowed"

    # Never a bearer key, and a secret key is never taken as a publishable one.
    assert client.get("/v1/purposes", headers=auth(key)).status_code == 401
    secret = client.post("/v1/api-keys", headers=auth(), json={"role": "collector"}).json()["key"]
    resp = client.get("/v1/purposes", headers={"X-Consentry-Key": secret, "Origin": ORIGIN})
    assert resp.status_code == 401
    assert "access-control-allow-origin" not in resp.headers


def test_origins_must_be_https_or_loopback_http(client: TestClient) -> None:
    for bad in (["http://shop.example.com"], ["https://shop.example.com/path"], [], ["*"]):
        resp = client.post("/v1/api-keys", headers=auth(), json={"role": "browser", "origins": bad})
        assert resp.status_code == 422, (bad, resp.text)
    resp = client.post(
        "/v1/api-keys", headers=auth(), json={"role": "collector", "origins": [ORIGIN]}
    )
    assert resp.status_code == 422


def test_preflight_is_answered_for_listed_origins_only(client: TestClient) -> None:
    mint(client, ORIGIN)
    ask = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-consentry-key, x-consentry-subject",
    }
    resp = client.options("/v1/events", headers={"Origin": ORIGIN, **ask})
    assert resp.status_code == 204
    assert resp.headers["access-control-allow-origin"] == ORIGIN
    assert set(resp.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST"}
    allowed = {h.lower() for h in resp.headers["access-control-allow-headers"].split(", ")}
    assert {"x-consentry-key", "content-type", "x-consentry-subject"} <= allowed
    assert resp.headers["vary"] == "Origin"
    assert "access-control-allow-credentials" not in resp.headers

    for origin, extra in ((OTHER, {}), (ORIGIN, {"Access-Control-Request-Method": "DELETE"})):
        resp = client.options("/v1/events", headers={"Origin": origin, **ask, **extra})
        assert resp.status_code == 403
        assert not [h for h in resp.headers if h.startswith("access-control-")]
    resp = client.options(
        "/v1/events",
        headers={"Origin": ORIGIN, **ask, "Access-Control-Request-Headers": "authorization"},
    )
    assert resp.status_code == 403


def test_a_revoked_key_no_longer_opens_its_origins(client: TestClient) -> None:
    key = mint(client, ORIGIN)
    key_id = key.split("_")[1]
    assert client.delete(f"/v1/api-keys/{key_id}", headers=auth()).status_code == 200
    ask = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    assert client.options("/v1/consents", headers=ask).status_code == 403
    resp = client.get("/v1/purposes", headers=headers(key, "cookie_id=ck-1"))
    assert resp.status_code == 401


def test_a_browser_key_acts_only_for_the_subject_it_names(client: TestClient) -> None:
    key = mint(client, ORIGIN)
    mine = headers(key, "cookie_id=ck-mine")
    assert client.post("/v1/consents", headers=mine, json=deny("ck-mine")).status_code == 200
    other = client.post("/v1/consents", headers=auth(), json=deny("ck-other")).json()
    resp = client.get(f"/v1/subjects/{other['subject_id']}/consent/token", headers=mine)
    assert resp.status_code == 403
    assert resp.json()["code"] == "subject_not_allowed"
    # By subject_id, even its own: only identities are vouched for.
    own = client.post(
        "/v1/consents/check",
        headers=mine,
        json={"subject": cookie("ck-mine"), "purpose": "analytics"},
    )
    assert own.status_code == 200
    body = {"subject": {"subject_id": other["subject_id"]}, "purpose": "analytics"}
    assert client.post("/v1/consents/check", headers=mine, json=body).status_code == 403
    # No subject named at all.
    bare = {k: v for k, v in mine.items() if k != "X-Consentry-Subject"}
    assert client.post("/v1/consents", headers=bare, json=deny("ck-mine")).status_code == 403
    # An e-mail address is never a browser's to name.
    body = {
        "subject": {"identities": [{"type": "email", "value": "ana@example.com"}]},
        "purposes": "all",
    }
    assert client.post("/v1/consents/withdraw", headers=mine, json=body).status_code == 403
    resp = client.post(
        "/v1/consents", headers=headers(key, "email=ana@example.com"), json=deny("ck-mine")
    )
    assert resp.status_code == 422
    # A batch with one event of another subject is refused whole.
    events = [
        {
            "event_id": f"e{i}",
            "event_type": "page_view",
            "occurred_at": "2026-01-01T00:00:00Z",
            "subject": cookie(v),
        }
        for i, v in enumerate(("ck-mine", "ck-other"))
    ]
    resp = client.post("/v1/events", headers=mine, json={"events": events})
    assert resp.status_code == 403
    assert resp.json()["code"] == "subject_not_allowed"
    assert resp.headers["access-control-allow-origin"] == ORIGIN


def proved(secret: str, customer_id: str, ahead: timedelta) -> str:
    expires_at = clock.rfc3339(clock.now() + ahead)
    return (
        f"customer_id={customer_id}&expires_at={expires_at}"
        f"&identity_proof={proof(secret, customer_id, expires_at)}"
    )


@pytest.fixture
def secret(client: TestClient) -> str:
    rt = client.app.state.runtime  # type: ignore[attr-defined]
    with rt.store.write() as conn:
        _, made = rt.identity_secrets.create(conn, "shop", actor="test")
    return str(made)


def test_a_customer_id_needs_a_valid_identity_proof(client: TestClient, secret: str) -> None:
    key = mint(client, ORIGIN)
    body = {"subject": customer("C-1001"), "purposes": {"analytics": "denied"}, "source": "web"}
    good = headers(key, proved(secret, "C-1001", timedelta(hours=1)))
    resp = client.post("/v1/consents", headers=good, json=body)
    assert resp.status_code == 200, resp.text
    subject_id = resp.json()["subject_id"]
    assert client.get(f"/v1/subjects/{subject_id}/consent/token", headers=good).status_code == 200

    wrong = proved("cis_0_not-the-secret", "C-1001", timedelta(hours=1))
    expired = proved(secret, "C-1001", -timedelta(seconds=1))
    too_far = proved(secret, "C-1001", timedelta(hours=25))
    another = proved(secret, "C-1002", timedelta(hours=1))
    missing = "customer_id=C-1001"
    for subject in (wrong, expired, too_far):
        resp = client.post("/v1/consents", headers=headers(key, subject), json=body)
        assert resp.status_code == 403, resp.text
        assert resp.json()["code"] == "invalid_identity_proof"
        assert resp.headers["access-control-allow-origin"] == ORIGIN
    resp = client.post("/v1/consents", headers=headers(key, another), json=body)
    assert resp.json()["code"] == "subject_not_allowed"
    assert client.post("/v1/consents", headers=headers(key, missing), json=body).status_code == 422
    # A proof made for one expiry does not hold for another.
    sooner = clock.rfc3339(clock.now() + timedelta(minutes=30))
    later = clock.rfc3339(clock.now() + timedelta(minutes=40))
    tampered = (
        f"customer_id=C-1001&expires_at={later}&identity_proof={proof(secret, 'C-1001', sooner)}"
    )
    resp = client.post("/v1/consents", headers=headers(key, tampered), json=body)
    assert resp.json()["code"] == "invalid_identity_proof"


def test_a_revoked_identity_secret_vouches_for_nobody(client: TestClient, secret: str) -> None:
    key = mint(client, ORIGIN)
    rt = client.app.state.runtime  # type: ignore[attr-defined]
    with rt.store.write() as conn:
        rt.identity_secrets.revoke(conn, secret.split("_")[1], actor="test")
    subject = proved(secret, "C-1001", timedelta(hours=1))
    body = {"subject": customer("C-1001"), "purposes": "all", "source": "web"}
    resp = client.post("/v1/consents/withdraw", headers=headers(key, subject), json=body)
    assert resp.json()["code"] == "invalid_identity_proof"


def test_over_the_limit_429_with_retry_after_but_never_a_withdrawal(limited: TestClient) -> None:
    key = mint(limited, ORIGIN)
    h = headers(key, "cookie_id=ck-busy")
    check = {"subject": cookie("ck-busy"), "purpose": "analytics"}
    codes = [
        limited.post("/v1/consents/check", headers=h, json=check).status_code for _ in range(4)
    ]
    assert codes == [200, 429, 429, 429]
    resp = limited.post("/v1/consents/check", headers=h, json=check)
    assert resp.status_code == 429
    assert resp.json()["code"] == "rate_limited"
    assert int(resp.headers["retry-after"]) >= 1
    assert resp.headers["access-control-allow-origin"] == ORIGIN
    assert "Retry-After" in resp.headers["access-control-expose-headers"]
    # Leaving is as easy as joining: withdrawals, denials and GPC are never held back.
    for _ in range(5):
        body = {"subject": cookie("ck-busy"), "purposes": "all", "source": "web"}
        assert limited.post("/v1/consents/withdraw", headers=h, json=body).status_code == 200
        assert limited.post("/v1/consents", headers=h, json=deny("ck-busy")).status_code == 200
        gpc = {"subject": cookie("ck-busy"), "purposes": {}, "source": "web", "gpc": True}
        assert limited.post("/v1/consents", headers=h, json=gpc).status_code == 200
    grant = {"subject": cookie("ck-busy"), "purposes": {"analytics": "granted"}, "source": "web"}
    assert limited.post("/v1/consents", headers=h, json=grant).status_code == 429
    # A grant is a grant, GPC or a TC string riding with it: limited like any other.
    for riding in ({"gpc": True}, {"tcf": "CQxyz", "source": "tcf", "purposes": {}}):
        resp = limited.post("/v1/consents", headers=h, json=grant | riding)
        assert resp.status_code == 429, riding
    with_header = {**h, "Sec-GPC": "1"}
    assert limited.post("/v1/consents", headers=with_header, json=grant).status_code == 429
    alone = {"subject": cookie("ck-busy"), "purposes": {}, "source": "gpc"}
    assert limited.post("/v1/consents", headers=with_header, json=alone).status_code == 200
    # Each client address has its own bucket: another visitor is not held back.
    other = TestClient(limited.app, client=("203.0.113.7", 50000))
    h2 = headers(key, "cookie_id=ck-calm")
    assert (
        other.post(
            "/v1/consents/check",
            headers=h2,
            json={"subject": cookie("ck-calm"), "purpose": "analytics"},
        ).status_code
        == 200
    )


def test_secret_keys_are_limited_only_when_configured(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        codes = {client.get("/v1/purposes", headers=auth()).status_code for _ in range(30)}
        assert codes == {200}
    with TestClient(create_app(replace(settings, rate_limit=0.01))) as client:
        codes = {client.get("/v1/purposes", headers=auth()).status_code for _ in range(5)}
        assert codes == {200, 429}
        body = {"subject": cookie("ck-x"), "purposes": "all", "source": "api"}
        assert client.post("/v1/consents/withdraw", headers=auth(), json=body).status_code == 200
        objection = {
            "type": "objection",
            "subject": cookie("ck-x"),
            "jurisdiction": "EU",
            "purposes": ["marketing"],
        }
        assert client.post("/v1/requests", headers=auth(), json=objection).status_code == 202
        access = {"type": "access", "subject": cookie("ck-x"), "jurisdiction": "EU"}
        assert client.post("/v1/requests", headers=auth(), json=access).status_code == 429


def test_notices_are_read_by_browser_keys(client: TestClient) -> None:
    key = mint(client, ORIGIN)
    for version in ("1", "2"):
        notice = {"version": version, "text": f"Notice v{version}.", "purposes": ["analytics"]}
        assert client.put("/v1/notices/site", headers=auth(), json=notice).status_code == 201
    h = headers(key, "cookie_id=ck-1")
    resp = client.get("/v1/notices/site", headers=h)
    assert resp.status_code == 200
    assert (resp.json()["version"], resp.json()["text"]) == ("2", "Notice v2.")
    assert client.get("/v1/notices/site?version=1", headers=h).json()["text"] == "Notice v1."
    assert client.get("/v1/notices/nope", headers=h).json()["code"] == "notice_not_found"


def test_a_beacon_carries_its_key_and_subject_in_the_query(client: TestClient) -> None:
    key = mint(client, ORIGIN)
    schema = {
        "purposes": ["security"],
        "fields": {
            "page": {"type": "string", "category": "system.operations", "treatment": "keep"}
        },
    }
    assert client.put("/v1/schemas/page_hide", headers=auth(), json=schema).status_code == 201
    batch = {
        "events": [
            {
                "event_id": "beacon-1",
                "event_type": "page_hide",
                "occurred_at": "2026-01-01T00:00:00Z",
                "subject": {"identities": [{"type": "device_id", "value": "dev-1"}]},
                "properties": {"page": "/"},
            }
        ]
    }
    query = urlencode({"consentry_key": key, "consentry_subject": "device_id=dev-1"})
    plain = {"Content-Type": "text/plain;charset=UTF-8", "Origin": ORIGIN}
    body = json.dumps(batch)
    resp = client.post(f"/v1/events?{query}", headers=plain, content=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["results"][0]["event_id"] == "beacon-1"
    # The same rules as the headers: its origins only, its subject only.
    elsewhere = client.post(f"/v1/events?{query}", headers={**plain, "Origin": OTHER}, content=body)
    assert elsewhere.status_code == 403
    other = urlencode({"consentry_key": key, "consentry_subject": "device_id=dev-2"})
    assert client.post(f"/v1/events?{other}", headers=plain, content=body).status_code == 403
    # text/plain is taken only from a beacon, and a key in the query only by the events route.
    assert client.post("/v1/events", headers=plain, content=body).status_code == 415
    # An empty key in the query is a beacon without a key: unauthenticated, not a bad type.
    empty = client.post("/v1/events?consentry_key=", headers=plain, content=body)
    assert empty.status_code == 401, empty.text
    resp = client.post(f"/v1/consents?{query}", headers={"Origin": ORIGIN}, json=deny("dev-1"))
    assert resp.status_code == 401


def test_a_grant_claims_only_what_a_browser_can_vouch_for(client: TestClient) -> None:
    key = mint(client, ORIGIN)
    mine = headers(key, "cookie_id=ck-mine")

    def grant(**extra: Any) -> dict[str, Any]:
        return {"subject": cookie("ck-mine"), "purposes": {"analytics": "granted"}} | extra

    tcf = {"subject": cookie("ck-mine"), "tcf": "CQxyz", "purposes": {}}
    for body in (
        tcf | {"source": "agent"},
        tcf | {"source": "tcf", "age_band": "under_13", "evidence": {"parental_authorization": {}}},
        grant(source="agent"),
        grant(source="import"),
        grant(),
        grant(source="web", evidence={"parental_authorization": {"method": "card"}}),
        grant(source="app", evidence={"opt_in_confirmed": True}),
    ):
        resp = client.post("/v1/consents", headers=mine, json=body)
        assert resp.status_code == 403, body
        assert resp.json()["code"] == "claim_not_allowed"
        assert resp.headers["access-control-allow-origin"] == ORIGIN
    # The visitor's own channel, no evidence: on to the ledger's own rules.
    allowed = client.post("/v1/consents", headers=mine, json=grant(source="web"))
    assert allowed.json()["code"] == "notice_required"
    # Leaving is never held back: a denial or a withdrawal, whatever its source.
    denial = deny("ck-mine") | {"source": "agent"}
    assert client.post("/v1/consents", headers=mine, json=denial).status_code == 200
    out = {"subject": cookie("ck-mine"), "purposes": "all", "source": "agent"}
    assert client.post("/v1/consents/withdraw", headers=mine, json=out).status_code == 200
    # A secret key attests what the site's server knows.
    attested = grant(source="agent") | {"evidence": {"opt_in_confirmed": True}}
    resp = client.post("/v1/consents", headers=auth(), json=attested)
    assert resp.json().get("code") != "claim_not_allowed"
