"""Data map types: regions, transfer mechanisms, CCPA roles and the system record (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


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

    def declares(self, category: str) -> bool:
        """Whether a field of `category` may go to this system: fideslang prefixes match, so
        `user.contact` covers `user.contact.email`."""
        return any(category == c or category.startswith(c + ".") for c in self.data_categories)
