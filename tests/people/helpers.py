"""Shared steps of the people tests: fictional accounts, the link's token, TOTP codes at the
fake clock's time, an enrolled person."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pyotp
from sqlalchemy import select

from consentry.people.models import Enrolment, PersonRole
from consentry.people.service import People
from consentry.storage.engine import AnyRow, Store
from consentry.storage.schema import audit_entries, people
from tests.consent.helpers import FakeClock

EMAIL = "Ada.Lovelace@Example.com"
PASSWORD = "analytical engine notes 1843"
CLIENT = "192.0.2.10"


def token_of(enrolment: Enrolment) -> str:
    return parse_qs(urlsplit(enrolment.url).query)["token"][0]


def secret_of(uri: str) -> str:
    return parse_qs(urlsplit(uri).query)["secret"][0]


def code(secret: str, fake: FakeClock, *, steps: int = 0) -> str:
    """The authenticator's code at the fake clock's time, `steps` 30-second steps away."""
    return pyotp.TOTP(secret).at(fake.moment, counter_offset=steps)


@dataclass(frozen=True)
class Enrolled:
    person_id: str
    secret: str
    email: str
    enrolment_token: str


def enrol(
    directory: People,
    fake: FakeClock,
    email: str = EMAIL,
    role: PersonRole = PersonRole.DPO,
    password: str = PASSWORD,
) -> Enrolled:
    """A person created, with a password and a confirmed second factor; the clock is then
    moved to the next TOTP step, so the code used to confirm is not the next one wanted."""
    enrolment = directory.create(email, role, actor="cli")
    token = token_of(enrolment)
    setup = directory.set_password(token, password)
    secret = secret_of(setup.uri)
    directory.confirm_totp(token, code(secret, fake))
    fake.advance(seconds=30)
    return Enrolled(enrolment.person_id, secret, email, token)


def person_row(store: Store, person_id: str) -> AnyRow:
    with store.read() as conn:
        row = conn.execute(select(people).where(people.c.person_id == person_id)).first()
    assert row is not None
    return row


def audit_rows(store: Store, prefix: str = "person:") -> list[AnyRow]:
    with store.read() as conn:
        rows = conn.execute(select(audit_entries).order_by(audit_entries.c.idx)).all()
    return [r for r in rows if r.action.startswith(prefix)]
