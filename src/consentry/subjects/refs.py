"""Turning a subject reference from the wire into a SubjectRef of normalised identities."""

from __future__ import annotations

import re
from collections.abc import Sequence

from consentry.errors import EmptyIdentities, InvalidSubjectRef
from consentry.subjects.models import Identity, SubjectRef
from consentry.subjects.normalise import identity_type, normalise

MAX_IDENTITIES = 10
SUBJECT_ID = re.compile(r"sub_[0-9a-f]{24}")


def subject_ref(
    subject_id: str | None,
    identities: Sequence[tuple[str, str]] | None,
    default_region: str = "",
) -> SubjectRef:
    """Exactly one of `subject_id` or a non-empty list of (type, value) pairs."""
    if subject_id is not None and identities is not None:
        raise InvalidSubjectRef("give subject_id or identities, not both")
    if subject_id is not None:
        if not SUBJECT_ID.fullmatch(subject_id):
            raise InvalidSubjectRef("subject_id is not a Consentry subject id")
        return SubjectRef(subject_id=subject_id)
    if identities is None:
        raise InvalidSubjectRef("a subject needs subject_id or identities")
    if not identities:
        raise EmptyIdentities("identities must list at least one identity")
    if len(identities) > MAX_IDENTITIES:
        raise InvalidSubjectRef(f"at most {MAX_IDENTITIES} identities per subject reference")
    normalised: dict[Identity, None] = {}
    for type_, value in identities:
        normalised[normalise(identity_type(type_), value, default_region)] = None
    return SubjectRef(identities=tuple(normalised))
