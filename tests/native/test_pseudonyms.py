"""The core's keyed pseudonyms (core/src/pseudonym.rs) against the Python that computed every
pseudonym stored and delivered before it (tests/native/reference.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry import native
from consentry.delivery.outbox import Pseudonyms
from consentry.ingest.treatments import Pseudonymise
from tests.native import reference

# HMAC keys of any length: shorter than, equal to and longer than SHA-256's 64-byte block.
keys = st.binary(min_size=0, max_size=130)
texts = st.text(max_size=60)
# What a decoded property holds: the pseudonym is of its str(), as it always was.
values = st.one_of(
    st.text(max_size=60),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
)


@given(keys, st.lists(st.tuples(texts, values), max_size=30))
def test_field_pseudonyms_are_the_stored_ones(key: bytes, items: list[tuple[str, Any]]) -> None:
    fields = [f for f, _ in items]
    vals = [v for _, v in items]
    expected = [reference.field_pseudonym(key, f, v) for f, v in items]
    assert Pseudonymise(key).many(fields, vals) == expected
    assert native.Pseudonymiser(key).fields(fields, [str(v) for v in vals]) == expected


@given(keys, texts, st.lists(texts, max_size=30))
def test_system_pseudonyms_are_the_delivered_ones(
    secret: bytes, system_id: str, subject_ids: list[str]
) -> None:
    expected = [reference.system_pseudonym(secret, system_id, s) for s in subject_ids]
    assert [Pseudonyms(secret).of(system_id, s) for s in subject_ids] == expected
    assert native.Pseudonymiser.for_system(secret, system_id).subjects(subject_ids) == expected


def test_a_known_pseudonym() -> None:
    # As Consentry 0.2 stored it (also pinned in core/src/pseudonym.rs).
    assert (
        Pseudonymise(b"k" * 32).many(["email"], ["ada@example.com"])[0]
        == "8eb47abceba007ca02072032f754aa8252760da1f267df4cf0bc12c5126a2108"
    )


def test_fields_and_values_go_one_for_one() -> None:
    with pytest.raises(ValueError, match="not one for one"):
        native.Pseudonymiser(b"key").fields(["a"], [])
