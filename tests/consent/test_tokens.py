"""API.md "Consent": consent tokens (EdDSA JWTs) verify with PyJWT against the JWKS."""

from __future__ import annotations

import string
from datetime import datetime
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from consentry import clock
from tests.conftest import auth
from tests.consent.helpers import history, install_clock, publish, record, withdraw

CLAIMS = {"iss", "sub", "pur", "ver", "nsh", "iat", "exp"}
B64URL = string.ascii_letters + string.digits + "-_"


def verify(client: TestClient, token: str) -> dict[str, Any]:
    """Verify with PyJWT and the published JWKS only: `alg` EdDSA and a `kid` it lists."""
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    jwks = client.get("/.well-known/jwks.json").json()
    keys = {jwk["kid"]: jwt.PyJWK(jwk) for jwk in jwks["keys"]}
    assert header["kid"] in keys
    claims = jwt.decode(
        token,
        keys[header["kid"]],
        algorithms=["EdDSA"],
        issuer="consentry",
        options={"require": sorted(CLAIMS - {"nsh"})},
    )
    assert set(claims) == CLAIMS
    return dict(claims)


def fresh_token(client: TestClient, subject_id: str) -> dict[str, Any]:
    resp = client.get(f"/v1/subjects/{subject_id}/consent/token", headers=auth())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def flip(text: str, index: int) -> str:
    """`text` with the base64url character at `index` replaced by another one."""
    char = text[index]
    other = B64URL[(B64URL.index(char) + 1) % len(B64URL)]
    return text[:index] + other + text[index + 1 :]


def test_write_token_carries_the_granted_purposes_and_version(client: TestClient) -> None:
    """Token: JWT, `alg` EdDSA, `kid`; claims `iss`, `sub` (subject_id), `pur` (granted
    purposes), `ver` (ledger version), `nsh` (notice sha256), `iat`, `exp` (default 24
    hours)."""
    notice = publish(client)
    body = record(
        client,
        "yan",
        {"analytics": "granted", "personalization": "granted", "marketing": "denied"},
    )
    record(client, "yan", {"service_delivery": "granted"}, notice=None)
    body = record(client, "yan", {"location": "denied"}, notice=None)
    claims = verify(client, body["token"])
    assert claims["iss"] == "consentry"
    assert claims["sub"] == body["subject_id"]
    assert claims["pur"] == ["analytics", "personalization"]
    assert claims["ver"] == body["version"] == history(client, body["subject_id"])[-1]["version"]
    assert claims["nsh"] == notice["sha256"]
    assert claims["exp"] - claims["iat"] == 86_400
    expires = datetime.fromisoformat(body["token_expires_at"])
    assert int(expires.timestamp()) == claims["exp"]
    assert abs(claims["iat"] - clock.now().timestamp()) < 60


def test_fresh_token_follows_the_ledger(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`GET /v1/subjects/{id}/consent/token` issues a fresh one for the current state: a
    withdrawal or an expiry drops the purpose and the version follows the ledger."""
    fake = install_clock(monkeypatch)
    publish(client)
    subject_id = record(client, "zed", {"analytics": "granted", "marketing": "granted"})[
        "subject_id"
    ]
    body = fresh_token(client, subject_id)
    assert set(body) == {"subject_id", "version", "token", "token_expires_at"}
    claims = verify(client, body["token"])
    assert (claims["sub"], claims["ver"], claims["pur"]) == (
        subject_id,
        body["version"],
        ["analytics", "marketing"],
    )
    assert claims["iat"] == int(fake().timestamp())
    after = withdraw(client, "zed", ["marketing"])
    assert verify(client, after["token"])["pur"] == ["analytics"]
    claims = verify(client, fresh_token(client, subject_id)["token"])
    assert (claims["ver"], claims["pur"]) == (after["version"], ["analytics"])
    fake.advance(days=400)
    claims = jwt.decode(
        fresh_token(client, subject_id)["token"],
        options={"verify_signature": False},
    )
    assert claims["pur"] == []
    assert claims["nsh"] is None
    assert claims["iat"] == int(fake().timestamp())
    assert claims["exp"] - claims["iat"] == 86_400


def test_a_changed_byte_breaks_the_signature(client: TestClient) -> None:
    """A token with one changed byte, in the payload or in the signature, does not verify."""
    publish(client)
    token = record(client, "abe", {"analytics": "granted"})["token"]
    verify(client, token)
    header, payload, signature = token.split(".")
    tampered = [
        f"{header}.{flip(payload, len(payload) // 2)}.{signature}",
        f"{header}.{flip(payload, 5)}.{signature}",
        f"{header}.{payload}.{flip(signature, len(signature) // 2)}",
        f"{header}.{payload}.{flip(signature, 0)}",
    ]
    for bad in tampered:
        assert bad != token
        with pytest.raises(jwt.InvalidSignatureError):
            verify(client, bad)
    # Claims signed by another Ed25519 key under the published kid fail too.
    claims = verify(client, token) | {"pur": ["advertising", "analytics"]}
    kid = jwt.get_unverified_header(token)["kid"]
    forged = jwt.encode(
        claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid}
    )
    with pytest.raises(jwt.InvalidSignatureError):
        verify(client, forged)


def test_pur_names_granted_purposes_only(client: TestClient) -> None:
    """`pur` (granted purposes): a US-CA purpose allowed only as `not_opted_out` is not in it
    (docs/decisions.md), nor is a purpose not based on consent."""
    body = {
        "name": "Loyalty",
        "legal_basis": "consent",
        "retention_days": 395,
        "us_ca_model": "opt_out",
    }
    assert client.put("/v1/purposes/loyalty", headers=auth(), json=body).is_success
    publish(client)
    written = record(client, "lena", {"analytics": "granted"}, jurisdiction="US-CA")
    claims = verify(client, written["token"])
    assert claims["pur"] == ["analytics"]
    answer = client.post(
        "/v1/consents/check",
        headers=auth(),
        json={"subject": {"subject_id": written["subject_id"]}, "purpose": "loyalty"},
    ).json()
    assert answer["reason"] == "not_opted_out"
    fresh = verify(client, fresh_token(client, written["subject_id"])["token"])
    assert "loyalty" not in fresh["pur"]


def test_exp_never_outlives_a_grant_in_pur(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """API.md, Retention: "a consent token's `exp` never exceeds the earliest `expires_at` of
    the purposes in its `pur`"; `token_expires_at` says the same, on a write and on a fresh
    token; a token whose `pur` is empty keeps its 24 hours."""
    fake = install_clock(monkeypatch)
    publish(client)
    first = record(client, "ines", {"analytics": "granted"})
    subject_id = first["subject_id"]
    analytics_ends = datetime.fromisoformat(first["purposes"]["analytics"]["expires_at"])
    fake.advance(days=395, hours=-12)
    later = record(client, "ines", {"marketing": "granted"})
    assert datetime.fromisoformat(later["purposes"]["marketing"]["expires_at"]) > analytics_ends
    for body in (later, fresh_token(client, subject_id)):
        claims = jwt.decode(body["token"], options={"verify_signature": False})
        assert claims["pur"] == ["analytics", "marketing"]
        assert claims["exp"] == int(analytics_ends.timestamp())
        assert claims["exp"] - claims["iat"] == 12 * 3600
        expires = datetime.fromisoformat(body["token_expires_at"])
        assert int(expires.timestamp()) == claims["exp"]
        assert expires <= analytics_ends
    # Once analytics has expired it leaves `pur`, and marketing's grant bounds nothing sooner.
    fake.advance(hours=12)
    claims = jwt.decode(
        fresh_token(client, subject_id)["token"], options={"verify_signature": False}
    )
    assert (claims["pur"], claims["exp"] - claims["iat"]) == (["marketing"], 86_400)
