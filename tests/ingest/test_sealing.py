"""ingest/sealing.py: an event's sealed values open under the subject's key for that event
only, and never hold a value in clear. No I/O."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.errors import KeyUnwrapFailed
from consentry.ingest import minimise, sealing
from consentry.keys.envelope import Sealer

VALUES = {"page": "/account/ana", "email": "ana@example.com"}


def seal(sealer: Sealer, values: dict[str, object], event_id: str) -> bytes:
    """As the pipeline stores them: sorted JSON, bound to the event."""
    return sealer.seal(minimise.encode_bytes(values), sealing.event_aad(event_id))


def test_sealed_values_open_for_their_event() -> None:
    sealer = Sealer(secrets.token_bytes(32))
    blob = seal(sealer, VALUES, "evt-1")
    assert b"ana@example.com" not in blob
    assert sealing.open_values(sealer, blob, "evt-1") == VALUES


def test_a_blob_moved_to_another_event_does_not_open() -> None:
    sealer = Sealer(secrets.token_bytes(32))
    blob = seal(sealer, VALUES, "evt-1")
    for other in ("evt-2", "evt-10", "evt-", ""):
        with pytest.raises(KeyUnwrapFailed):
            sealing.open_values(sealer, blob, other)


def test_another_subjects_key_does_not_open_it() -> None:
    blob = seal(Sealer(secrets.token_bytes(32)), VALUES, "evt-1")
    with pytest.raises(KeyUnwrapFailed):
        sealing.open_values(Sealer(secrets.token_bytes(32)), blob, "evt-1")


def test_the_associated_data_names_the_event() -> None:
    assert sealing.event_aad("evt-1") == b"consentry:event:evt-1"
    assert sealing.event_aad("é") == sealing.AAD_PREFIX + "é".encode()


@given(
    st.dictionaries(
        st.text(max_size=10),
        st.one_of(st.text(), st.integers(-(2**63), 2**63 - 1), st.booleans(), st.none()),
        max_size=5,
    ),
    st.text(min_size=1, max_size=20),
)
def test_any_values_round_trip(values: dict[str, object], event_id: str) -> None:
    sealer = Sealer(bytes(32))
    assert sealing.open_values(sealer, seal(sealer, values, event_id), event_id) == values
