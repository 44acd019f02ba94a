"""Identity secrets: a site vouches for its signed-in visitor's customer_id with an
`identity_proof`, HMAC-SHA256 hex of `customer_id + "." + expires_at` under one of them."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.errors import (
    IdentitySecretNotFound,
    InvalidIdentityProof,
    InvalidRequest,
)
from consentry.keys.ring import KeyEncryptionKey
from consentry.storage import identity_secrets as sql
from consentry.storage.engine import AnyRow, Store

PREFIX = "cis_"
MAX_LABEL = 200
# API.md: a proof is good for at most 24 hours; a site's clock may run a little ahead of ours.
MAX_AHEAD = timedelta(hours=24)
CLOCK_SKEW = timedelta(minutes=5)
_HEX = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True, slots=True)
class IdentitySecret:
    secret_id: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


def proof(secret: str, customer_id: str, expires_at: str) -> str:
    """The identity_proof a site computes (shown here for tests and documentation)."""
    message = f"{customer_id}.{expires_at}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def wrap_aad(secret_id: str) -> bytes:
    """What binds an identity secret's blob to its row (re-wrapped by keys/rotation.py)."""
    return b"consentry:identity_secret:" + secret_id.encode()


def _record(row: AnyRow) -> IdentitySecret:
    return IdentitySecret(row.secret_id, row.label, row.created_at, row.revoked_at)


class IdentitySecrets:
    """Mints, lists and revokes identity secrets, and checks proofs against the live ones
    (held opened in memory for `ttl` seconds: a revocation in another process counts within
    that time, one in this process at once)."""

    def __init__(self, store: Store, kek: KeyEncryptionKey, ttl: float = 1.0) -> None:
        self._store = store
        self._kek = kek
        self._ttl = ttl
        self._live: tuple[tuple[bytes, ...], float] | None = None
        self._lock = threading.Lock()

    def create(self, conn: Connection, label: str, *, actor: str) -> tuple[IdentitySecret, str]:
        """Mint a secret; return its record and the secret (the only time it is shown)."""
        if len(label) > MAX_LABEL:
            raise InvalidRequest(f"label longer than {MAX_LABEL} characters")
        secret_id = secrets.token_hex(8)
        secret = f"{PREFIX}{secret_id}_{secrets.token_urlsafe(32)}"
        now = clock.now()
        sealed, kek_id = self._kek.wrap(secret.encode(), wrap_aad(secret_id))
        sql.insert_secret(conn, secret_id, label, sealed, kek_id, now)
        audit.record(
            conn,
            AuditAction.IDENTITY_SECRET_CREATED,
            actor=actor,
            details={"secret_id": secret_id, "label": label},
        )
        self._forget()
        return IdentitySecret(secret_id, label, now, None), secret

    def list(self, conn: Connection) -> list[IdentitySecret]:
        return [_record(row) for row in sql.list_secrets(conn)]

    def revoke(self, conn: Connection, secret_id: str, *, actor: str) -> IdentitySecret:
        """Revoke at once: proofs made under it are refused from the next request on."""
        if sql.get_secret(conn, secret_id) is None:
            raise IdentitySecretNotFound(f"no identity secret {secret_id}", secret_id=secret_id)
        if sql.revoke_secret(conn, secret_id, clock.now()):
            audit.record(
                conn,
                AuditAction.IDENTITY_SECRET_REVOKED,
                actor=actor,
                details={"secret_id": secret_id},
            )
        self._forget()
        row = sql.get_secret(conn, secret_id)
        if row is None:
            raise IdentitySecretNotFound(f"no identity secret {secret_id}", secret_id=secret_id)
        return _record(row)

    def verify(self, customer_id: str, expires_at: str, presented: str) -> None:
        """Accept a proof made under a live secret for `customer_id` until `expires_at` (RFC
        3339, in the future, at most 24 hours ahead); raise InvalidIdentityProof otherwise."""
        try:
            until = datetime.fromisoformat(expires_at)
        except ValueError:
            raise InvalidIdentityProof("expires_at is not an RFC 3339 time") from None
        if until.tzinfo is None:
            raise InvalidIdentityProof("expires_at needs a time zone (Z or an offset)")
        now = clock.now()
        if until <= now:
            raise InvalidIdentityProof("the identity proof has expired")
        if until > now + MAX_AHEAD + CLOCK_SKEW:
            raise InvalidIdentityProof("expires_at is more than 24 hours ahead")
        if not _HEX.fullmatch(presented):
            raise InvalidIdentityProof("identity_proof is not 64 hexadecimal digits")
        message = f"{customer_id}.{expires_at}".encode()
        wanted = presented.lower().encode()
        # Every live secret is tried, whichever matches, so the time taken says nothing.
        matched = False
        for key in self._opened():
            expected = hmac.new(key, message, hashlib.sha256).hexdigest().encode()
            matched |= hmac.compare_digest(expected, wanted)
        if not matched:
            raise InvalidIdentityProof("the identity proof does not match customer_id")

    def _opened(self) -> tuple[bytes, ...]:
        with self._lock:
            held = self._live
        if held is not None and held[1] > time.monotonic():
            return held[0]
        with self._store.read() as conn:
            rows = sql.list_secrets(conn, live_only=True)
        opened = []
        for row in rows:
            opened.append(self._kek.open(row.secret_ct, wrap_aad(row.secret_id), row.kek_id))
        keys = tuple(opened)
        with self._lock:
            self._live = (keys, time.monotonic() + self._ttl)
        return keys

    def _forget(self) -> None:
        with self._lock:
            self._live = None
