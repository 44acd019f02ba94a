"""Sign-in with both factors: the same SignInFailed for an unknown e-mail, a wrong password or
a wrong code (argon2 work done in every case); 5 failures in a row lock the account for 15
minutes; a TOTP code is accepted once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.errors import AccountLocked, ConsentryError, InvalidEmail, SignInFailed
from consentry.people import totp
from consentry.people.models import (
    LOCK_DURATION,
    MAX_FAILURES,
    NewSession,
    PersonRole,
    PersonStatus,
)
from consentry.people.passwords import MAX_LENGTH, Passwords
from consentry.people.records import Vault, actor_of, normalise_email
from consentry.people.sessions import open_session
from consentry.storage import people as sql
from consentry.storage.engine import AnyRow, Store

ANONYMOUS = "anonymous"  # the audit actor of a sign-in for an e-mail no account holds
_MAX_CLIENT = 80


@dataclass(frozen=True, slots=True)
class _Attempt:
    """What was found before the write: the account (or None), whether the password matched,
    and its new hash when the hasher's parameters changed."""

    row: AnyRow | None
    password_ok: bool
    rehashed: str | None


def sign_in(
    store: Store,
    vault: Vault,
    passwords: Passwords,
    email: str,
    password: str,
    code: str,
    *,
    client: str,
) -> NewSession:
    client = client[:_MAX_CLIENT]
    attempt = _check_password(store, vault, passwords, email, password)
    refusal: ConsentryError | None = None
    with store.write() as conn:
        if attempt.row is None:
            _failed(conn, None, client, "unknown")
            refusal = SignInFailed("the e-mail, password or code is wrong")
        else:
            # Read again, locked: another sign-in may have counted a failure or used a code.
            row = sql.get_person(conn, attempt.row.person_id, lock=True)
            outcome = _decide(conn, vault, row, attempt, code, client)
            if isinstance(outcome, NewSession):
                return outcome
            refusal = outcome
    raise refusal


def _check_password(
    store: Store, vault: Vault, passwords: Passwords, email: str, password: str
) -> _Attempt:
    # The argon2 work happens outside any transaction, and for every attempt: a locked,
    # pending, disabled or unknown account is checked against a dummy hash instead.
    row = None
    try:
        index = vault.index(normalise_email(email))
    except InvalidEmail:
        index = None
    if index is not None:
        with store.read() as conn:
            row = sql.find_person(conn, index)
    usable = row is not None and row.status == PersonStatus.ACTIVE.value and not _locked(row)
    stored = row.password_hash if usable and row is not None else None
    ok = passwords.verify(stored, password[: MAX_LENGTH + 1]) and stored is not None
    rehashed = None
    if ok and stored is not None and passwords.needs_rehash(stored):
        rehashed = passwords.hash(password)
    return _Attempt(row, ok, rehashed)


def _decide(
    conn: Connection,
    vault: Vault,
    row: AnyRow | None,
    attempt: _Attempt,
    code: str,
    client: str,
) -> NewSession | ConsentryError:
    """The session, or the error to raise once the failure has been recorded."""
    if row is None:
        _failed(conn, None, client, "unknown")
        return SignInFailed("the e-mail, password or code is wrong")
    person_id = row.person_id
    if _locked(row):
        _failed(conn, person_id, client, "locked")
        return _lock_error(row.locked_until)
    if row.status != PersonStatus.ACTIVE.value:
        _failed(conn, person_id, client, row.status)
        return SignInFailed("the e-mail, password or code is wrong")
    step = None
    if attempt.password_ok and row.totp_ct is not None:
        secret = vault.open_totp(person_id, bytes(row.totp_ct))
        step = totp.accepted_step(secret, code, row.totp_last_step)
    if step is None:
        return _count_failure(conn, row, client, "code" if attempt.password_ok else "password")
    changes: dict[str, Any] = {
        "failed_count": 0,
        "locked_until": None,
        "totp_last_step": step,
        "updated_at": clock.now(),
    }
    if attempt.rehashed is not None:
        changes["password_hash"] = attempt.rehashed
    sql.update_person(conn, person_id, changes)
    new = open_session(conn, person_id, PersonRole(row.role))
    audit.record(
        conn,
        AuditAction.PERSON_SIGNED_IN,
        actor=actor_of(person_id),
        details={
            "person_id": person_id,
            "client": client,
            "rehashed": attempt.rehashed is not None,
        },
    )
    return new


def _count_failure(conn: Connection, row: AnyRow, client: str, reason: str) -> ConsentryError:
    person_id = row.person_id
    count = row.failed_count + 1
    _failed(conn, person_id, client, reason)
    now = clock.now()
    if count < MAX_FAILURES:
        sql.update_person(conn, person_id, {"failed_count": count, "updated_at": now})
        return SignInFailed("the e-mail, password or code is wrong")
    # Locked; the count starts again from nothing when the lock ends.
    until = now + LOCK_DURATION
    sql.update_person(
        conn, person_id, {"failed_count": 0, "locked_until": until, "updated_at": now}
    )
    audit.record(
        conn,
        AuditAction.PERSON_LOCKED,
        actor=actor_of(person_id),
        details={"person_id": person_id, "failures": count, "until": clock.rfc3339(until)},
    )
    return _lock_error(until)


def _failed(conn: Connection, person_id: str | None, client: str, reason: str) -> None:
    # Never the e-mail typed: it may be someone's address mistyped, or not an account's.
    details: dict[str, Any] = {"client": client, "reason": reason}
    if person_id is not None:
        details["person_id"] = person_id
    audit.record(
        conn,
        AuditAction.PERSON_SIGN_IN_FAILED,
        actor=actor_of(person_id) if person_id else ANONYMOUS,
        details=details,
    )


def _locked(row: AnyRow) -> bool:
    return row.locked_until is not None and clock.now() < row.locked_until


def _lock_error(until: Any) -> AccountLocked:
    return AccountLocked(
        f"too many failed sign-ins: try again after {clock.rfc3339(until)}",
        unlocks_at=clock.rfc3339(until),
    )
