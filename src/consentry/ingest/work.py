"""A batch on its way through the ingest pipeline (no I/O): each event's state one column at a
time, its subjects once each, and its decisions once per subject and schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from consentry.consent.models import Remembered
from consentry.ingest.decode import Event
from consentry.ingest.minimise import Plan
from consentry.ingest.schemas import CompiledSchema
from consentry.subjects.models import SubjectRef


class Decided:
    """The purposes a subject's events of one schema may be stored for (or the code refusing
    them), and how they are stored (planned when first needed). Remembered per (subject,
    schema, terminal-only) across batches while it holds (consent.models.Remembered): the
    same object stands for the same state, purposes and schema."""

    __slots__ = ("allowed", "code", "plan")

    def __init__(self, allowed: list[str], code: str | None) -> None:
        self.allowed = allowed
        self.code = code
        self.plan: Plan | None = None


Decision = Remembered[Decided]


@dataclass(slots=True)
class Work:
    """A batch's events, one list per column, by position in the batch."""

    ids: list[str | None]
    codes: list[str | None]
    # Which field and rule, when the code alone does not say (never a value that was sent).
    details: list[str | None]
    events: list[Event | None]
    # The index in `refs` of who each event is about (-1: nobody readable).
    subject_of: list[int]
    # The schema each event's properties were decoded against, and what they decoded to.
    schemas: list[CompiledSchema | None]
    values: list[dict[str, Any] | None]
    # The screened fields whose values held personal data, redacted in `values`.
    redacted: list[list[str] | None]
    # The batch's subject references, each once, and the subject each is (once resolved).
    refs: list[SubjectRef] = field(default_factory=list)
    subject_ids: list[str | None] = field(default_factory=list)
    # Whether each is named only by what is read from the terminal (policy.terminal_only).
    terminal: list[bool] = field(default_factory=list)
    # Each event's decision (index in `decisions`, -1 when none was made for it), each
    # decision with the subject (index in `refs`) and schema it was made for.
    decision_of: list[int] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    decided_for: list[tuple[int, CompiledSchema]] = field(default_factory=list)
    # Rows shaped before the transaction, by position, and the decision each was shaped
    # under: one stands only where the transaction makes the very same decision (the same
    # Remembered object: the same state, purposes and schema objects; the state object is
    # replaced whenever the subject's consent version moves).
    early_rows: list[tuple[object, ...] | None] = field(default_factory=list)
    early_decisions: list[Decision | None] = field(default_factory=list)
    # The tokens issued for the tokenised values of events, by position.
    tokens: dict[int, dict[str, str]] = field(default_factory=dict)

    def accepted(self) -> list[int]:
        """The positions of the events accepted so far."""
        return [n for n, code in enumerate(self.codes) if code is None]
