"""People who sign in to the pages: roles, statuses, the records handed to callers, and the
time limits of links, locks and sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

ENROLMENT_LIFETIME = timedelta(hours=24)
MAX_FAILURES = 5  # consecutive failed sign-ins that lock an account
LOCK_DURATION = timedelta(minutes=15)
SESSION_IDLE = timedelta(minutes=30)
SESSION_LIFETIME = timedelta(hours=12)
# last_seen_at is written at most this often: a page view costs no write.
SESSION_TOUCH = timedelta(minutes=1)


class PersonRole(StrEnum):
    """What a person may do on the pages. Each is also an API role (auth/models.py Role of
    the same value), whose permissions it carries."""

    DPO = "dpo"
    OPERATOR = "operator"
    AUDITOR = "auditor"
    ADMIN = "admin"


class PersonStatus(StrEnum):
    PENDING = "pending"  # created; the enrolment (password, second factor) is not finished
    ACTIVE = "active"  # may sign in
    DISABLED = "disabled"  # may not, ever again; sessions ended


@dataclass(frozen=True, slots=True)
class Person:
    """An account, its e-mail opened for display (never logged, never audited)."""

    person_id: str
    role: PersonRole
    status: PersonStatus
    email: str
    created_at: datetime
    enrolled_at: datetime | None
    locked_until: datetime | None


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A new account's one-time enrolment link (its token exists in clear only here)."""

    person_id: str
    url: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TotpSetup:
    """The second factor to add to an authenticator app: the `otpauth://` URI (for a QR
    code) and its secret, base32, for typing by hand. Shown once, at enrolment."""

    uri: str
    secret: str


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in session as a page sees it."""

    person_id: str
    role: PersonRole
    csrf_token: str  # to put in every form, checked with csrf_ok()
    expires_at: datetime  # the absolute end (an idle session ends earlier)


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just opened by a sign-in: `token` (the cookie's value) exists in clear only
    here."""

    token: str
    session: Session
