"""One event on its way through the ingest pipeline, and its shape once decided (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from consentry.consent.models import Purpose, SubjectConsent
from consentry.ingest.decode import Event
from consentry.ingest.minimise import Plan
from consentry.ingest.models import Treatment
from consentry.ingest.schemas import CompiledSchema
from consentry.subjects.models import SubjectRef

# Values treated before the transaction: (treatment, field, value) -> treated value.
Ready = dict[tuple[Treatment, str, Any], Any]


# A struct: one is built per accepted event (and per early shape, kept or not); it refers
# to nothing that refers back to it, so the collector need not track it (gc=False).
class Shaped(msgspec.Struct, frozen=True, gc=False):
    """How one accepted event is stored: its row (in storage.ingest.EVENT_COLUMNS order but
    for received_at, added at the insert), its plan, and its treated values (delivery is handed
    its kept values only when the data map has systems, see shaping.py)."""

    row: tuple[object, ...]
    plan: Plan
    treated: dict[str, Any]


# A struct for the same reason as Shaped (one per event shaped early, kept or not).
class Early(msgspec.Struct, frozen=True, gc=False):
    """An event shaped before the batch's transaction. It stands only where the transaction
    decides the same purposes against the very same state, purposes and schema objects: the
    state object is replaced whenever the subject's consent version moves."""

    state: SubjectConsent
    purposes: dict[str, Purpose]
    schema: CompiledSchema
    allowed: list[str]
    shaped: Shaped


@dataclass(slots=True)
class Work:
    """One event on its way through the pipeline."""

    position: int
    event_id: str | None
    code: str | None = None
    # Which field and rule, when the code alone does not say (never a value that was sent).
    detail: str | None = None
    event: Event | None = None
    ref: SubjectRef | None = None
    schema: CompiledSchema | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    # The screened fields whose values held personal data, redacted in `properties`.
    redacted: list[str] | None = None
    subject_id: str | None = None
    purposes: list[str] = field(default_factory=list)
    early: Early | None = None
