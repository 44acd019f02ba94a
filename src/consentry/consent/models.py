"""Consent types: purposes, notices, ledger entries, folded state, decisions (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class LegalBasis(StrEnum):
    """GDPR Art. 6(1)."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTERESTS = "vital_interests"
    PUBLIC_TASK = "public_task"
    LEGITIMATE_INTEREST = "legitimate_interest"


class UsCaModel(StrEnum):
    OPT_IN = "opt_in"
    OPT_OUT = "opt_out"


class AutomatedDecisionBasis(StrEnum):
    """What lets a purpose make decisions with legal or similarly significant effects by
    automated means alone (Art. 22(2)(a)-(c))."""

    CONTRACT = "contract"
    LAW = "law"
    EXPLICIT_CONSENT = "explicit_consent"


class State(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    WITHDRAWN = "withdrawn"
    # A grant that lapsed at its expires_at, written by the expiry sweep (consent/expiry.py).
    EXPIRED = "expired"


class Source(StrEnum):
    WEB = "web"
    APP = "app"
    IVR = "ivr"
    CHAT = "chat"
    AGENT = "agent"
    EMAIL = "email"
    API = "api"
    IMPORT = "import"
    GPC = "gpc"
    TCF = "tcf"
    PORTAL = "portal"
    # The expiry sweep; never accepted from a caller.
    EXPIRY = "expiry"


class AgeBand(StrEnum):
    UNKNOWN = "unknown"
    UNDER_13 = "under_13"
    AGE_13_15 = "13_15"
    AGE_16_17 = "16_17"
    ADULT = "adult"

    @property
    def lowest_age(self) -> int:
        """The youngest age in the band; `unknown` counts as adult (API.md, Consent)."""
        return {"unknown": 18, "under_13": 0, "13_15": 13, "16_17": 16, "adult": 18}[self.value]


class Reason(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    EXPIRED = "expired"
    NEVER_ASKED = "never_asked"
    NOT_REQUIRED = "not_required"
    NOT_OPTED_OUT = "not_opted_out"
    SUBJECT_ERASED = "subject_erased"
    RESTRICTED = "restricted"
    OBJECTED = "objected"


class ComplianceStatus(StrEnum):
    """A subject's standing over the consent-based purposes (API.md, Consent: compliance)."""

    FULLY_OPTED_IN = "FULLY_OPTED_IN"
    NOT_OPTED_OUT = "NOT_OPTED_OUT"
    PARTIAL_OPT_IN = "PARTIAL_OPT_IN"
    FULLY_OPTED_OUT = "FULLY_OPTED_OUT"
    EXPIRED = "EXPIRED"
    NOT_ASKED = "NOT_ASKED"
    RESTRICTED = "RESTRICTED"
    ERASED = "ERASED"


SPECIAL_CATEGORY_CONDITIONS = frozenset("abcdefghij")


@dataclass(frozen=True, slots=True)
class Purpose:
    key: str
    name: str
    legal_basis: LegalBasis
    retention_days: int
    consent_ttl_days: int = 395
    sale_or_share: bool = False
    direct_marketing: bool = False
    strictly_necessary: bool = False
    special_category_condition: str | None = None
    us_ca_model: UsCaModel = UsCaModel.OPT_IN
    retain_identities: bool = False
    data_use: str | None = None
    # Art. 22(2): None, the purpose makes no significant automated decision.
    automated_decision_basis: AutomatedDecisionBasis | None = None
    description: str = ""
    legal_basis_locked: bool = False
    # Its bit in stored events' purpose mask, given by storage when the purpose is created.
    bit: int = -1

    @property
    def needs_consent(self) -> bool:
        return self.legal_basis is LegalBasis.CONSENT


@dataclass(frozen=True, slots=True)
class Notice:
    notice_id: str
    version: str
    sha256: str
    purposes: frozenset[str]


@dataclass(frozen=True, slots=True)
class Intent:
    """One purpose's new state as a consent call asks for it, before it is recorded."""

    purpose: str
    state: State
    source: Source
    # When it took effect, if not when it is recorded (an expiry: at the grant's expires_at).
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    entry_id: int
    subject_id: str
    purpose: str
    state: State
    source: Source
    at: datetime
    expires_at: datetime | None
    version: int
    notice_id: str | None = None
    notice_version: str | None = None
    notice_sha256: str | None = None
    jurisdiction: str | None = None
    explicit: bool = False
    actor: str = ""
    evidence: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class PurposeState:
    """The current state of one purpose for one subject: its latest ledger entry."""

    state: State
    updated_at: datetime
    expires_at: datetime | None
    source: Source
    notice_sha256: str | None
    explicit: bool


@dataclass(frozen=True, slots=True)
class SubjectConsent:
    """A subject's folded consent state and the attributes decisions depend on."""

    subject_id: str
    version: int = 0
    purposes: dict[str, PurposeState] = field(default_factory=dict)
    jurisdiction: str | None = None
    age_band: AgeBand = AgeBand.UNKNOWN
    gpc: bool = False
    erased: bool = False
    restricted: bool = False
    objected: frozenset[str] = frozenset()
    # Purposes restricted while an objection to them awaits its decision (Art. 21(1), 18(1)(d)).
    restricted_purposes: frozenset[str] = frozenset()
    # A request to limit the use of sensitive personal information holds (CCPA §1798.121).
    sensitive_limited: bool = False
    # The GVL vendors with consent (VendorConsents) in the subject's latest TC string; None
    # while no TC string was ever recorded.
    tcf_vendors: frozenset[int] | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: Reason
    legal_basis: LegalBasis
    version: int


@dataclass(frozen=True, slots=True)
class Remembered(Generic[T]):
    """A decision kept for reuse with what it was made from: it holds while the subject's
    state, the purposes and the context it was decided in (a schema, a system) are the very
    objects it was made from (a change to any of them makes new ones), and until the first
    grant it relied on expires."""

    value: T
    state: SubjectConsent
    purposes: dict[str, Purpose]
    context: object
    until: datetime | None

    def holds(
        self, state: SubjectConsent, purposes: dict[str, Purpose], context: object, now: datetime
    ) -> bool:
        return (
            self.state is state
            and self.purposes is purposes
            and self.context is context
            and (self.until is None or now < self.until)
        )
