"""audit/auditor.py: an auditor's checks of heads, inclusion and consistency proofs on the JSON
the API returns, here built without a server (an in-memory tree, a fresh Ed25519 key): true for
what is right, false (never an exception) for anything altered or malformed."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from consentry.audit import auditor
from consentry.audit.merkle import MerkleTree

SIZE = 7


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def make_jwk(key: Ed25519PrivateKey) -> dict[str, str]:
    x = b64url(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    members = {"crv": "Ed25519", "kty": "OKP", "x": x}
    kid = b64url(
        hashlib.sha256(json.dumps(members, sort_keys=True, separators=(",", ":")).encode()).digest()
    )
    return members | {"kid": kid, "use": "sig", "alg": "EdDSA"}


KEY = Ed25519PrivateKey.generate()
JWK = make_jwk(KEY)
JWKS = {"keys": [JWK]}


def entry(index: int) -> dict[str, Any]:
    return {
        "index": index,
        "at": f"2026-01-01T00:00:0{index}Z",
        "actor": "key:0123456789abcdef",
        "action": "consent:granted",
        "subject_id": "sub_0123456789abcdef0123",
        "details": {"purpose": "analytics", "note": "é"},
    }


ENTRIES = [entry(i) for i in range(SIZE)]
TREE = MerkleTree()
for _e in ENTRIES:
    TREE.append(auditor.entry_leaf_hash(_e))  # type: ignore[arg-type]


def head(size: int, key: Ed25519PrivateKey = KEY, kid: str = JWK["kid"]) -> dict[str, Any]:
    root = TREE.root_at(size).hex()
    signed_at = "2026-01-01T00:01:00Z"
    signature = key.sign(auditor.head_message(size, root, signed_at))
    return {
        "size": size,
        "root_hash": root,
        "signed_at": signed_at,
        "kid": kid,
        "signature": b64url(signature),
    }


def inclusion(index: int, size: int) -> dict[str, Any]:
    return {
        "leaf_index": index,
        "tree_size": size,
        "audit_path": [h.hex() for h in TREE.inclusion_proof(index, size)],
    }


def consistency(first: int, second: int) -> dict[str, Any]:
    return {
        "first": first,
        "second": second,
        "consistency_path": [h.hex() for h in TREE.consistency_proof(first, second)],
    }


def test_the_head_message_is_canonical_json_of_three_fields() -> None:
    assert auditor.head_message(3, "ab", "2026-01-01T00:00:00Z") == (
        b'{"root_hash":"ab","signed_at":"2026-01-01T00:00:00Z","size":3}'
    )


def test_a_leaf_hash_covers_every_field_and_agrees_with_a_given_one() -> None:
    digest = auditor.entry_leaf_hash(ENTRIES[0])
    assert digest is not None
    assert auditor.entry_leaf_hash(ENTRIES[0] | {"leaf_hash": digest.hex()}) == digest
    assert auditor.entry_leaf_hash(ENTRIES[0] | {"leaf_hash": "00" * 32}) is None
    assert auditor.entry_leaf_hash(ENTRIES[0] | {"actor": "someone"}) != digest
    assert auditor.entry_leaf_hash({k: v for k, v in ENTRIES[0].items() if k != "at"}) is None
    assert auditor.entry_leaf_hash(ENTRIES[0] | {"extra": 1}) is None
    assert auditor.entry_leaf_hash(ENTRIES[0] | {"details": {"x": b"raw"}}) is None
    assert auditor.entry_leaf_hash([1, 2]) is None  # type: ignore[arg-type]


def test_a_signed_head_verifies() -> None:
    assert auditor.verify_head(head(SIZE), JWKS)


@pytest.mark.parametrize(
    "change",
    [
        {"size": SIZE - 1},
        {"size": -1},
        {"size": True},
        {"root_hash": "00" * 32},
        {"root_hash": "AB" * 32},
        {"root_hash": "ab"},
        {"signed_at": "2026-01-01T00:02:00Z"},
        {"signed_at": 5},
        {"signature": "AAAA"},
        {"signature": 5},
        {"signature": "!!"},
        {"kid": "another"},
    ],
)
def test_an_altered_head_does_not_verify(change: dict[str, Any]) -> None:
    assert not auditor.verify_head(head(SIZE) | change, JWKS)


def test_a_head_signed_by_another_key_or_a_key_with_a_wrong_kid_does_not_verify() -> None:
    other = Ed25519PrivateKey.generate()
    assert not auditor.verify_head(head(SIZE, key=other), JWKS)
    # The other key published under our kid: the thumbprint does not match it.
    impostor = make_jwk(other) | {"kid": JWK["kid"]}
    assert not auditor.verify_head(head(SIZE, key=other), {"keys": [impostor]})
    assert not auditor.verify_head(head(SIZE), {"keys": [JWK | {"crv": "X25519"}]})
    assert not auditor.verify_head(head(SIZE), {"keys": []})
    assert not auditor.verify_head(head(SIZE), {})


@pytest.mark.parametrize("index", range(SIZE))
def test_every_entry_proves_included(index: int) -> None:
    proof = inclusion(index, SIZE)
    assert auditor.verify_inclusion(ENTRIES[index], proof, head(SIZE))
    assert auditor.verify_inclusion(ENTRIES[index], proof, head(SIZE), JWKS)


def test_an_altered_entry_or_proof_does_not_prove_inclusion() -> None:
    proof = inclusion(3, SIZE)
    good = head(SIZE)
    assert not auditor.verify_inclusion(ENTRIES[3] | {"actor": "x"}, proof, good)
    assert not auditor.verify_inclusion(ENTRIES[4], proof, good)
    assert not auditor.verify_inclusion(ENTRIES[3], proof | {"leaf_index": 4}, good)
    assert not auditor.verify_inclusion(ENTRIES[3], proof | {"tree_size": SIZE - 1}, good)
    assert not auditor.verify_inclusion(ENTRIES[3], proof | {"audit_path": []}, good)
    path = proof["audit_path"]
    assert not auditor.verify_inclusion(ENTRIES[3], proof | {"audit_path": path[::-1]}, good)
    assert not auditor.verify_inclusion(
        ENTRIES[3], proof | {"audit_path": [path[0].upper(), *path[1:]]}, good
    )
    assert not auditor.verify_inclusion(ENTRIES[3], proof, good | {"root_hash": "00" * 32})
    # Right proof, but the head's signature does not hold.
    assert not auditor.verify_inclusion(ENTRIES[3], proof, good | {"signature": "AAAA"}, JWKS)
    assert auditor.verify_inclusion(ENTRIES[3], proof, good | {"signature": "AAAA"})


@pytest.mark.parametrize(("first", "second"), [(1, SIZE), (3, 5), (4, SIZE), (SIZE, SIZE)])
def test_heads_prove_consistent(first: int, second: int) -> None:
    proof = consistency(first, second)
    assert auditor.verify_consistency(proof, head(first), head(second), JWKS)


def test_an_altered_consistency_proof_or_head_does_not_verify() -> None:
    proof = consistency(3, SIZE)
    one, two = head(3), head(SIZE)
    assert not auditor.verify_consistency(proof, head(4), two)
    assert not auditor.verify_consistency(proof | {"first": 4}, one, two)
    assert not auditor.verify_consistency(proof | {"consistency_path": []}, one, two)
    rewritten = copy.deepcopy(two) | {"root_hash": "11" * 32}
    assert not auditor.verify_consistency(proof, one, rewritten)
    assert not auditor.verify_consistency(proof, one, two | {"kid": "x"}, JWKS)


junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(junk, junk, junk)
def test_malformed_input_is_false_not_an_exception(a: Any, b: Any, c: Any) -> None:
    assert auditor.verify_head(a if isinstance(a, dict) else {"size": a}, JWKS) is False
    assert (
        auditor.verify_inclusion(ENTRIES[0], a if isinstance(a, dict) else {}, head(SIZE)) is False
    )
    assert (
        auditor.verify_consistency(
            b if isinstance(b, dict) else {"first": b}, head(1), c if isinstance(c, dict) else {}
        )
        is False
    )
