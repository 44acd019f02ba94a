"""Tests for consentry.audit.merkle against RFC 9162 vectors, a reference, and properties."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.audit.merkle import (
    EMPTY_ROOT,
    MAX_TREE_SIZE,
    InMemoryNodeStore,
    MerkleTree,
    MissingNodeError,
    NodeKey,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).parent / "merkle_vectors"
PROPS = settings(max_examples=40, deadline=None, database=None)

# The CT / RFC 6962 reference tree used by certificate-transparency and transparency-dev/merkle
# (proof/verify_test.go): eight leaves and MTH of each prefix size 1..8.
REF_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
REF_ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]


# --- independent recursive reference, written straight from RFC 9162 §2.1 -----------------


class Reference:
    """The RFC's recursive definitions over a full leaf list; slow but obviously correct."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = list(leaves)
        self.mth = lru_cache(maxsize=None)(self._mth)

    def _mth(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return hashlib.sha256(b"\x00" + self.leaves[lo]).digest()
        k = 1
        while k * 2 < n:
            k *= 2
        return hashlib.sha256(b"\x01" + self.mth(lo, lo + k) + self.mth(lo + k, hi)).digest()

    def path(self, m: int, n: int) -> list[bytes]:
        return [self.mth(lo, hi) for lo, hi, _ in ref_path(m, 0, n)]

    def proof(self, m: int, n: int) -> list[bytes]:
        return [self.mth(lo, hi) for lo, hi, _ in ref_subproof(m, 0, n, whole=True)]


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_path(m: int, lo: int, hi: int) -> list[tuple[int, int, str]]:
    """PATH(m, D[lo:hi]) as (range, side of the sibling) entries, bottom-up."""
    if hi - lo <= 1:
        return []
    k = _k(hi - lo)
    if m < k:
        return [*ref_path(m, lo, lo + k), (lo + k, hi, "R")]
    return [*ref_path(m - k, lo + k, hi), (lo, lo + k, "L")]


def ref_subproof(m: int, lo: int, hi: int, *, whole: bool) -> list[tuple[int, int, str]]:
    """SUBPROOF(m, D[lo:hi], b) as (range, side) entries; side "S" marks the seed subtree."""
    n = hi - lo
    if m == n:
        return [] if whole else [(lo, hi, "S")]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, lo, lo + k, whole=whole), (lo + k, hi, "R")]
    return [*ref_subproof(m - k, lo + k, hi, whole=False), (lo, lo + k, "L")]


def inclusion_shape(index: int, size: int) -> tuple[str, ...] | None:
    """What a verifier can see of (index, size): the sides of the siblings; None if invalid."""
    if not 0 <= index < size:
        return None
    return tuple(side for _, _, side in ref_path(index, 0, size))


def consistency_shape(size1: int, size2: int) -> tuple[str, ...] | None:
    """What a verifier can see of (size1, size2); None if no proof can exist."""
    if not 0 < size1 <= size2:
        return None
    if size1 == size2:
        return ("equal",)
    return tuple(side for _, _, side in ref_subproof(size1, 0, size2, whole=True))


def distinct_leaves(rnd: random.Random, size: int) -> list[bytes]:
    # The index prefix keeps leaves distinct, so moving a proof to another index cannot
    # succeed merely because two leaves happen to be equal.
    return [i.to_bytes(4, "big") + rnd.randbytes(rnd.randrange(12)) for i in range(size)]


def build(leaves: Iterable[bytes]) -> MerkleTree:
    tree = MerkleTree()
    for data in leaves:
        tree.append(leaf_hash(data))
    return tree


def flip(value: bytes, bit: int) -> bytes:
    b = bytearray(value)
    b[(bit // 8) % len(b)] ^= 1 << (bit % 8)
    return bytes(b)


# --- transparency-dev/merkle vectors ---------------------------------------------------------


def _vector_files() -> list[Path]:
    return sorted(VECTORS.rglob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def _proof(case: Mapping[str, Any]) -> list[bytes]:
    # The Go generator writes a nil slice as JSON null.
    return [_b64(p) for p in case["proof"] or []]


def _run_vector(case: Mapping[str, Any]) -> bool:
    if "leafIdx" in case:
        return verify_inclusion(
            _b64(case["leafHash"]),
            case["leafIdx"],
            case["treeSize"],
            _proof(case),
            _b64(case["root"]),
        )
    return verify_consistency(
        case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]), _proof(case)
    )


def test_vector_set_is_complete() -> None:
    files = _vector_files()
    cases = [_load(f) for f in files]
    assert len(files) == 196
    assert sum(not c["wantErr"] for c in cases) == 12
    assert (VECTORS / "LICENSE").is_file()
    assert (VECTORS / "README.md").is_file()


@pytest.mark.parametrize(
    "path", _vector_files(), ids=lambda p: str(p.relative_to(VECTORS)).removesuffix(".json")
)
def test_vector(path: Path) -> None:
    case = _load(path)
    assert _run_vector(case) is (not case["wantErr"]), case["desc"]


def _happy(kind: str) -> list[dict[str, Any]]:
    return [_load(p) for p in sorted(VECTORS.glob(f"{kind}/*/happy-path.json"))]


def test_reference_tree_roots() -> None:
    tree = build(REF_LEAVES)
    ref = Reference(REF_LEAVES)
    assert tree.root_at(0) == EMPTY_ROOT == ref.mth(0, 0)
    for n in range(1, 9):
        assert tree.root_at(n) == REF_ROOTS[n - 1] == ref.mth(0, n)
        assert build(REF_LEAVES[:n]).root() == REF_ROOTS[n - 1]


def test_generated_proofs_equal_vector_proofs() -> None:
    tree = build(REF_LEAVES)
    incl, cons = _happy("inclusion"), _happy("consistency")
    assert len(incl) == 5
    assert len(cons) == 5
    for case in incl:
        idx, size = case["leafIdx"], case["treeSize"]
        assert _b64(case["leafHash"]) == leaf_hash(REF_LEAVES[idx])
        assert _b64(case["root"]) == REF_ROOTS[size - 1]
        assert tree.inclusion_proof(idx, size) == _proof(case)
    for case in cons:
        m, n = case["size1"], case["size2"]
        assert _b64(case["root1"]) == REF_ROOTS[m - 1]
        assert _b64(case["root2"]) == REF_ROOTS[n - 1]
        assert tree.consistency_proof(m, n) == _proof(case)


# --- exhaustive comparison with the reference on small trees ---------------------------------


def test_proofs_equal_reference_exhaustively() -> None:
    leaves = distinct_leaves(random.Random(7), 40)  # noqa: S311 (test data)
    tree, ref = build(leaves), Reference(leaves)
    for n in range(1, 41):
        root = tree.root_at(n)
        assert root == ref.mth(0, n)
        for i in range(n):
            proof = tree.inclusion_proof(i, n)
            assert proof == ref.path(i, n)
            assert verify_inclusion(leaf_hash(leaves[i]), i, n, proof, root)
            assert root_from_inclusion_proof(leaf_hash(leaves[i]), i, n, proof) == root
        for m in range(1, n + 1):
            proof = tree.consistency_proof(m, n)
            assert proof == ref.proof(m, n)
            assert verify_consistency(m, n, tree.root_at(m), root, proof)


# --- hypothesis properties -------------------------------------------------------------------


@PROPS
@given(size=st.integers(1, 300), rnd=st.randoms(use_true_random=False), bits=st.data())
def test_inclusion_property(size: int, rnd: random.Random, bits: st.DataObject) -> None:
    leaves = distinct_leaves(rnd, size)
    tree = build(leaves)
    root = tree.root()
    assert root == Reference(leaves).mth(0, size)
    bit = bits.draw(st.integers(0, 255), label="bit")
    for i in range(size):
        lh = leaf_hash(leaves[i])
        proof = tree.inclusion_proof(i)
        assert verify_inclusion(lh, i, size, proof, root)
        assert not verify_inclusion(lh, i, size, proof, flip(root, bit))
        assert not verify_inclusion(flip(lh, bit), i, size, proof, root)
        for j in range(len(proof)):
            bad = [*proof[:j], flip(proof[j], bit + j), *proof[j + 1 :]]
            assert not verify_inclusion(lh, i, size, bad, root)
        assert not verify_inclusion(lh, i, size, [*proof, proof[0] if proof else root], root)
        if proof:
            assert not verify_inclusion(lh, i, size, proof[:-1], root)
        # A proof binds (index, size) only up to its shape: RFC 9162 inclusion proofs for
        # different trees can share one (e.g. leaf 0 of sizes 3 and 4), and the signed root
        # then carries the size. Anything that changes the shape must fail.
        shape = inclusion_shape(i, size)
        moved = [(i - 1, size), (i + 1, size), (i ^ 2, size), (i, size - 1), (i, size + 1)]
        for i2, n2 in [*moved, (i, size * 2), (i, size // 2), (0, 1)]:
            expected = inclusion_shape(i2, n2) == shape
            assert verify_inclusion(lh, i2, n2, proof, root) is expected


@PROPS
@given(size=st.integers(1, 300), rnd=st.randoms(use_true_random=False), bits=st.data())
def test_consistency_property(size: int, rnd: random.Random, bits: st.DataObject) -> None:
    leaves = distinct_leaves(rnd, size)
    tree = build(leaves)
    ref = Reference(leaves)
    bit = bits.draw(st.integers(0, 255), label="bit")
    pairs = {(rnd.randint(1, size), rnd.randint(1, size)) for _ in range(20)} | {(1, size)}
    for a, b in pairs:
        m, n = min(a, b), max(a, b)
        r1, r2 = tree.root_at(m), tree.root_at(n)
        assert (r1, r2) == (ref.mth(0, m), ref.mth(0, n))
        proof = tree.consistency_proof(m, n)
        assert verify_consistency(m, n, r1, r2, proof)
        if m == n:
            assert proof == []
            assert not verify_consistency(m, n, r1, flip(r2, bit), proof)
            continue
        assert not verify_consistency(m, n, flip(r1, bit), r2, proof)
        assert not verify_consistency(m, n, r1, flip(r2, bit), proof)
        assert not verify_consistency(m, n, r2, r1, proof)
        for j in range(len(proof)):
            bad = [*proof[:j], flip(proof[j], bit + j), *proof[j + 1 :]]
            assert not verify_consistency(m, n, r1, r2, bad)
        assert not verify_consistency(m, n, r1, r2, proof[:-1])
        assert not verify_consistency(m, n, r1, r2, [*proof, r1])
        assert not verify_consistency(m, n, r1, r2, [r1, *proof])
        shape = consistency_shape(m, n)
        moved = [(m - 1, n), (m + 1, n), (m ^ 2, n), (m, n - 1), (m, n + 1), (m, n * 2)]
        for m2, n2 in [*moved, (m, n // 2), (n, m), (0, n)]:
            expected = consistency_shape(m2, n2) == shape
            assert verify_consistency(m2, n2, r1, r2, proof) is expected


@PROPS
@given(size=st.integers(0, 300), rnd=st.randoms(use_true_random=False))
def test_past_roots_and_resume(size: int, rnd: random.Random) -> None:
    leaves = distinct_leaves(rnd, size + 5)
    ref = Reference(leaves)
    tree = build(leaves[:size])
    for n in range(size + 1):
        assert tree.root_at(n) == ref.mth(0, n)
    # A restarted process resumes from the frontier (or the store) and appends on.
    by_frontier = MerkleTree.from_frontier(size, tree.frontier, tree.store)
    by_store = MerkleTree.from_store(size, tree.store)
    assert by_frontier.root() == by_store.root() == tree.root()
    tree.append_many(leaf_hash(x) for x in leaves[size:])
    for t in (by_frontier, by_store):
        for x in leaves[size:]:
            t.append(leaf_hash(x))
        assert t.root() == tree.root() == ref.mth(0, size + 5)
        assert t.inclusion_proof(0) == ref.path(0, size + 5)


# --- edge cases and contracts ----------------------------------------------------------------


def test_hash_primitives() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()
    tree = MerkleTree()
    assert tree.root() == EMPTY_ROOT
    assert tree.frontier == ()


BAD_INPUTS: list[tuple[Any, ...]] = [
    (None, 0, 1, [], None),
    ("x" * 32, 0, 1, [], "x" * 32),
    (b"\x00" * 32, True, 2, [b"\x00" * 32], b"\x00" * 32),
    (b"\x00" * 32, 0, 1.0, [], b"\x00" * 32),
    (b"\x00" * 32, -1, 1, [], b"\x00" * 32),
    (b"\x00" * 32, 0, MAX_TREE_SIZE + 1, [b"\x00" * 32] * 64, b"\x00" * 32),
    (b"\x00" * 32, 0, 2, None, b"\x00" * 32),
    (b"\x00" * 32, 0, 2, b"\x00" * 32, b"\x00" * 32),
    (b"\x00" * 32, 0, 2, [None], b"\x00" * 32),
    (b"\x00" * 32, 0, 2, [b"\x00" * 31], b"\x00" * 32),
]


@pytest.mark.parametrize("args", BAD_INPUTS)
def test_verifiers_reject_malformed_input_without_raising(args: tuple[Any, ...]) -> None:
    lh, index, size, proof, root = args
    assert verify_inclusion(lh, index, size, proof, root) is False
    assert root_from_inclusion_proof(lh, index, size, proof) is None
    assert verify_consistency(index, size, lh, root, proof) is False


def test_wrong_length_proof_elements_are_rejected() -> None:
    tree = build(REF_LEAVES)
    proof = tree.consistency_proof(6, 8)
    assert verify_consistency(6, 8, REF_ROOTS[5], REF_ROOTS[7], proof)
    shifted = [proof[0][:-1], proof[0][-1:] + proof[1], *proof[2:]]
    assert not verify_consistency(6, 8, REF_ROOTS[5], REF_ROOTS[7], shifted)
    assert not verify_consistency(6, 8, REF_ROOTS[5], REF_ROOTS[7], [*proof[:2], proof[2] + b"\0"])
    assert not verify_consistency(6, 8, REF_ROOTS[5], REF_ROOTS[7] + b"\0", proof)
    assert not verify_consistency(6, 8, REF_ROOTS[5] + b"\0", REF_ROOTS[7], proof)


def test_verifiers_on_huge_valid_looking_sizes() -> None:
    h = b"\x11" * 32
    assert not verify_inclusion(h, MAX_TREE_SIZE - 1, MAX_TREE_SIZE, [h] * 64, h)
    assert not verify_consistency(MAX_TREE_SIZE - 1, MAX_TREE_SIZE, h, h, [h] * 64)


def test_tree_rejects_bad_arguments() -> None:
    tree = build(REF_LEAVES)
    for call in (
        lambda: tree.append(b"short"),
        lambda: tree.inclusion_proof(8),
        lambda: tree.inclusion_proof(0, 9),
        lambda: tree.inclusion_proof(-1),
        lambda: tree.consistency_proof(0, 8),
        lambda: tree.consistency_proof(5, 4),
        lambda: tree.root_at(9),
        lambda: MerkleTree.from_frontier(3, [EMPTY_ROOT]),
        lambda: MerkleTree.from_frontier(1, [b"short"]),
    ):
        with pytest.raises(ValueError, match=r"must|frontier"):
            call()
    with pytest.raises(ValueError, match="leaf hash"):
        tree.append_many([EMPTY_ROOT, b"short"])
    assert tree.size == 8
    assert tree.root() == REF_ROOTS[7]


def test_missing_nodes_are_reported() -> None:
    tree = build(REF_LEAVES)
    resumed = MerkleTree.from_frontier(8, tree.frontier)  # fresh, empty store
    assert resumed.root() == REF_ROOTS[7]
    with pytest.raises(MissingNodeError):
        resumed.inclusion_proof(3)
    with pytest.raises(MissingNodeError):
        MerkleTree.from_store(8, InMemoryNodeStore())


class CountingStore(InMemoryNodeStore):
    def __init__(self) -> None:
        super().__init__()
        self.gets: list[int] = []
        self.puts: list[int] = []
        self.fail = False

    def get_many(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        keys = list(keys)
        self.gets.append(len(keys))
        return super().get_many(keys)

    def put_many(self, items: Iterable[tuple[NodeKey, bytes]]) -> None:
        if self.fail:
            raise OSError("disk full")
        items = list(items)
        self.puts.append(len(items))
        super().put_many(items)


def test_store_access_is_logarithmic_and_batched() -> None:
    store = CountingStore()
    tree = MerkleTree(store)
    n = 5000
    for i in range(n):
        tree.append(leaf_hash(i.to_bytes(4, "big")))
    assert len(store.puts) == n
    assert max(store.puts) <= n.bit_length() + 1
    assert len(store) == 2 * n - n.bit_count()  # every perfect subtree, once
    logn = n.bit_length()
    for call in (
        lambda: tree.inclusion_proof(1234),
        lambda: tree.inclusion_proof(3999, 4001),
        lambda: tree.consistency_proof(1777, 4999),
        lambda: tree.root_at(3333),
    ):
        store.gets.clear()
        call()
        assert len(store.gets) == 1
        assert store.gets[0] <= 2 * logn


def test_failed_store_write_leaves_tree_unchanged() -> None:
    store = CountingStore()
    tree = MerkleTree(store)
    tree.append_many(leaf_hash(x) for x in REF_LEAVES[:3])
    before = (tree.size, tree.root(), tree.frontier)
    store.fail = True
    with pytest.raises(OSError, match="disk full"):
        tree.append(leaf_hash(b"x"))
    with pytest.raises(OSError, match="disk full"):
        tree.append_many([leaf_hash(b"x")])
    assert (tree.size, tree.root(), tree.frontier) == before
    store.fail = False
    tree.append_many(leaf_hash(x) for x in REF_LEAVES[3:])
    assert tree.root() == REF_ROOTS[7]


def test_store_rejects_conflicting_writes() -> None:
    tree = build(REF_LEAVES)
    fork = MerkleTree.from_store(5, tree.store)
    with pytest.raises(ValueError, match="different hash"):
        fork.append(leaf_hash(b"not the original sixth leaf"))
    assert fork.size == 5
    fork.append(leaf_hash(REF_LEAVES[5]))  # rewriting identical nodes is harmless
    assert fork.root() == REF_ROOTS[5]
