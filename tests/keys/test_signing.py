"""keys/signing.py: the Ed25519 JWKS, kids as RFC 7638 thumbprints, tokens PyJWT accepts."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry.app import create_app
from consentry.keys.signing import SigningKey, public_jwk
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage.schema import signing_keys

CLAIMS = {"iss": "consentry", "sub": "sub_0123456789abcdef01234567", "pur": ["analytics"]}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 §3 for an OKP key: the required members crv, kty, x in that order, no spaces."""
    canonical = '{"crv":"' + jwk["crv"] + '","kty":"' + jwk["kty"] + '","x":"' + jwk["x"] + '"}'
    return b64url(hashlib.sha256(canonical.encode()).digest())


def sign_jwt(key: SigningKey, claims: dict[str, Any]) -> str:
    """A compact JWS built by hand and signed by the product's key (no JWT library)."""
    header = {"alg": "EdDSA", "typ": "JWT", "kid": key.kid}
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    return signing_input + "." + b64url(key.sign(signing_input.encode()))


def verify(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """What a client does: pick the key by the token's kid from the JWKS, verify with PyJWT."""
    kid = jwt.get_unverified_header(token)["kid"]
    (entry,) = [k for k in jwks["keys"] if k["kid"] == kid]
    return dict(jwt.decode(token, jwt.PyJWK(entry).key, algorithms=["EdDSA"]))


def flip(token: str, part: int, position: int) -> str:
    parts = token.split(".")
    data = bytearray(unb64url(parts[part]))
    data[position] ^= 0x01
    parts[part] = b64url(bytes(data))
    return ".".join(parts)


def test_thumbprint_matches_rfc_8037_vector() -> None:
    # RFC 8037 Appendix A.1 (private key) and A.3 (its JWK thumbprint).
    d = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
    jwk = public_jwk(Ed25519PrivateKey.from_private_bytes(unb64url(d)))
    assert jwk["x"] == "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    assert jwk["kid"] == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    assert thumbprint(jwk) == jwk["kid"]


def test_jwks_publishes_one_ed25519_key_named_by_its_thumbprint(client: TestClient) -> None:
    resp = client.get("/.well-known/jwks.json")
    assert resp.status_code == 200
    (key,) = resp.json()["keys"]
    assert key["kty"] == "OKP"
    assert key["crv"] == "Ed25519"
    assert key["alg"] == "EdDSA"
    assert key["use"] == "sig"
    assert len(unb64url(key["x"])) == 32
    assert key["kid"] == thumbprint(key)
    # Only public members: never the private scalar.
    assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"}
    assert client.app.state.runtime.signing_keys.active.kid == key["kid"]


def test_tokens_from_the_active_key_verify_and_altered_ones_do_not(client: TestClient) -> None:
    jwks = client.get("/.well-known/jwks.json").json()
    active = client.app.state.runtime.signing_keys.active

    by_hand = sign_jwt(active, CLAIMS)
    assert verify(by_hand, jwks) == CLAIMS
    by_pyjwt = jwt.encode(CLAIMS, active.private, algorithm="EdDSA", headers={"kid": active.kid})
    assert verify(by_pyjwt, jwks) == CLAIMS

    for part, position in [(1, 0), (1, 10), (2, 0), (2, 40), (2, 63)]:
        with pytest.raises(jwt.InvalidSignatureError):
            verify(flip(by_hand, part, position), jwks)


def test_the_private_key_is_stored_wrapped(runtime: Runtime) -> None:
    active = runtime.signing_keys.active
    raw = active.private.private_bytes_raw()
    with runtime.store.read() as conn:
        row = conn.execute(select(signing_keys).where(signing_keys.c.kid == active.kid)).one()
    assert raw not in bytes(row.wrapped_private)
    assert b64url(raw) not in row.public_jwk
    assert json.loads(row.public_jwk) == active.public_jwk
    assert row.kek_id == runtime.kek.kek_id


def test_the_key_survives_a_restart(settings: Settings) -> None:
    first = Runtime(settings)
    try:
        kid = first.signing_keys.active.kid
        token = sign_jwt(first.signing_keys.active, CLAIMS)
    finally:
        first.close()
    with TestClient(create_app(settings)) as client:
        jwks = client.get("/.well-known/jwks.json").json()
        assert [k["kid"] for k in jwks["keys"]] == [kid]
        assert client.app.state.runtime.signing_keys.active.kid == kid
        assert verify(token, jwks) == CLAIMS


def test_rotate_adds_an_active_key_and_keeps_the_old_one_published(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        rt = client.app.state.runtime
        old = rt.signing_keys.active
        old_token = sign_jwt(old, CLAIMS)
        with rt.store.write() as conn:
            new = rt.signing_keys.rotate(conn)
        assert new.kid != old.kid
        assert rt.signing_keys.active.kid == new.kid
        assert new.kid == thumbprint(new.public_jwk)

        jwks = client.get("/.well-known/jwks.json").json()
        assert [k["kid"] for k in jwks["keys"]] == [old.kid, new.kid]
        assert verify(old_token, jwks) == CLAIMS
        new_token = sign_jwt(new, CLAIMS)
        assert verify(new_token, jwks) == CLAIMS
        # A new token claiming the old kid does not verify: the keys are really distinct.
        forged = sign_jwt(SigningKey(old.kid, new.private, old.public_jwk), CLAIMS)
        with pytest.raises(jwt.InvalidSignatureError):
            verify(forged, jwks)
        with rt.store.read() as conn:
            active = conn.execute(select(signing_keys.c.kid).where(signing_keys.c.active)).all()
        assert [row.kid for row in active] == [new.kid]

    # After a restart the rotated key is still the one that signs, and both are published.
    again = Runtime(settings)
    try:
        assert again.signing_keys.active.kid == new.kid
        assert [k["kid"] for k in again.signing_keys.jwks()["keys"]] == [old.kid, new.kid]
    finally:
        again.close()
