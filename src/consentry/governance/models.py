"""Governance types (no I/O): the data map's regions, transfer mechanisms, CCPA roles, system and
vendor records; the breach register's natures, risks, recipients and incidents."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from consentry.subjects.models import SubjectRef


class Region(StrEnum):
    EU = "EU"
    EEA = "EEA"
    UK = "UK"
    CH = "CH"
    US = "US"
    CA = "CA"
    JP = "JP"
    KR = "KR"
    BR = "BR"
    IN = "IN"
    AU = "AU"
    SG = "SG"
    OTHER = "OTHER"


class Mechanism(StrEnum):
    """GDPR Chapter V grounds a system's transfers rely on."""

    NONE = "none"
    ADEQUACY = "adequacy"
    DPF = "dpf"
    SCC = "scc"
    BCR = "bcr"
    UK_IDTA = "uk_idta"
    UK_ADDENDUM = "uk_addendum"


class CcpaRole(StrEnum):
    SERVICE_PROVIDER = "service_provider"
    CONTRACTOR = "contractor"
    THIRD_PARTY = "third_party"


class SystemKind(StrEnum):
    WEBHOOK = "webhook"
    KAFKA = "kafka"


class Refusal(StrEnum):
    """Why an event is not delivered to a system (API.md, Data map and delivery)."""

    TRANSFER_BLOCKED = "transfer_blocked"
    DPA_MISSING = "dpa_missing"
    SALE_OPTED_OUT = "sale_opted_out"
    TCF_VENDOR_NO_CONSENT = "tcf_vendor_no_consent"


DEFAULT_ACK_HOURS = 72


class VendorRisk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, slots=True)
class SubProcessor:
    """A processor engaged by a vendor (Art. 28(2), (4)), and where it processes."""

    name: str
    region: Region
    authorised_at: date


@dataclass(frozen=True, slots=True)
class Vendor:
    """A processor in the vendor register (Art. 28): its contract dates and sub-processors."""

    vendor_id: str
    name: str
    risk: VendorRisk
    reviewed_at: date
    dpa_signed_at: date | None = None
    dpa_expires_at: date | None = None
    # The CCPA service-provider or contractor terms (regs §7051); without them its systems
    # count as third parties.
    ccpa_contract_at: date | None = None
    sub_processors: tuple[SubProcessor, ...] = ()
    certifications: tuple[str, ...] = ()

    def dpa_in_force(self, today: date) -> bool:
        """A DPA signed on or before `today` and not expired (it ends at `dpa_expires_at`)."""
        if self.dpa_signed_at is None or self.dpa_signed_at > today:
            return False
        return self.dpa_expires_at is None or today < self.dpa_expires_at


@dataclass(frozen=True, slots=True)
class System:
    """A downstream destination in the data map."""

    system_id: str
    name: str
    kind: SystemKind
    endpoint: str
    purposes: frozenset[str]
    data_categories: frozenset[str]
    region: Region
    transfer_mechanism: Mechanism
    dpa_signed: bool
    dpf_certified_until: date | None = None
    tia_ref: str | None = None
    ccpa_role: CcpaRole | None = None
    vendor: str | None = None
    rights_endpoint: str | None = None
    ack_hours: int = DEFAULT_ACK_HOURS
    # The system's IAB TCF Global Vendor List id: it gets a subject's data only while that
    # vendor has consent in the subject's latest TC string.
    tcf_vendor_id: int | None = None
    # Whether it gets a `consent_updated` at its rights endpoint for every ledger change of a
    # purpose it serves (delivery/propagation.py).
    consent_events: bool = False
    # The vendor register's record of `vendor`, joined when the data map is loaded (not part
    # of the system's definition); None when the system names no vendor or an unregistered one.
    vendor_record: Vendor | None = None

    def declares(self, category: str) -> bool:
        """Whether a field of `category` may go to this system: fideslang prefixes match, so
        `user.contact` covers `user.contact.email`."""
        return any(category == c or category.startswith(c + ".") for c in self.data_categories)


class Nature(StrEnum):
    CONFIDENTIALITY = "confidentiality"
    INTEGRITY = "integrity"
    AVAILABILITY = "availability"


class Risk(StrEnum):
    NONE = "none"
    RISK = "risk"
    HIGH = "high"


class Role(StrEnum):
    CONTROLLER = "controller"
    PROCESSOR = "processor"


class Recipient(StrEnum):
    AUTHORITY = "authority"
    SUBJECTS = "subjects"
    CONTROLLER = "controller"
    PUBLIC = "public"
    CA_ATTORNEY_GENERAL = "ca_attorney_general"
    DATA_OWNER = "data_owner"


class Exemption(StrEnum):
    """Why subjects need no notice of a high-risk breach (Art. 34(3)(a)-(c))."""

    ENCRYPTED = "encrypted"
    MEASURES = "measures"
    PUBLIC_NOTICE = "disproportionate_effort"


@dataclass(frozen=True, slots=True)
class Facts:
    """What the rules read of an incident (free text only as present or absent)."""

    detected_at: datetime
    aware_at: datetime
    nature: Nature
    risk: Risk
    role: Role
    data_encrypted: bool
    # Effective: as reported, or true because the development key file was exposed.
    keys_compromised: bool
    measures_given: bool = False
    high_risk_no_longer_likely: bool = False
    disproportionate_effort: bool = False
    us_ca_count: int | None = None
    us_ca_acquired: bool = False


@dataclass(frozen=True, slots=True)
class Notice:
    recipient: Recipient
    at: datetime


@dataclass(frozen=True, slots=True)
class NewIncident:
    """An incident as reported (API.md, Operations: Incidents)."""

    detected_at: datetime
    aware_at: datetime
    nature: Nature
    data_categories: tuple[str, ...]
    risk: Risk
    keys_compromised: bool
    data_encrypted: bool = True
    role: Role = Role.CONTROLLER
    systems: tuple[str, ...] = ()
    window: tuple[datetime, datetime] | None = None
    subjects: tuple[SubjectRef, ...] = ()
    subjects_estimate: int | None = None
    records_estimate: int | None = None
    texts: dict[str, str] = field(default_factory=dict)
    disproportionate_effort: bool = False
    high_risk_no_longer_likely: bool = False
    # The incident reached Consentry's data directory (its database file, its key file).
    data_directory: bool = False
    us_ca_residents: tuple[int, bool] | None = None


@dataclass(frozen=True, slots=True)
class NewNotification:
    to: str
    at: datetime
    reference: str | None = None
    delay_reasons: tuple[str, ...] = ()
