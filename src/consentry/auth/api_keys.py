"""API keys: minted once, shown once, stored as a SHA-256 hash, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.auth.models import ApiKey, Principal, Role
from consentry.errors import ApiKeyNotFound, InvalidRequest
from consentry.storage import api_keys as sql
from consentry.storage.engine import AnyRow

PREFIX = "csk_"
ENV_ADMIN_ID = "env-admin"
MAX_LABEL = 200


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def create(conn: Connection, role: Role, label: str, *, actor: str) -> tuple[ApiKey, str]:
    """Mint a key; return its record and the key itself (the only time it exists in clear)."""
    if len(label) > MAX_LABEL:
        raise InvalidRequest(f"label longer than {MAX_LABEL} characters")
    key_id = secrets.token_hex(8)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    now = clock.now()
    sql.insert_key(conn, key_id, role.value, label, _hash(key), now)
    audit.record(
        conn,
        AuditAction.APIKEY_CREATED,
        actor=actor,
        details={"key_id": key_id, "role": role.value, "label": label},
    )
    return ApiKey(key_id, role, label, now, None), key


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
    return Principal(row.key_id, Role(row.role))


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
    return ApiKey(row.key_id, Role(row.role), row.label, row.created_at, row.revoked_at)
