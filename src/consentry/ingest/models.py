"""Event schema types (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


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


# GDPR Art. 9 and 10 data, as fideslang names it (API.md, Event schemas and events).
SPECIAL_CATEGORY_PREFIXES = (
    "user.biometric",
    "user.authorization.biometric",
    "user.health_and_medical",
    "user.genetic",
    "user.demographic.race_ethnicity",
    "user.demographic.religious_belief",
    "user.demographic.political_opinion",
    "user.demographic.sexual_orientation",
    "user.criminal_history",
)


def is_special_category(category: str) -> bool:
    return any(category == p or category.startswith(p + ".") for p in SPECIAL_CATEGORY_PREFIXES)


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
    personal: bool = field(init=False)
    # Stored sealed under the subject's key: a personal value kept as it is (or redacted).
    # Pseudonyms and tokens are not reversible from the row itself: they stay in clear.
    sealed: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "special", is_special_category(self.category))
        object.__setattr__(self, "personal", is_personal(self.category))
        irreversible = self.treatment in {Treatment.PSEUDONYMISE, Treatment.TOKENISE}
        object.__setattr__(self, "sealed", self.personal and not irreversible)


@dataclass(frozen=True, slots=True)
class EventSchema:
    event_type: str
    version: int
    purposes: tuple[str, ...]
    fields: tuple[FieldSpec, ...]
