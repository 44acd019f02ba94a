"""Portal entry (API.md, Operations: Portal entry): the verification each way into the portal
attests, and the signed links a collector mints for one subject."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import jwt
from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.dsr.models import Level, Verification
from consentry.errors import LinkLevelNotAllowed, PortalLinkInvalid
from consentry.subjects.models import SubjectRef
from consentry.subjects.resolve import Subjects

LINK_LIFETIME = timedelta(minutes=15)
REAUTHENTICATED = "reauthenticated"
_AUDIENCE = "consentry:portal"
_ALGORITHM = "HS256"


class Entry(StrEnum):
    """How a customer came into the portal."""

    CODE = "code"  # a 6-digit code sent to the address the customer typed
    SENT_LINK = "sent_link"  # a link Consentry sent to an identity on record
    MINTED_LINK = "minted_link"  # a link a collector minted (POST /v1/portal-links)


def attested(
    entry: Entry, *, identity_type: str | None = None, collector: Verification | None = None
) -> Verification | None:
    """The verification a portal entry carries into the requests made through it. A code, or
    a link sent to the identity on record, proves control of that identity: `reasonable`,
    having matched it. A minted link carries what the collector attested, `high` only when
    the site re-authenticated the customer just before (LinkLevelNotAllowed otherwise), and
    nothing when it attested nothing: the site vouched for no one, so every request made
    through it waits for an operator."""
    if entry is not Entry.MINTED_LINK:
        matched = (identity_type,) if identity_type else None
        return Verification(f"portal_{entry.value}", Level.REASONABLE, matched)
    if collector is None:
        return None
    if collector.level is Level.HIGH and collector.method != REAUTHENTICATED:
        raise LinkLevelNotAllowed(
            f"a link at level high is minted right after re-authentication "
            f'(method "{REAUTHENTICATED}")'
        )
    return collector


def _audited_method(carried: Verification | None) -> str | None:
    """What the audit log keeps of the collector's method: whether it re-authenticated, not
    its free text (up to 64 characters the collector chose, which may name a person)."""
    if carried is None:
        return None
    return REAUTHENTICATED if carried.method == REAUTHENTICATED else "other"


@dataclass(frozen=True, slots=True)
class PortalLink:
    url: str
    expires_at: datetime
    level: str  # what the link attests: none, reasonable or high


@dataclass(frozen=True, slots=True)
class PortalEntry:
    """An opened link: whose portal it opens, and the verification its requests carry."""

    subject_id: str
    verification: Verification | None
    expires_at: datetime
    # A minted link's id: it opens one portal session only (dsr/portal.py).
    link_id: str | None = None


class PortalLinks:
    """Mints and opens portal links: HMAC-signed tokens (a named secret; only Consentry reads
    them), valid 15 minutes, naming a subject id and the attested level, never an identity
    value (a URL lands in browser histories and proxy logs)."""

    def __init__(self, secret: bytes, subjects: Subjects, base_url: str) -> None:
        self._secret = secret
        self._subjects = subjects
        self._base = base_url.rstrip("/")

    def mint(
        self,
        conn: Connection,
        ref: SubjectRef,
        verification: Verification | None,
        *,
        actor: str,
    ) -> PortalLink:
        """A link opening the portal of the subject `ref` names (created when new, as by a
        consent write), carrying `attested(MINTED_LINK, collector=verification)`. Audited
        with the level, never the identity."""
        carried = attested(Entry.MINTED_LINK, collector=verification)
        subject = self._subjects.resolve(conn, ref, actor=actor).subject
        now = clock.now().replace(microsecond=0)
        expires = now + LINK_LIFETIME
        claims: dict[str, object] = {
            "aud": _AUDIENCE,
            "sub": subject.subject_id,
            "lvl": carried.level.value if carried else Level.NONE.value,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": secrets.token_hex(12),
        }
        if carried is not None:
            claims["mth"] = carried.method
            if carried.matched is not None:
                claims["mat"] = list(carried.matched)
        token = jwt.encode(claims, self._secret, algorithm=_ALGORITHM)
        audit.record(
            conn,
            AuditAction.PORTAL_LINK_CREATED,
            actor=actor,
            subject_id=subject.subject_id,
            details={
                "level": claims["lvl"],
                "method": _audited_method(carried),
                "expires_at": clock.rfc3339(expires),
            },
        )
        return PortalLink(f"{self._base}/portal?link={token}", expires, str(claims["lvl"]))

    def open(self, token: str) -> PortalEntry:
        """The entry a link's token gives (PortalLinkInvalid when it is not one of ours, was
        altered, or is past its 15 minutes)."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                audience=_AUDIENCE,
                # Checked below against the product's clock, like every other deadline.
                options={
                    "require": ["sub", "lvl", "exp", "aud"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
            level = Level(claims["lvl"])
            expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError, OSError):
            raise PortalLinkInvalid("the portal link is not valid") from None
        if clock.now() >= expires:
            raise PortalLinkInvalid("the portal link has expired")
        verification = None
        if level is not Level.NONE:
            matched = claims.get("mat")
            verification = Verification(
                str(claims.get("mth", "")), level, tuple(matched) if matched else None
            )
        link_id = claims.get("jti")
        return PortalEntry(
            str(claims["sub"]), verification, expires, str(link_id) if link_id else None
        )
