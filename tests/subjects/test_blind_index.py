"""subjects/blind_index.py: a keyed HMAC per identity, separate per type and per key."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.subjects.blind_index import BlindIndex
from consentry.subjects.models import Identity, IdentityType

KEY = bytes(range(32))
types = st.sampled_from(list(IdentityType))
values = st.text(min_size=1, max_size=64)


def test_the_index_is_hmac_sha256_of_type_nul_value() -> None:
    # Stored in `identities.blind_index`: the construction never changes.
    identity = Identity(IdentityType.EMAIL, "ada@example.com")
    expected = hmac.new(KEY, b"email\x00ada@example.com", hashlib.sha256).digest()
    assert BlindIndex(KEY).of(identity) == expected


@given(types, values)
def test_one_identity_has_one_index_of_32_bytes(type_: IdentityType, value: str) -> None:
    index = BlindIndex(KEY)
    first = index.of(Identity(type_, value))
    assert len(first) == 32
    # The prepared state is copied, never consumed: a second call agrees.
    assert index.of(Identity(type_, value)) == first
    assert BlindIndex(KEY).of(Identity(type_, value)) == first


@given(types, types, values)
def test_equal_values_of_two_types_never_collide(a: IdentityType, b: IdentityType, v: str) -> None:
    if a is not b:
        assert BlindIndex(KEY).of(Identity(a, v)) != BlindIndex(KEY).of(Identity(b, v))


@given(types, values)
def test_another_key_gives_another_index(type_: IdentityType, value: str) -> None:
    other = bytes(reversed(range(32)))
    identity = Identity(type_, value)
    assert BlindIndex(KEY).of(identity) != BlindIndex(other).of(identity)


@pytest.mark.parametrize("length", [0, 16, 31])
def test_a_short_key_is_refused(length: int) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        BlindIndex(bytes(length))
