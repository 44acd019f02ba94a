"""API keys: minted once, shown once, stored as a SHA-256 hash, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.auth.models import ApiKey, Principal, Role
from consentry.auth.origins import origins_of
from consentry.errors import ApiKeyNotFound, InvalidRequest
from consentry.storage import api_keys as sql
from consentry.storage.engine import AnyRow, Store

PREFIX = "csk_"
ENV_ADMIN_ID = "env-admin"
MAX_LABEL = 200
_MAX_REMEMBERED = 10_000


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def create(
    conn: Connection, role: Role, label: str, *, actor: str, origins: Sequence[str] = ()
) -> tuple[ApiKey, str]:
    """Mint a key; return its record and the key itself (the only time it exists in clear).
    A browser key needs its web origins; no other role takes any."""
    if len(label) > MAX_LABEL:
        raise InvalidRequest(f"label longer than {MAX_LABEL} characters")
    listed: tuple[str, ...] = ()
    if role is Role.BROWSER:
        listed = origins_of(origins)
    elif origins:
        raise InvalidRequest("only a browser key has origins")
    key_id = secrets.token_hex(8)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    now = clock.now()
    stored = json.dumps(list(listed)) if role is Role.BROWSER else None
    sql.insert_key(conn, key_id, role.value, label, _hash(key), now, stored)
    details: dict[str, object] = {"key_id": key_id, "role": role.value, "label": label}
    if listed:
        details["origins"] = list(listed)
    audit.record(conn, AuditAction.APIKEY_CREATED, actor=actor, details=details)
    return ApiKey(key_id, role, label, now, None, listed), key


def authenticate(conn: Connection, presented: str, admin_key: str) -> Principal | None:
    """The principal holding `presented`, or None for an unknown, malformed or revoked key."""
    if admin_key and hmac.compare_digest(presented.encode(), admin_key.encode()):
        return Principal(ENV_ADMIN_ID, Role.ADMIN)
    if not presented.startswith(PREFIX):
        return None
    key_id, _, secret = presented[len(PREFIX) :].partition("_")
    if not secret:
        return None
    row = sql.get_key(conn, key_id)
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(bytes(row.key_hash), _hash(presented)):
        return None
    return Principal(row.key_id, Role(row.role), frozenset(_origins(row)))


def list_keys(conn: Connection, *, after: tuple[datetime, str] | None, limit: int) -> list[ApiKey]:
    return [_record(row) for row in sql.list_keys(conn, after=after, limit=limit)]


def revoke(conn: Connection, key_id: str, *, actor: str) -> ApiKey:
    """Revoke at once; the key is refused from the next request on."""
    row = sql.get_key(conn, key_id)
    if row is None:
        raise ApiKeyNotFound(f"no API key {key_id}", key_id=key_id)
    if sql.revoke_key(conn, key_id, clock.now()):
        audit.record(conn, AuditAction.APIKEY_REVOKED, actor=actor, details={"key_id": key_id})
    row = sql.get_key(conn, key_id)
    if row is None:
        raise ApiKeyNotFound(f"no API key {key_id}", key_id=key_id)
    return _record(row)


def _record(row: AnyRow) -> ApiKey:
    return ApiKey(
        row.key_id, Role(row.role), row.label, row.created_at, row.revoked_at, _origins(row)
    )


def _origins(row: AnyRow) -> tuple[str, ...]:
    return tuple(json.loads(row.origins)) if row.origins else ()


def live_origins(conn: Connection) -> frozenset[str]:
    """Every origin some browser key not revoked lists (what a CORS preflight may be
    answered for)."""
    return frozenset(o for listed in sql.live_origins(conn) for o in json.loads(listed))


class Authenticator:
    """Authenticates presented keys, remembering a good key for `ttl` seconds so the hot path
    (event batches, checks) costs no database read. A revocation in this process takes effect
    at once; one made by another process within `ttl`."""

    def __init__(self, admin_key: str, ttl: float = 1.0) -> None:
        self._admin_key = admin_key
        self._ttl = ttl
        self._known: dict[bytes, tuple[Principal, float]] = {}
        self._origins: tuple[frozenset[str], float] | None = None
        self._lock = threading.Lock()

    def remembered(self, presented: str) -> Principal | None:
        """The principal of a key authenticated less than `ttl` seconds ago, else None."""
        with self._lock:
            hit = self._known.get(_hash(presented))
        return hit[0] if hit is not None and hit[1] > time.monotonic() else None

    def authenticate(self, store: Store, presented: str) -> Principal | None:
        digest = _hash(presented)
        now = time.monotonic()
        remembered = self.remembered(presented)
        if remembered is not None:
            return remembered
        with store.read() as conn:
            principal = authenticate(conn, presented, self._admin_key)
        if principal is not None:
            with self._lock:
                if len(self._known) > _MAX_REMEMBERED:
                    self._known.clear()
                self._known[digest] = (principal, now + self._ttl)
        return principal

    def forget(self, key_id: str) -> None:
        with self._lock:
            self._known = {d: v for d, v in self._known.items() if v[0].key_id != key_id}
            self._origins = None

    def remembered_origins(self) -> frozenset[str] | None:
        """The origins of the live browser keys, read less than `ttl` seconds ago, else None."""
        with self._lock:
            held = self._origins
        return held[0] if held is not None and held[1] > time.monotonic() else None

    def origins(self, store: Store) -> frozenset[str]:
        """Every origin a live browser key lists, read again after `ttl` seconds (a key made or
        revoked in this process counts at once)."""
        held = self.remembered_origins()
        if held is not None:
            return held
        with store.read() as conn:
            found = live_origins(conn)
        with self._lock:
            self._origins = (found, time.monotonic() + self._ttl)
        return found

    def key_created(self) -> None:
        with self._lock:
            self._origins = None
