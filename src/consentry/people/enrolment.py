"""Enrolment through the one-time link: open it, set a password, then confirm a TOTP code;
only then is the account active. Every refusal of the link itself is EnrolmentInvalid."""

from __future__ import annotations

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.errors import EnrolmentInvalid, EnrolmentOutOfOrder, TotpCodeInvalid
from consentry.people import totp
from consentry.people.models import Person, PersonStatus, TotpSetup
from consentry.people.passwords import Passwords, check_policy
from consentry.people.records import Vault, actor_of, token_hash
from consentry.storage import people as sql
from consentry.storage.engine import AnyRow, Store

_MAX_TOKEN = 128


def pending_row(conn: Connection, token: str, *, lock: bool = False) -> AnyRow:
    """The row of the pending person `token` enrols; EnrolmentInvalid when the token is
    unknown, expired or used, or the account is no longer pending (disabled)."""
    enrolment = sql.get_enrolment(conn, token_hash(token)) if len(token) <= _MAX_TOKEN else None
    if enrolment is None or enrolment.used_at is not None or clock.now() >= enrolment.expires_at:
        raise EnrolmentInvalid("the enrolment link is unknown, expired or used")
    row = sql.get_person(conn, enrolment.person_id, lock=lock)
    if row is None or row.status != PersonStatus.PENDING.value:
        raise EnrolmentInvalid("the enrolment link is unknown, expired or used")
    return row


def open_enrolment(store: Store, vault: Vault, token: str) -> Person:
    with store.read() as conn:
        return vault.person(pending_row(conn, token))


def set_password(
    store: Store, vault: Vault, passwords: Passwords, token: str, password: str
) -> TotpSetup:
    with store.read() as conn:
        person = vault.person(pending_row(conn, token))
    check_policy(password, person.email)
    # The hash is made outside the transaction: argon2 takes a while, on purpose.
    hashed = passwords.hash(password)
    secret = totp.new_secret()
    with store.write() as conn:
        row = pending_row(conn, token, lock=True)
        sql.update_person(
            conn,
            row.person_id,
            {
                "password_hash": hashed,
                "totp_ct": vault.seal_totp(row.person_id, secret),
                "totp_last_step": None,
                "updated_at": clock.now(),
            },
        )
        audit.record(
            conn,
            AuditAction.PERSON_PASSWORD_SET,
            actor=actor_of(row.person_id),
            details={"person_id": row.person_id},
        )
    return TotpSetup(totp.provisioning_uri(secret, person.email), secret)


def confirm_totp(store: Store, vault: Vault, token: str, code: str) -> Person:
    with store.write() as conn:
        row = pending_row(conn, token, lock=True)
        if row.password_hash is None or row.totp_ct is None:
            raise EnrolmentOutOfOrder("set a password first; the second factor comes with it")
        secret = vault.open_totp(row.person_id, bytes(row.totp_ct))
        step = totp.accepted_step(secret, code, row.totp_last_step)
        if step is None:
            raise TotpCodeInvalid("the code is not the authenticator's current one")
        if not sql.use_enrolment(conn, token_hash(token), clock.now()):
            raise EnrolmentInvalid("the enrolment link is unknown, expired or used")
        now = clock.now()
        sql.update_person(
            conn,
            row.person_id,
            {
                "status": PersonStatus.ACTIVE.value,
                "totp_last_step": step,
                "enrolled_at": now,
                "updated_at": now,
            },
        )
        audit.record(
            conn,
            AuditAction.PERSON_TOTP_CONFIRMED,
            actor=actor_of(row.person_id),
            details={"person_id": row.person_id},
        )
        done = sql.get_person(conn, row.person_id)
        if done is None:
            raise EnrolmentInvalid("the enrolment link is unknown, expired or used")
        return vault.person(done)
