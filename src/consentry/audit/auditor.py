"""Checks an auditor runs without the server: signed tree heads, inclusion and consistency
proofs, all on the JSON the API returns (API.md, Audit)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consentry.audit import merkle
from consentry.audit.models import canonical_json

ENTRY_FIELDS = ("index", "at", "actor", "action", "subject_id", "details")


def head_message(size: int, root_hash: str, signed_at: str) -> bytes:
    """The bytes a tree head's Ed25519 signature covers: canonical JSON of the three fields."""
    return canonical_json({"size": size, "root_hash": root_hash, "signed_at": signed_at}).encode()


def entry_leaf_hash(entry: Mapping[str, Any]) -> bytes | None:
    """SHA-256(0x00 || canonical JSON of the entry without `leaf_hash`), or None when the
    entry lacks a field, holds another one, or its `leaf_hash` (if given) disagrees."""
    if not isinstance(entry, Mapping) or set(entry) - {"leaf_hash"} != set(ENTRY_FIELDS):
        return None
    body = {name: entry[name] for name in ENTRY_FIELDS}
    try:
        digest = merkle.leaf_hash(canonical_json(body).encode())
    except (TypeError, ValueError):
        return None
    if "leaf_hash" in entry and entry["leaf_hash"] != digest.hex():
        return None
    return digest


def verify_head(head: Mapping[str, Any], jwks: Mapping[str, Any]) -> bool:
    """True iff `head` (GET /v1/audit/head) is signed by the key named by its `kid` in `jwks`
    (/.well-known/jwks.json), whose `kid` is the RFC 7638 thumbprint of its public key.
    Never raises on malformed input."""
    try:
        size, root, signed_at = head["size"], head["root_hash"], head["signed_at"]
        if _hash(root) is None or not isinstance(signed_at, str) or not _size(size):
            return False
        key = _public_key(head["kid"], jwks)
        if key is None:
            return False
        key.verify(_b64url(head["signature"]), head_message(size, root, signed_at))
    except (InvalidSignature, KeyError, TypeError, ValueError, binascii.Error):
        return False
    return True


def verify_inclusion(
    entry: Mapping[str, Any],
    proof: Mapping[str, Any],
    head: Mapping[str, Any],
    jwks: Mapping[str, Any] | None = None,
) -> bool:
    """True iff `proof` (GET /v1/audit/proof/inclusion) shows `entry` (an item of
    GET /v1/audit/entries) in the tree of `head`; with `jwks`, the head's signature must
    verify too. Never raises on malformed input."""
    try:
        leaf = entry_leaf_hash(entry)
        index, size = proof["leaf_index"], proof["tree_size"]
        path = [_hash(h) for h in proof["audit_path"]]
        root = _hash(head["root_hash"])
        if leaf is None or root is None or None in path:
            return False
        if index != entry["index"] or size != head["size"] or not _size(index):
            return False
        if jwks is not None and not verify_head(head, jwks):
            return False
        return merkle.verify_inclusion(leaf, index, size, path, root)  # type: ignore[arg-type]
    except (KeyError, TypeError):
        return False


def verify_consistency(
    proof: Mapping[str, Any],
    first: Mapping[str, Any],
    second: Mapping[str, Any],
    jwks: Mapping[str, Any] | None = None,
) -> bool:
    """True iff `proof` (GET /v1/audit/proof/consistency) shows the tree of head `first` is a
    prefix of the tree of head `second`: nothing was removed or rewritten between them. With
    `jwks`, both heads' signatures must verify too. Never raises on malformed input."""
    try:
        size1, size2 = proof["first"], proof["second"]
        path = [_hash(h) for h in proof["consistency_path"]]
        root1, root2 = _hash(first["root_hash"]), _hash(second["root_hash"])
        if root1 is None or root2 is None or None in path:
            return False
        if size1 != first["size"] or size2 != second["size"]:
            return False
        if jwks is not None and not (verify_head(first, jwks) and verify_head(second, jwks)):
            return False
        return merkle.verify_consistency(size1, size2, root1, root2, path)  # type: ignore[arg-type]
    except (KeyError, TypeError):
        return False


def _size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _hash(value: object) -> bytes | None:
    # Lowercase hex only: one spelling per hash, as API.md says.
    if not isinstance(value, str) or len(value) != 2 * merkle.HASH_SIZE:
        return None
    if value != value.lower():
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def _b64url(value: object) -> bytes:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _public_key(kid: object, jwks: Mapping[str, Any]) -> Ed25519PublicKey | None:
    for jwk in jwks.get("keys", []):
        if not isinstance(jwk, Mapping) or jwk.get("kid") != kid:
            continue
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            return None
        members = {"crv": "Ed25519", "kty": "OKP", "x": jwk["x"]}
        thumbprint = hashlib.sha256(
            json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
        ).digest()
        if base64.urlsafe_b64encode(thumbprint).decode().rstrip("=") != kid:
            return None
        return Ed25519PublicKey.from_public_bytes(_b64url(jwk["x"]))
    return None
