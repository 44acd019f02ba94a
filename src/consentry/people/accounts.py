"""Accounts: created with a one-time enrolment link, listed, disabled (which ends their
sessions). Audited by person id, never by e-mail."""

from __future__ import annotations

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.errors import PersonExists, PersonNotFound
from consentry.people.models import (
    ENROLMENT_LIFETIME,
    Enrolment,
    Person,
    PersonRole,
    PersonStatus,
)
from consentry.people.records import Vault, new_person_id, new_token, normalise_email, token_hash
from consentry.storage import people as sql


def create(
    conn: Connection, vault: Vault, email: str, role: PersonRole, base_url: str, *, actor: str
) -> Enrolment:
    """A pending account for `email` with its enrolment link, valid ENROLMENT_LIFETIME.
    PersonExists when an account (in any status) holds the address; InvalidEmail when it is
    not one."""
    address = normalise_email(email)
    index = vault.index(address)
    if sql.find_person(conn, index) is not None:
        raise PersonExists("an account for that e-mail address exists")
    now = clock.now()
    person_id = new_person_id()
    row = {
        "person_id": person_id,
        "role": role.value,
        "status": PersonStatus.PENDING.value,
        "email_index": index,
        "email_ct": vault.seal_email(person_id, address),
        "failed_count": 0,
        "created_at": now,
        "updated_at": now,
    }
    if not sql.insert_person(conn, row):
        raise PersonExists("an account for that e-mail address exists")
    token = new_token()
    expires = now + ENROLMENT_LIFETIME
    sql.insert_enrolment(conn, token_hash(token), person_id, now, expires)
    audit.record(
        conn,
        AuditAction.PERSON_CREATED,
        actor=actor,
        details={
            "person_id": person_id,
            "role": role.value,
            "enrolment_expires_at": clock.rfc3339(expires),
        },
    )
    return Enrolment(person_id, f"{base_url.rstrip('/')}/enrol?token={token}", expires)


def get(conn: Connection, vault: Vault, person_id: str) -> Person:
    row = sql.get_person(conn, person_id) if len(person_id) <= 40 else None
    if row is None:
        raise PersonNotFound(f"no person {person_id}", person_id=person_id)
    return vault.person(row)


def everyone(conn: Connection, vault: Vault) -> list[Person]:
    return [vault.person(row) for row in sql.list_people(conn)]


def disable(conn: Connection, vault: Vault, person_id: str, *, actor: str) -> Person:
    """Disable an account for good and end its sessions at once (PersonNotFound for an
    unknown id). Disabling a disabled account changes nothing and writes nothing."""
    row = sql.get_person(conn, person_id, lock=True) if len(person_id) <= 40 else None
    if row is None:
        raise PersonNotFound(f"no person {person_id}", person_id=person_id)
    if row.status != PersonStatus.DISABLED.value:
        now = clock.now()
        sql.update_person(
            conn,
            person_id,
            {"status": PersonStatus.DISABLED.value, "disabled_at": now, "updated_at": now},
        )
        ended = sql.delete_sessions_of(conn, person_id)
        audit.record(
            conn,
            AuditAction.PERSON_DISABLED,
            actor=actor,
            details={"person_id": person_id, "sessions_ended": ended},
        )
        row = sql.get_person(conn, person_id)
        if row is None:
            raise PersonNotFound(f"no person {person_id}", person_id=person_id)
    return vault.person(row)
