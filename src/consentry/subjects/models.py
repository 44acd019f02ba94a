"""Subject, identity and jurisdiction types (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class IdentityType(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    CUSTOMER_ID = "customer_id"
    DEVICE_ID = "device_id"
    COOKIE_ID = "cookie_id"
    ACCOUNT_ID = "account_id"


# The fideslang data category of each identity type: a rectification notice carries a
# corrected value only to a system that declares its category (API.md, Rights notices), and
# a categories-only access report names them.
IDENTITY_CATEGORIES = {
    "email": "user.contact.email",
    "phone": "user.contact.phone_number",
    "customer_id": "user.unique_id",
    "account_id": "user.account",
    "device_id": "user.device.device_id",
    "cookie_id": "user.device.cookie_id",
}


class Jurisdiction(StrEnum):
    EU = "EU"
    UK = "UK"
    US_CA = "US-CA"
    US = "US"
    OTHER = "OTHER"


# Unknown counts as EU, the strictest (API.md, Conventions).
DEFAULT_JURISDICTION = Jurisdiction.EU


@dataclass(frozen=True, slots=True)
class Identity:
    """One normalised identity value (never stored like this: see `identities` table)."""

    type: IdentityType
    value: str


@dataclass(frozen=True, slots=True)
class SubjectRef:
    """What a caller names a subject by: its id, or one or more identities."""

    subject_id: str | None = None
    identities: tuple[Identity, ...] = ()


@dataclass(frozen=True, slots=True)
class Subject:
    subject_id: str
    jurisdiction: Jurisdiction | None
    created_at: datetime

    @property
    def effective_jurisdiction(self) -> Jurisdiction:
        return self.jurisdiction or DEFAULT_JURISDICTION


@dataclass(frozen=True, slots=True)
class Resolution:
    """The outcome of resolving a reference: the subject, and whether this call created it."""

    subject: Subject
    created: bool
    # A known subject given another jurisdiction (a new consent version).
    jurisdiction_changed: bool = False
