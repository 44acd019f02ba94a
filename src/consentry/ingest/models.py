"""Event schema types (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from consentry.consent.policy import is_sensitive_category, is_special_category


class FieldType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    TIMESTAMP = "timestamp"


class Treatment(StrEnum):
    KEEP = "keep"
    PSEUDONYMISE = "pseudonymise"
    TOKENISE = "tokenise"
    REDACT = "redact"
    DROP = "drop"


def is_personal(category: str) -> bool:
    """Data about a person (fideslang `user.*`): sealed under the subject's key when kept."""
    return category == "user" or category.startswith("user.")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: FieldType
    category: str
    treatment: Treatment
    purposes: frozenset[str] | None = None
    required: bool = False
    # Derived from `category` once, not per event (the hot path asks for every field).
    special: bool = field(init=False)
    # CCPA sensitive personal information: kept to §7027(m) uses once a limit holds.
    sensitive: bool = field(init=False)
    personal: bool = field(init=False)
    # Stored sealed under the subject's key: a personal value kept as it is (or redacted).
    # Pseudonyms and tokens are not reversible from the row itself: they stay in clear.
    sealed: bool = field(init=False)
    # Kept in clear under a non-personal category: its strings are screened at ingest, and
    # personal data the recognizers find in them is redacted before it goes anywhere (API.md,
    # Governance; the core does it as it decodes, core/src/decode/schema.rs).
    screened: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "special", is_special_category(self.category))
        object.__setattr__(self, "sensitive", is_sensitive_category(self.category))
        object.__setattr__(self, "personal", is_personal(self.category))
        irreversible = self.treatment in {Treatment.PSEUDONYMISE, Treatment.TOKENISE}
        object.__setattr__(self, "sealed", self.personal and not irreversible)
        object.__setattr__(
            self,
            "screened",
            not self.personal
            and self.treatment is Treatment.KEEP
            and self.type is FieldType.STRING,
        )


@dataclass(frozen=True, slots=True)
class EventSchema:
    event_type: str
    version: int
    purposes: tuple[str, ...]
    fields: tuple[FieldSpec, ...]
