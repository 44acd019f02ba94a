"""Sessions of the pages: opened by a sign-in, checked on every request (30 minutes idle,
12 hours at most), ended by signing out or disabling the person. Stored by the SHA-256 of
their token; the CSRF token is derived from the session token, so it is stored nowhere."""

from __future__ import annotations

import base64
import hashlib
import hmac

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.people.models import (
    SESSION_IDLE,
    SESSION_LIFETIME,
    SESSION_TOUCH,
    NewSession,
    PersonRole,
    PersonStatus,
    Session,
)
from consentry.people.records import actor_of, new_token, token_hash
from consentry.storage import people as sql
from consentry.storage.engine import Store

_MAX_TOKEN = 128


def csrf_of(token: str) -> str:
    """The CSRF token of a session: an HMAC of a fixed label under the session token, so only
    a holder of the cookie can compute it, and a form built for one session fails in another."""
    mac = hmac.new(token.encode(), b"consentry:csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def csrf_ok(session: Session, presented: str) -> bool:
    """Whether the CSRF token a form carried is the session's (constant-time)."""
    return hmac.compare_digest(session.csrf_token.encode(), presented.encode())


def open_session(conn: Connection, person_id: str, role: PersonRole) -> NewSession:
    """A new session for `person_id`, in the caller's transaction; the person's sessions
    already ended are deleted with it."""
    now = clock.now()
    sql.delete_ended_sessions_of(conn, person_id, now - SESSION_IDLE, now)
    token = new_token()
    expires = now + SESSION_LIFETIME
    sql.insert_session(conn, token_hash(token), person_id, now, expires)
    return NewSession(token, Session(person_id, role, csrf_of(token), expires))


def check(store: Store, token: str) -> Session | None:
    """The live session `token` opens, or None. A session ended (idle, past its lifetime, its
    person no longer active) is deleted when met. Its last use is written at most once a
    SESSION_TOUCH, so most page views cost one read."""
    if not token or len(token) > _MAX_TOKEN:
        return None
    digest = token_hash(token)
    with store.read() as conn:
        row = sql.get_session(conn, digest)
    if row is None:
        return None
    now = clock.now()
    ended = (
        now >= row.expires_at
        or now - row.last_seen_at >= SESSION_IDLE
        or row.status != PersonStatus.ACTIVE.value
    )
    if ended:
        with store.write() as conn:
            sql.delete_session(conn, digest)
        return None
    if now - row.last_seen_at >= SESSION_TOUCH:
        with store.write() as conn:
            sql.touch_session(conn, digest, now)
    return Session(row.person_id, PersonRole(row.role), csrf_of(token), row.expires_at)


def sign_out(store: Store, token: str, *, client: str) -> bool:
    """End the session `token` opens; False when there was none (nothing is written)."""
    if not token or len(token) > _MAX_TOKEN:
        return False
    with store.write() as conn:
        person_id = sql.delete_session(conn, token_hash(token))
        if person_id is None:
            return False
        audit.record(
            conn,
            AuditAction.PERSON_SIGNED_OUT,
            actor=actor_of(person_id),
            details={"person_id": person_id, "client": client[:80]},
        )
    return True
