"""Customers' portal sessions: what an entry (a code, a link) opens, for how long, and the
verification the requests made through it carry. A session is a random token in an HttpOnly
cookie, kept only as its SHA-256; its CSRF token is derived from it, so nothing else is
stored."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.dsr.entry import LINK_LIFETIME, Entry, PortalEntry
from consentry.dsr.models import Level, Verification
from consentry.errors import PortalLinkInvalid, PortalSessionInvalid
from consentry.storage import portal_sessions as sql
from consentry.storage.engine import AnyRow, Store
from consentry.storage.errors import ConstraintViolation

# A session ends after this long without a request, and this long after it opened at most.
IDLE = timedelta(minutes=30)
LIFETIME = timedelta(hours=2)
# The idle deadline is moved at most this often (a read need not write every time).
_TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class PortalSession:
    subject_id: str
    entry: Entry
    verification: Verification | None
    csrf: str
    expires_at: datetime


class PortalSessions:
    def __init__(self, store: Store, secret: bytes) -> None:
        self.store = store
        self._secret = secret

    def open(
        self, entry: PortalEntry, how: Entry, *, link_id: str | None = None
    ) -> tuple[str, PortalSession]:
        """A new session for the subject `entry` names; its token (for the cookie) and what it
        holds. A minted link opens one session only (PortalLinkInvalid the second time)."""
        token = secrets.token_urlsafe(32)
        now = clock.now()
        carried = entry.verification
        values = {
            "token_hash": _hash(token),
            "subject_id": entry.subject_id,
            "entry": how.value,
            "method": carried.method if carried else None,
            "level": carried.level.value if carried else None,
            "matched": json.dumps(list(carried.matched)) if carried and carried.matched else None,
            "link_id": link_id,
            "created_at": now,
            "idle_until": now + IDLE,
            "expires_at": now + LIFETIME,
        }
        try:
            with self.store.write() as conn:
                sql.remove_ended(conn, now, now - LINK_LIFETIME)
                sql.insert_session(conn, values)
                audit.record(
                    conn,
                    AuditAction.PORTAL_SESSION_OPENED,
                    actor="portal",
                    subject_id=entry.subject_id,
                    details={"entry": how.value, "level": values["level"] or Level.NONE.value},
                )
        except ConstraintViolation:
            raise PortalLinkInvalid("the portal link has been used already") from None
        return token, PortalSession(
            entry.subject_id, how, carried, self.csrf_of(token), now + LIFETIME
        )

    def check(self, token: str | None) -> PortalSession:
        """The session `token` opens; PortalSessionInvalid when none, ended or signed out."""
        if not token:
            raise PortalSessionInvalid("open the portal again")
        now = clock.now()
        with self.store.read() as conn:
            row = sql.get(conn, _hash(token))
        if row is None or row.expires_at <= now or row.idle_until <= now:
            raise PortalSessionInvalid("the portal session has ended; open the portal again")
        if row.idle_until - IDLE + _TOUCH_EVERY <= now:
            with self.store.write() as conn:
                sql.touch(conn, _hash(token), min(now + IDLE, row.expires_at))
        return _session(row, self.csrf_of(token))

    def close(self, token: str | None) -> None:
        """Sign out: the session ends now (nothing when there is none or it had ended). Its
        row is kept until the link that opened it has expired, so that link opens nothing."""
        if not token:
            return
        with self.store.write() as conn:
            row = sql.get(conn, _hash(token))
            if row is not None and sql.end(conn, _hash(token), clock.now()):
                audit.record(
                    conn,
                    AuditAction.PORTAL_SESSION_CLOSED,
                    actor="portal",
                    subject_id=str(row.subject_id),
                )

    def csrf_of(self, token: str) -> str:
        """The CSRF token of the session `token` (forms carry it; a cookie cannot)."""
        return hmac.new(self._secret, b"csrf:" + token.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: PortalSession, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(session.csrf, presented)


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _session(row: AnyRow, csrf: str) -> PortalSession:
    verification = None
    if row.level is not None:
        matched = json.loads(row.matched) if row.matched else None
        verification = Verification(
            str(row.method or ""), Level(row.level), tuple(matched) if matched else None
        )
    return PortalSession(str(row.subject_id), Entry(row.entry), verification, csrf, row.expires_at)
