"""`consentry audit verify` and the dashboard's "verify now": recompute every leaf and the
tree, check every signed head; each verification is kept, so the dashboard shows the last."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log, merkle
from consentry.audit.auditor import verify_head
from consentry.audit.events import AuditAction
from consentry.audit.heads import TreeHead
from consentry.audit.models import leaf_digest_of
from consentry.errors import VerificationRunning
from consentry.keys.signing import SigningKeys
from consentry.storage import audit as sql
from consentry.storage.engine import Store

MAX_PROBLEMS = 50
# Held while this process verifies the whole log (verify_now).
_running = threading.Lock()


@dataclass(frozen=True, slots=True)
class Problem:
    where: str  # "entry 12", "head 3", "checkpoint 1", "tree state", "signing key <kid>"
    reason: str
    # Where in the log it shows: (last entry index concerned, 0 for an entry, 1 for a head).
    position: tuple[int, int] = (-1, 0)

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(slots=True)
class Report:
    """What `verify_log` found; `problems` in log order, the first one first."""

    entries: int = 0
    heads: int = 0
    checkpoints: int = 0
    root_hash: str = merkle.EMPTY_ROOT.hex()
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, where: str, reason: str, position: tuple[int, int] = (-1, 0)) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(where, reason, position))

    def summary(self) -> str:
        """One line: what was checked and the tree's root."""
        return (
            f"{self.entries:,} entries, {self.heads:,} signed heads and "
            f"{self.checkpoints} checkpoints checked; root {self.root_hash}"
        )


@dataclass(frozen=True, slots=True)
class _Head:
    where: str
    head: TreeHead | Mapping[str, Any]
    size: int
    root_hash: str


@dataclass(frozen=True, slots=True)
class Verification:
    """A verification as kept: when, by whom, what it checked, and its first problem."""

    verified_at: datetime
    actor: str
    entries: int
    heads: int
    root_hash: str
    ok: bool
    problem: str | None


def verify_now(
    store: Store,
    keys: SigningKeys,
    *,
    actor: str,
    checkpoints: Sequence[Mapping[str, Any]] = (),
) -> tuple[Report, str | None]:
    """`verify_log` as `actor`, kept as the last verification. The read is audited first (reads
    of the log are audited); a log too damaged to take that entry is verified all the same,
    and the second value is then the code of why the read went unaudited. One at a time in a
    process (a whole-log read is long): VerificationRunning while another runs."""
    if not _running.acquire(blocking=False):
        raise VerificationRunning("a verification of the whole log is running: see its result")
    try:
        return _verify_now(store, keys, actor, checkpoints)
    finally:
        _running.release()


def _verify_now(
    store: Store, keys: SigningKeys, actor: str, checkpoints: Sequence[Mapping[str, Any]]
) -> tuple[Report, str | None]:
    unaudited = log.record_read(store, AuditAction.AUDIT_VERIFIED, actor=actor)
    report = verify_log(store, keys, checkpoints)
    with store.write() as conn:
        sql.insert_verification(
            conn,
            verified_at=clock.now(),
            actor=actor,
            entries=report.entries,
            heads=report.heads,
            root_hash=report.root_hash,
            ok=report.ok,
            problem=str(report.problems[0])[:500] if report.problems else None,
        )
    return report, unaudited


def last_verification(conn: Connection) -> Verification | None:
    """The verification made last, or None before the first."""
    row = sql.latest_verification(conn)
    if row is None:
        return None
    return Verification(
        row.verified_at,
        row.actor,
        row.entries,
        row.heads,
        row.root_hash,
        bool(row.ok),
        row.problem,
    )


def verify_log(
    store: Store, keys: SigningKeys, checkpoints: Sequence[Mapping[str, Any]] = ()
) -> Report:
    """Check the whole log: each entry's leaf hash from its content, consecutive indexes, the
    stored frontier, and each head (and each `checkpoint`, a head published elsewhere):
    its signature, that it never shrinks nor goes back in time, and its root against the
    tree recomputed from the entries, which makes every head consistent with the next.
    Entries appended while it runs are left for the next run."""
    report = Report()
    with store.read() as conn:
        jwks, substituted = keys.verifying_keys(conn)
        heads = [TreeHead.from_row(row) for row in sql.scan_heads(conn)]
        size, frontier = sql.tree_state(conn)
    for kid in substituted:
        report.add(f"signing key {kid}", "its public key is not the one its private key makes")
    report.heads, report.checkpoints = len(heads), len(checkpoints)
    due = _check_heads(heads, checkpoints, jwks, report)
    with store.read() as conn:
        computed = _replay(sql.scan_entries(conn), size, due, report)
    if computed is not None:
        if b"".join(computed.frontier) != frontier:
            report.add("tree state", "the stored frontier does not match the entries", (size, 2))
        report.root_hash = computed.root().hex()
    for item in due if computed is not None else ():
        # Heads beyond the entries: the log was cut back after they were signed.
        if item.size > report.entries:
            report.add(
                item.where,
                f"signs {item.size} entries; the log holds {report.entries}",
                (item.size - 1, 1),
            )
    # The first problem named is the earliest place in the log where it shows.
    report.problems.sort(key=lambda problem: problem.position)
    return report


def _check_heads(
    heads: Sequence[TreeHead],
    checkpoints: Sequence[Mapping[str, Any]],
    jwks: Mapping[str, Any],
    report: Report,
) -> list[_Head]:
    """Signature and order checks; returns the heads to hold against the tree, by size."""
    due: list[_Head] = []
    previous: TreeHead | None = None
    for n, head in enumerate(heads, start=1):
        where, at = f"head {n}", (head.size - 1, 1)
        if not verify_head(head.as_json(), jwks):
            report.add(where, f"signature does not verify (size {head.size}, kid {head.kid})", at)
        if previous is not None and head.size < previous.size:
            report.add(where, f"size {head.size} is below the previous head's {previous.size}", at)
        if previous is not None and head.signed_at < previous.signed_at:
            report.add(where, "signed before the previous head", at)
        due.append(_Head(where, head, head.size, head.root_hash))
        previous = head
    for n, checkpoint in enumerate(checkpoints, start=1):
        where = f"checkpoint {n}"
        if not verify_head(checkpoint, jwks):
            report.add(where, "not a head signed by this log's keys")
            continue
        # verify_head has checked the size and the root's form.
        due.append(_Head(where, checkpoint, int(checkpoint["size"]), str(checkpoint["root_hash"])))
    due.sort(key=lambda item: item.size)
    return due


def _replay(rows: Any, size: int, due: Sequence[_Head], report: Report) -> merkle.MerkleTree | None:
    """Hash the entries in index order into a fresh tree, holding each head against it when
    the tree reaches the head's size; None once an entry is missing (no root can be known)."""
    frontier: list[bytes] = []
    sha256 = hashlib.sha256
    pending = list(due)
    pending.reverse()
    while pending and pending[-1].size == 0:
        _hold(pending.pop(), frontier, report)
    expected = 0
    for idx, at, actor, action, subject_id, details, stored in rows:
        if idx >= size:
            break
        if idx != expected:
            report.add(f"entry {expected}", "missing", (expected, 0))
            report.entries = expected
            return None
        h = leaf_digest_of(idx, at, actor, action, subject_id, details)
        if h.hex() != stored:
            report.add(f"entry {idx}", "its content does not match its leaf hash", (idx, 0))
        # The frontier append of merkle.MerkleTree, inlined: this loop runs once per entry.
        n = idx
        while n & 1:
            h = sha256(b"\x01" + frontier.pop() + h).digest()
            n >>= 1
        frontier.append(h)
        expected = idx + 1
        while pending and pending[-1].size == expected:
            _hold(pending.pop(), frontier, report)
    report.entries = expected
    if expected < size:
        report.add(f"entry {expected}", f"missing (the log's state counts {size})", (expected, 0))
        return None
    return merkle.MerkleTree.from_frontier(expected, frontier)


def _hold(item: _Head, frontier: list[bytes], report: Report) -> None:
    root = merkle.EMPTY_ROOT
    if frontier:
        root = frontier[-1]
        for h in reversed(frontier[:-1]):
            root = merkle.node_hash(h, root)
    if root.hex() != item.root_hash:
        report.add(
            item.where,
            f"its root does not match the entries' tree at size {item.size}",
            (item.size - 1, 1),
        )
