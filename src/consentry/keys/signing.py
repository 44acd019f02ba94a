"""Ed25519 signing keys (consent tokens, audit tree heads), their `kid`s and the JWKS."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Connection

from consentry import clock
from consentry.errors import KeyUnwrapFailed
from consentry.keys.ring import KeyEncryptionKey
from consentry.storage import keys as sql


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey
    public_jwk: dict[str, str]

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def public_jwk(private: Ed25519PrivateKey) -> dict[str, str]:
    """The OKP JWK of the public half, with its RFC 7638 thumbprint as `kid`."""
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    members = {"crv": "Ed25519", "kty": "OKP", "x": b64url(raw)}
    thumbprint = hashlib.sha256(
        json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    ).digest()
    return {**members, "kid": b64url(thumbprint), "alg": "EdDSA", "use": "sig"}


class SigningKeys:
    """The active signing key and every published one, loaded once and held in memory."""

    def __init__(self, kek: KeyEncryptionKey) -> None:
        self._kek = kek
        self._lock = threading.Lock()
        self._active: SigningKey | None = None
        self._published: list[dict[str, str]] = []
        self._installed_at = 0.0

    def load(self, conn: Connection) -> None:
        """Read the keys, creating the first one on a fresh install (once, however many
        processes start together)."""
        sql.lock_signing_keys(conn)
        rows = sql.list_signing_keys(conn)
        if not any(row.active for row in rows):
            self.rotate(conn)
            return
        self._install(rows)

    def reload(self, conn: Connection) -> None:
        """Read the published and active keys again, creating none."""
        rows = sql.list_signing_keys(conn)
        if any(row.active for row in rows):
            self._install(rows)

    def rotate(self, conn: Connection) -> SigningKey:
        """Create a new active key; earlier keys stay in the JWKS so old signatures verify."""
        private = Ed25519PrivateKey.generate()
        jwk = public_jwk(private)
        raw = private.private_bytes_raw()
        wrapped, kek_id = self._kek.wrap(raw, signing_aad(jwk["kid"]))
        sql.insert_signing_key(conn, jwk["kid"], json.dumps(jwk), wrapped, kek_id, clock.now())
        self._install(sql.list_signing_keys(conn))
        return self.active

    @property
    def active(self) -> SigningKey:
        with self._lock:
            if self._active is None:
                raise KeyUnwrapFailed("signing keys are not loaded")
            return self._active

    def verifying_keys(self, conn: Connection) -> tuple[dict[str, Any], list[str]]:
        """Every key ever used, retired ones included, as a JWKS; and the kids whose published
        public key is not the public half of their wrapped private key (a substituted key)."""
        published: list[dict[str, Any]] = []
        substituted: list[str] = []
        for row in sql.list_every_signing_key(conn):
            jwk = json.loads(row.public_jwk)
            try:
                raw = self._kek.open(row.wrapped_private, signing_aad(row.kid), row.kek_id)
                genuine = public_jwk(Ed25519PrivateKey.from_private_bytes(raw))
            except (KeyUnwrapFailed, ValueError):
                genuine = None
            if genuine is None or genuine["x"] != jwk.get("x") or genuine["kid"] != row.kid:
                substituted.append(row.kid)
                continue
            published.append(jwk)
        return {"keys": published}, substituted

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set of every key not retired."""
        with self._lock:
            return {"keys": list(self._published)}

    def _install(self, rows: Any) -> None:
        active: SigningKey | None = None
        published = []
        for row in rows:
            jwk = json.loads(row.public_jwk)
            published.append(jwk)
            if row.active:
                raw = self._kek.open(row.wrapped_private, signing_aad(row.kid), row.kek_id)
                private = Ed25519PrivateKey.from_private_bytes(raw)
                active = SigningKey(kid=row.kid, private=private, public_jwk=jwk)
        with self._lock:
            self._active = active
            self._published = published
            self._installed_at = time.monotonic()

    def stale(self, seconds: float) -> bool:
        """True when the keys were read more than `seconds` ago (another process may have
        rotated them since)."""
        with self._lock:
            return time.monotonic() - self._installed_at > seconds


def signing_aad(kid: str) -> bytes:
    """What binds a wrapped private signing key to its `kid`."""
    return b"consentry:signing-key:" + kid.encode()
