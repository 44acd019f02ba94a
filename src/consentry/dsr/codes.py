"""Portal e-mail codes (API.md, Operations: Portal entry): a 6-digit code mailed to an address
on record opens that subject's portal at `reasonable`; every answer is the same whether or not
the address is known, and the limits count known and unknown addresses alike."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.dsr.entry import LINK_LIFETIME, Entry, PortalEntry, attested
from consentry.errors import PortalCodeInvalid, PortalCodesDisabled, RateLimited
from consentry.storage import portal as sql
from consentry.storage.engine import AnyRow, Store
from consentry.subjects.models import IdentityType, SubjectRef
from consentry.subjects.normalise import normalise
from consentry.subjects.resolve import Subjects

CODE_LIFETIME = timedelta(minutes=10)
TRIES = 3
REQUESTS_PER_HOUR = 5
FAILURES_PER_DAY = 10
BLOCK = timedelta(hours=1)
# How long the portal a code opened stays open (as a link's).
ENTRY_LIFETIME = LINK_LIFETIME
ACTOR = "portal"
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
_CODE = re.compile(r"[0-9]{6}")


class Mailer(Protocol):
    """The mail queue (delivery/mail.py), passed in by runtime.py."""

    @property
    def enabled(self) -> bool:
        """Whether mail is sent at all (a mail server is configured)."""

    def queue(
        self, conn: Connection, to: str, subject: str, text: str, *, expires_at: datetime
    ) -> str:
        """Queue a mail in the caller's transaction, sealed until sent; returns its id."""


@dataclass(frozen=True, slots=True)
class CodeRequested:
    """The one answer to a code request, whoever the address belongs to: a code, if one was
    sent, is valid until `expires_at`."""

    expires_at: datetime


class PortalCodes:
    """Requests and checks of portal codes. Each call is its own write transaction, so that a
    refused code is counted even though the call raises. Addresses, client addresses and
    codes are kept only as HMACs under a named secret; the mail itself is sealed."""

    def __init__(
        self, store: Store, secret: bytes, subjects: Subjects, mailer: Mailer, brand: str
    ) -> None:
        self.store = store
        self._mac = hmac.new(secret, digestmod=hashlib.sha256)
        self.subjects = subjects
        self.mailer = mailer
        self.brand = brand

    @property
    def enabled(self) -> bool:
        return self.mailer.enabled

    def request(self, email: str, *, client: str) -> CodeRequested:
        """Ask for a code for `email` from the client address `client`. When the address
        belongs to a subject (never created here), a fresh code replaces any earlier one and
        is mailed; otherwise nothing is sent. The answer is the same either way.
        RateLimited past 5 requests an hour or during a block, per address and per client;
        InvalidIdentity when `email` is not an address; PortalCodesDisabled without a mail
        server."""
        self._require_enabled()
        identity = normalise(IdentityType.EMAIL, email)
        now = clock.now()
        expires = now + CODE_LIFETIME
        keys = self._keys(identity.value, client)
        with self.store.write() as conn:
            _check_limits(conn, keys, now, requests=True)
            sql.delete_attempts_before(conn, now - _DAY)
            sql.delete_expired_codes(conn, now)
            sql.add_attempts(conn, list(keys.values()), sql.REQUEST, now)
            subject = self.subjects.find(conn, SubjectRef(identities=(identity,)))
            if subject is not None:
                code = f"{secrets.randbelow(1_000_000):06d}"
                code_id = "pc_" + secrets.token_hex(12)
                sql.replace_code(
                    conn,
                    {
                        "code_id": code_id,
                        "address_hash": keys["address"],
                        "subject_id": subject.subject_id,
                        "code_mac": self._code_mac(code_id, code),
                        "tries": 0,
                        "created_at": now,
                        "expires_at": expires,
                    },
                )
                self.mailer.queue(
                    conn,
                    identity.value,
                    f"Your {self.brand} privacy portal code",
                    self._text(code),
                    expires_at=expires,
                )
            audit.record(
                conn,
                AuditAction.PORTAL_CODE_REQUESTED,
                actor=ACTOR,
                subject_id=subject.subject_id if subject else None,
                details={"sent": subject is not None, "expires_at": clock.rfc3339(expires)},
            )
        return CodeRequested(expires)

    def check(self, email: str, code: str, *, client: str) -> PortalEntry:
        """The portal entry a code opens: the subject it was mailed to, verified at
        `reasonable` (`attested(Entry.CODE, identity_type="email")`), for ENTRY_LIFETIME. A
        code opens once; 3 wrong tries spend it. PortalCodeInvalid for a wrong, expired,
        spent or never-sent code (one answer for all, known address or not), counted as a
        failure of the address and of the client; RateLimited during a block (the 10th
        failure in a day blocks for an hour)."""
        self._require_enabled()
        identity = normalise(IdentityType.EMAIL, email)
        now = clock.now()
        keys = self._keys(identity.value, client)
        entry: PortalEntry | None = None
        with self.store.write() as conn:
            _check_limits(conn, keys, now, requests=False)
            row = sql.code_of(conn, keys["address"])
            live = row is not None and row.expires_at > now
            if (
                row is not None
                and live
                and _CODE.fullmatch(code)
                and hmac.compare_digest(self._code_mac(row.code_id, code), bytes(row.code_mac))
            ):
                sql.delete_code(conn, row.code_id)
                audit.record(
                    conn,
                    AuditAction.PORTAL_CODE_ACCEPTED,
                    actor=ACTOR,
                    subject_id=row.subject_id,
                    details={"tries": row.tries + 1},
                )
                verification = attested(Entry.CODE, identity_type=IdentityType.EMAIL.value)
                entry = PortalEntry(row.subject_id, verification, now + ENTRY_LIFETIME)
            else:
                self._refuse(conn, row if live else None, keys, now)
                if row is not None and not live:
                    sql.delete_code(conn, row.code_id)
        if entry is None:
            raise PortalCodeInvalid("the code is not valid")
        return entry

    def _refuse(
        self, conn: Connection, row: AnyRow | None, keys: dict[str, bytes], now: datetime
    ) -> None:
        spent = False
        if row is not None:
            tries = row.tries + 1
            spent = tries >= TRIES
            if spent:
                sql.delete_code(conn, row.code_id)
            else:
                sql.set_tries(conn, row.code_id, tries)
        sql.add_attempts(conn, list(keys.values()), sql.FAILURE, now)
        audit.record(
            conn,
            AuditAction.PORTAL_CODE_REFUSED,
            actor=ACTOR,
            subject_id=row.subject_id if row is not None else None,
            details={"spent": spent},
        )
        for by, key in keys.items():
            failures, _first, _last = sql.attempts_since(conn, key, sql.FAILURE, now - _DAY)
            if failures >= FAILURES_PER_DAY:
                audit.record(
                    conn,
                    AuditAction.PORTAL_CODE_BLOCKED,
                    actor=ACTOR,
                    details={"by": by, "until": clock.rfc3339(now + BLOCK)},
                )

    def _keys(self, address: str, client: str) -> dict[str, bytes]:
        """The keyed hashes the limits count by: of the normalised address and of the client."""
        return {
            "address": self._hash(b"address\x00" + address.encode()),
            "client": self._hash(b"client\x00" + client.encode()),
        }

    def _code_mac(self, code_id: str, code: str) -> bytes:
        return self._hash(b"code\x00" + code_id.encode() + b"\x00" + code.encode())

    def _hash(self, data: bytes) -> bytes:
        mac = self._mac.copy()
        mac.update(data)
        return mac.digest()

    def _text(self, code: str) -> str:
        minutes = int(CODE_LIFETIME.total_seconds() // 60)
        return (
            f"Your code for the {self.brand} privacy portal is {code}\n\n"
            f"It is valid for {minutes} minutes. If you did not ask for it, you can ignore this "
            "e-mail: nobody can use the code without reading your mail.\n"
        )

    def _require_enabled(self) -> None:
        if not self.mailer.enabled:
            raise PortalCodesDisabled("e-mail codes need a mail server (CONSENTRY_SMTP_URL)")


def _check_limits(
    conn: Connection, keys: dict[str, bytes], now: datetime, *, requests: bool
) -> None:
    """RateLimited while the address or the client is blocked (its 10th failure within a day
    came less than an hour ago), or, for a request, after 5 requests within the hour."""
    wait = timedelta(0)
    for key in keys.values():
        failures, _first, last = sql.attempts_since(conn, key, sql.FAILURE, now - _DAY)
        if failures >= FAILURES_PER_DAY and last is not None and last + BLOCK > now:
            wait = max(wait, last + BLOCK - now)
        if requests:
            count, first, _last = sql.attempts_since(conn, key, sql.REQUEST, now - _HOUR)
            if count >= REQUESTS_PER_HOUR and first is not None:
                wait = max(wait, first + _HOUR - now)
    if wait > timedelta(0):
        raise RateLimited(
            "too many codes asked for or tried; try again later",
            retry_after=max(1, math.ceil(wait.total_seconds())),
        )
