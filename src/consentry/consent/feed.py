"""The port through which committed ledger changes are published (stream mode: the compacted
topic `consentry.consents`), and their value there: the purposes' states and the version."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from consentry.consent.models import SubjectConsent


class ConsentFeed(Protocol):
    def publish(self, states: Sequence[SubjectConsent]) -> None:
        """Each subject's state after a change that has committed (an erased subject's is
        published as a tombstone). Called after the commit, never inside a transaction; it
        must not raise for a broker's fault (the database stays the truth: a change not
        published leaves a replica's cache behind, which the version rule corrects)."""
        ...


def value(state: SubjectConsent) -> dict[str, Any] | None:
    """The record's value of a subject's state: `{"subject_id", "version", "purposes":
    {purpose: state}}`; None (a tombstone) once the subject is erased."""
    if state.erased:
        return None
    return {
        "subject_id": state.subject_id,
        "version": state.version,
        "purposes": {key: held.state.value for key, held in sorted(state.purposes.items())},
    }
