"""RFC 9162 §2.1 Merkle tree: hashing, an O(log n) append-only tree, proofs and their verifiers."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, Protocol

HASH_SIZE: Final = 32  # SHA-256

EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
"""MTH({}) of RFC 9162 §2.1.1: the hash of the empty string, with no prefix."""

MAX_TREE_SIZE: Final = 2**64 - 1  # RFC 9162 tree sizes are uint64; verifiers reject larger

_sha256 = hashlib.sha256

NodeKey = tuple[int, int]
"""(level, index) of a perfect subtree, covering leaves [index << level, (index + 1) << level)."""


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 leaf hash SHA-256(0x00 || data)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 interior node hash SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes | bytearray) and len(value) == HASH_SIZE


def _is_size(value: object) -> bool:
    # bool is an int subclass; True as a tree size is a caller bug, not a size.
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TREE_SIZE


def _hash_list(proof: object) -> list[bytes] | None:
    # A bytes or str value is a Sequence too, but never a list of hashes.
    if not isinstance(proof, Sequence) or isinstance(proof, bytes | bytearray | str):
        return None
    items = list(proof)
    if not all(_is_hash(item) for item in items):
        return None
    return [bytes(item) for item in items]


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes | None:
    """Return the root implied by an inclusion proof (RFC 9162 §2.1.3.2), or None if malformed.

    None means the inputs cannot form a proof: index >= size, a hash that is not 32 bytes,
    or a proof whose length does not fit (index, size). Never raises on bad input.
    """
    path = _hash_list(proof)
    valid = _is_hash(leaf_hash) and _is_size(size) and _is_size(index) and index < size
    if path is None or not valid:
        return None
    fn, sn = index, size - 1
    r = bytes(leaf_hash)
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # On the right border the path skips levels where the node has no right sibling.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Return True iff `proof` shows leaf `leaf_hash` at `index` in the tree of `size` with `root`.

    Follows RFC 9162 §2.1.3.2. Returns False, never raises, for any mismatch or malformed
    input (wrong hash lengths, index >= size, negative or non-int sizes, wrong proof length).
    """
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof)
    return computed is not None and _is_hash(root) and computed == root


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> bool:
    """Return True iff `proof` shows the tree (size1, root1) is a prefix of (size2, root2).

    Follows RFC 9162 §2.1.4.2 for 0 < size1 < size2. Edge cases, as in the transparency-dev
    test vectors: size1 == 0 is always rejected (a proof from the empty tree proves nothing,
    callers should special-case it); size1 == size2 accepts only an empty proof with
    byte-identical roots, and since no hash is computed there, root length is not checked.
    Returns False, never raises, for any mismatch or malformed input.
    """
    path = _hash_list(proof)
    if path is None or not (_is_size(size1) and _is_size(size2) and 0 < size1 <= size2):
        return False
    if size1 == size2:
        return not path and isinstance(root1, bytes | bytearray) and root1 == root2
    if not (_is_hash(root1) and _is_hash(root2)) or not path:
        return False
    if size1 & (size1 - 1) == 0:
        # The old tree is a perfect subtree of the new one, so the proof omits its root.
        path.insert(0, bytes(root1))
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2


class MissingNodeError(LookupError):
    """A perfect-subtree hash the tree needs is absent from its NodeStore."""


class NodeStore(Protocol):
    """Storage of perfect-subtree hashes keyed by (level, index); level 0 holds leaf hashes.

    Nodes are immutable once written: a tree only ever writes the same hash again for a key.
    Implementations may reject a conflicting write (a sign of a forked or corrupted log).
    """

    def get_many(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
        """Return the stored hashes among `keys`; absent keys are simply left out."""

    def put_many(self, items: Sequence[tuple[NodeKey, bytes]]) -> None:
        """Store all `items` atomically, or raise and store none of them."""


class InMemoryNodeStore:
    """A dict-backed NodeStore that rejects conflicting writes."""

    def __init__(self) -> None:
        """Create an empty store."""
        self._nodes: dict[NodeKey, bytes] = {}

    def __len__(self) -> int:
        """Return how many nodes are stored."""
        return len(self._nodes)

    def get_many(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        """Return the stored hashes among `keys`; absent keys are left out."""
        nodes = self._nodes
        return {key: nodes[key] for key in keys if key in nodes}

    def put_many(self, items: Iterable[tuple[NodeKey, bytes]]) -> None:
        """Store `items`; raise ValueError, storing nothing, if one would change a stored hash."""
        batch = list(items)
        nodes = self._nodes
        for key, value in batch:
            old = nodes.get(key)
            if old is not None and old != value:
                raise ValueError(f"node {key} is already stored with a different hash")
        nodes.update(batch)


def _split(n: int) -> int:
    """Largest power of two strictly below n (n >= 2): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


def _perfect_parts(lo: int, hi: int) -> list[NodeKey]:
    # Every range a proof or past root needs starts at a multiple of a power of two no smaller
    # than its width, so it splits, left to right, into aligned perfect subtrees following the
    # binary digits of its width; MTH of the range is these folded from the right.
    parts: list[NodeKey] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        parts.append((level, lo >> level))
        lo += 1 << level
    return parts


def _fold(hashes: Sequence[bytes]) -> bytes:
    result = hashes[-1]
    for h in reversed(hashes[:-1]):
        result = node_hash(h, result)
    return result


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    # PATH(m, D[n]) of RFC 9162 §2.1.3.1, unrolled top-down; the proof lists it bottom-up.
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


def _consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    # SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1, unrolled top-down with `whole` as b.
    ranges: list[tuple[int, int]] = []
    lo, hi, whole = 0, size2, True
    while hi != size1:
        k = _split(hi - lo)
        if size1 - lo <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            whole = False
    if not whole:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def _checked_hash(value: bytes) -> bytes:
    if not _is_hash(value):
        raise ValueError(f"a leaf hash must be {HASH_SIZE} bytes")
    return bytes(value)


class MerkleTree:
    """An append-only RFC 9162 Merkle tree over leaf hashes, backed by a NodeStore.

    Appends keep only the right-hand frontier (roots of the perfect subtrees, largest first)
    in memory and write each completed perfect subtree to the store. Proofs and past roots
    read O(log n) stored nodes in one get_many call. Not thread-safe: serialise appends.
    """

    __slots__ = ("_frontier", "_root", "_size", "_store")

    def __init__(self, store: NodeStore | None = None) -> None:
        """Create an empty tree writing to `store` (a fresh InMemoryNodeStore by default)."""
        self._store: NodeStore = store if store is not None else InMemoryNodeStore()
        self._size = 0
        self._frontier: list[bytes] = []
        self._root: bytes | None = EMPTY_ROOT

    @classmethod
    def from_frontier(
        cls, size: int, frontier: Sequence[bytes], store: NodeStore | None = None
    ) -> MerkleTree:
        """Resume a tree of `size` leaves from its `frontier` without reading the store.

        `frontier` must hold one 32-byte hash per set bit of `size`, largest subtree first, as
        returned by `MerkleTree.frontier`. Proofs still need `store` to hold the older nodes.
        Raises ValueError if the frontier does not fit the size.
        """
        if not _is_size(size) or len(frontier) != size.bit_count():
            raise ValueError(f"size {size!r} needs one frontier hash per set bit, in [0, 2**64)")
        tree = cls(store)
        tree._frontier = [_checked_hash(h) for h in frontier]
        tree._size = size
        tree._root = None if size else EMPTY_ROOT
        return tree

    @classmethod
    def from_store(cls, size: int, store: NodeStore) -> MerkleTree:
        """Resume a tree of `size` leaves by reading its frontier (popcount(size) nodes).

        Raises MissingNodeError if the store lacks one of them.
        """
        # A bad size reads nothing here and is then rejected by from_frontier.
        keys = _perfect_parts(0, size) if _is_size(size) else []
        found = store.get_many(keys)
        return cls.from_frontier(size, [_lookup(found, key) for key in keys], store)

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def frontier(self) -> tuple[bytes, ...]:
        """Roots of the perfect subtrees of the current tree, largest first."""
        return tuple(self._frontier)

    @property
    def store(self) -> NodeStore:
        """The NodeStore the tree writes to and reads proofs from."""
        return self._store

    def root(self) -> bytes:
        """Return MTH of the whole tree, from the frontier alone (no store read)."""
        if self._root is None:
            self._root = _fold(self._frontier)
        return self._root

    def append(self, leaf_hash: bytes) -> int:
        """Append one 32-byte leaf hash and return its index; O(log n), one put_many call.

        Raises ValueError for a hash of the wrong length; if the store raises, the tree is
        left unchanged at its old size.
        """
        return self.append_many((leaf_hash,)) - 1

    def append_many(self, leaf_hashes: Iterable[bytes]) -> int:
        """Append leaf hashes in order with a single put_many call; return the new size.

        All or nothing: on a bad hash (ValueError) or a store error nothing is appended.
        """
        frontier = list(self._frontier)
        size = self._size
        nodes: list[tuple[NodeKey, bytes]] = []
        for value in leaf_hashes:
            h = _checked_hash(value)
            nodes.append(((0, size), h))
            level, pos = 0, size
            # Each trailing one bit of the index is a perfect subtree this leaf completes.
            while pos & 1:
                h = node_hash(frontier.pop(), h)
                level += 1
                pos >>= 1
                nodes.append(((level, pos), h))
            frontier.append(h)
            size += 1
        if size == self._size:
            return size
        self._store.put_many(nodes)
        # Only after the store took the nodes does the state move on, so a failed write
        # cannot leave the frontier ahead of what proofs can be built from.
        self._frontier = frontier
        self._size = size
        self._root = None
        return size

    def root_at(self, size: int) -> bytes:
        """Return MTH of the first `size` leaves (0 <= size <= self.size); ValueError otherwise."""
        self._check_size(size, "size")
        if size == self._size:
            return self.root()
        return self._range_hashes([(0, size)])[0] if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Return PROOF of RFC 9162 §2.1.3.1 for leaf `index` in the tree of `size` leaves.

        `size` defaults to the current size; requires 0 <= index < size <= self.size, else
        ValueError. The result verifies with `verify_inclusion` against `root_at(size)`.
        """
        size = self._size if size is None else size
        self._check_size(size, "size")
        if not isinstance(index, int) or not 0 <= index < size:
            raise ValueError(f"index must be in [0, {size})")
        return self._range_hashes(_inclusion_ranges(index, size))

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """Return PROOF(size1, D[size2]) of RFC 9162 §2.1.4.1 between two past sizes.

        `size2` defaults to the current size; requires 0 < size1 <= size2 <= self.size, else
        ValueError (a proof from the empty tree is meaningless). Equal sizes give [].
        """
        size2 = self._size if size2 is None else size2
        self._check_size(size2, "size2")
        if not isinstance(size1, int) or not 0 < size1 <= size2:
            raise ValueError(f"size1 must be in [1, {size2}]")
        if size1 == size2:
            return []
        return self._range_hashes(_consistency_ranges(size1, size2))

    def _check_size(self, size: int, name: str) -> None:
        if not isinstance(size, int) or not 0 <= size <= self._size:
            raise ValueError(f"{name} must be in [0, {self._size}]")

    def _range_hashes(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        split = [_perfect_parts(lo, hi) for lo, hi in ranges]
        # One batched read for the whole proof: a SQL-backed store answers it in one query.
        keys = list(dict.fromkeys(key for parts in split for key in parts))
        found = self._store.get_many(keys)
        return [_fold([_lookup(found, key) for key in parts]) for parts in split]


def _lookup(found: Mapping[NodeKey, bytes], key: NodeKey) -> bytes:
    value = found.get(key)
    if value is None:
        raise MissingNodeError(f"node (level={key[0]}, index={key[1]}) is not in the store")
    return value
