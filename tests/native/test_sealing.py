"""The core's sealing (core/src/seal.rs, through consentry.native) against the Python that
sealed everything stored before it (tests/native/reference.py): what one seals the other opens,
byte for byte the same layout, for any key, associated data and plaintext."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry import native
from consentry.errors import KeyUnwrapFailed
from consentry.ingest import sealing
from consentry.keys.envelope import Sealer, nonces
from tests.native import reference

keys = st.binary(min_size=32, max_size=32)
data = st.binary(max_size=600)
event_ids = st.text(min_size=1, max_size=40)


@given(keys, data, data)
def test_what_the_core_seals_the_reference_opens(key: bytes, plaintext: bytes, aad: bytes) -> None:
    blob = native.Sealer(key).seal(plaintext, aad)
    assert len(blob) == len(plaintext) + 29
    assert blob[:1] == b"\x01"
    assert reference.open_(key, blob, aad) == plaintext


@given(keys, data, data)
def test_what_the_reference_sealed_the_core_opens(key: bytes, plaintext: bytes, aad: bytes) -> None:
    blob = reference.seal(key, plaintext, aad)
    assert native.Sealer(key).open(blob, aad) == plaintext
    assert Sealer(key).open(blob, aad) == plaintext


@given(keys, data, data, st.binary(min_size=12, max_size=12))
def test_under_one_nonce_both_give_the_same_bytes(
    key: bytes, plaintext: bytes, aad: bytes, nonce: bytes
) -> None:
    assert native.Sealer(key).seal(plaintext, aad, nonce) == reference.seal(
        key, plaintext, aad, nonce
    )


@given(keys, data, data, st.integers(min_value=0, max_value=60), st.integers(0, 255))
def test_a_changed_byte_or_aad_is_refused_by_both(
    key: bytes, plaintext: bytes, aad: bytes, position: int, flip: int
) -> None:
    blob = bytearray(native.Sealer(key).seal(plaintext, aad))
    position %= len(blob)
    blob[position] ^= flip or 1
    with pytest.raises(KeyUnwrapFailed):
        Sealer(key).open(bytes(blob), aad)
    with pytest.raises(reference.Refused):
        reference.open_(key, bytes(blob), aad)
    good = native.Sealer(key).seal(plaintext, aad)
    with pytest.raises(native.OpenError):
        native.Sealer(key).open(good, aad + b"\x00")


@given(st.lists(st.tuples(keys, data, event_ids), max_size=20))
def test_an_events_batch_opens_with_the_reference_under_each_events_aad(
    jobs: list[tuple[bytes, bytes, str]],
) -> None:
    sealers = [Sealer(key) for key, _, _ in jobs]
    blobs = sealing.seal_events(sealers, [p for _, p, _ in jobs], [e for _, _, e in jobs])
    assert len(blobs) == len(jobs)
    for (key, plaintext, event_id), blob in zip(jobs, blobs, strict=True):
        assert reference.open_(key, blob, reference.event_aad(event_id)) == plaintext
    # Each its own nonce, from one read of the OS random source.
    assert len({blob[1:13] for blob in blobs}) == len(blobs)


@given(st.lists(st.tuples(keys, data, data), max_size=20))
def test_a_batch_opens_with_the_reference(jobs: list[tuple[bytes, bytes, bytes]]) -> None:
    blobs = native.seal_batch(
        [native.Sealer(k) for k, _, _ in jobs], [p for _, p, _ in jobs], [a for _, _, a in jobs]
    )
    for (key, plaintext, aad), blob in zip(jobs, blobs, strict=True):
        assert reference.open_(key, blob, aad) == plaintext


@given(event_ids)
def test_the_event_aad_is_the_one_stored(event_id: str) -> None:
    assert sealing.event_aad(event_id) == reference.event_aad(event_id)
    assert sealing.AAD_PREFIX == reference.EVENT_AAD_PREFIX


def test_batches_take_one_item_per_item() -> None:
    sealer = native.Sealer(bytes(32))
    with pytest.raises(ValueError, match="not one for one"):
        native.seal_events([sealer], [b"a", b"b"], ["evt-1"])
    with pytest.raises(ValueError, match="not one for one"):
        native.seal_batch([sealer, sealer], [b"a", b"b"], [b""])
    assert native.seal_events([], [], []) == []


def test_database_buffers_are_read_as_bytes() -> None:
    key = bytes(range(32))
    blob = native.Sealer(key).seal(b"ana@example.com", b"aad")
    sealer = Sealer(bytearray(key))
    assert sealer.open(memoryview(blob), bytearray(b"aad")) == b"ana@example.com"
    with pytest.raises(TypeError):
        sealer.open("not bytes", b"aad")  # type: ignore[arg-type]


def test_nonces_come_from_the_core() -> None:
    drawn = nonces(3)
    assert [len(n) for n in drawn] == [12, 12, 12]
    assert nonces(0) == []
