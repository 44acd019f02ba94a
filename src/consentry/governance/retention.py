"""The retention sweep (API.md, Retention): events whose retention ended are deleted or
narrowed (by dsr/erasure.py) in short write transactions over a cursor, resumable after a
crash, one sweep at a time across processes, every sweep audited with its counts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.audit.log import SYSTEM_ACTOR
from consentry.consent.purposes import PurposeRegistry
from consentry.dsr.erasure import Erasure
from consentry.periodic import Lease, Periodic
from consentry.storage import inferences as inferences_sql
from consentry.storage import retention as sql
from consentry.storage.engine import AnyRow, Store
from consentry.storage.errors import SerializationFailure

# Tries of one transaction that PostgreSQL aborted to break a lock cycle.
_ATTEMPTS = 5
# A step of the sweep: given the actor, does its work and returns its counts.
Step = Callable[[str], Mapping[str, int]]


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a sweep is, after each of its transactions (for progress bars, and tests)."""

    sweep_id: int
    after_seq: int
    until_seq: int
    counts: dict[str, int]
    held_ms: float
    finished: bool


@dataclass(slots=True)
class Sweep:
    """A sweep's outcome: its totals, and the longest any of its transactions held the
    writer in this process."""

    sweep_id: int
    counts: dict[str, int] = field(default_factory=dict)
    max_held_ms: float = 0.0
    batches: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"sweep_id": self.sweep_id, **self.counts}


class RetentionSweeper:
    """`sweep()` runs (or resumes) one sweep; `run_steps()` runs everything the sweep does
    (the retention sweep first, then any step added with `add_step`, such as consent expiry);
    `start()` repeats that every `interval` seconds in a thread."""

    # Each transaction is sized (in seqs of events) so that it holds the writer about this
    # long: a fifth of the 50 ms a sweep may hold it at a time (API.md, issue 16), since a
    # transaction that waits for a core on a busy machine runs several times as long.
    TARGET_MS = 10.0
    MIN_SPAN = 16
    # Longer than a writer waiting for the lock sleeps between tries (storage/engine.py).
    PAUSE = 0.002
    # Seqs of model inferences per transaction of the sweep's inference step.
    INFERENCE_SPAN = 4096

    def __init__(
        self,
        store: Store,
        erasure: Erasure,
        purposes: PurposeRegistry,
        interval: float,
        lease: Lease | None = None,
    ) -> None:
        self.store = store
        self.erasure = erasure
        self.purposes = purposes
        self.interval = interval
        self.span = 1024
        self.max_span = 65_536
        self.steps: list[tuple[str, Step]] = [
            ("retention", self._retention_step),
            ("inferences", self._inferences_step),
        ]
        self._periodic = Periodic("retention-sweep", interval, self.run_steps, lease)
        self._lock = threading.Lock()

    def add_step(self, name: str, step: Step) -> None:
        """Run `step` after the retention sweep, in every sweep from now on."""
        self.steps.append((name, step))

    def run_steps(self, actor: str = SYSTEM_ACTOR) -> dict[str, dict[str, int]]:
        """Everything a sweep does, step by step: each step's counts under its name."""
        return {name: dict(step(actor)) for name, step in self.steps}

    def start(self) -> None:
        """Sweep every `interval` seconds from now (none when it is 0); sweeps run again
        after a `stop()`."""
        self._periodic.start()

    def stop(self) -> None:
        """End the thread; a sweep under way stops between two transactions."""
        self._periodic.stop()

    def sweep(
        self,
        actor: str = SYSTEM_ACTOR,
        progress: Callable[[Progress], None] | None = None,
        *,
        fresh_for: float = 0.0,
    ) -> Sweep:
        """Run the sweep interrupted earlier, or a new one, to its end; with `fresh_for`, no
        new one when another started within that many seconds (worker processes each wake on
        their own clock: the first one sweeps). Each transaction deletes and narrows the
        events of a window of seqs and moves the cursor and the counts with them, so a sweep
        stopped anywhere resumes without losing or counting twice."""
        with self._lock:
            with self.store.write() as conn:
                sql.lock(conn)
                row = sql.running(conn)
                if row is None:
                    last = sql.latest(conn)
                    since = clock.now() - timedelta(seconds=fresh_for)
                    if fresh_for and last is not None and last.started_at > since:
                        return Sweep(int(last.sweep_id), _counts(last))
                    row = sql.start(conn, clock.now())
            outcome = Sweep(int(row.sweep_id))
            while True:
                report = self._retried(outcome, actor)
                if report is None:
                    break
                if progress is not None:
                    progress(report)
                # Stopping (the server shuts down): the next sweep resumes here. Between two
                # transactions the writer is left free a moment when a writer is waiting for
                # it in another process or thread (ingest): it takes it then.
                if report.finished:
                    break
                pause = self.PAUSE if self.store.writer_wanted() else 0.0
                if self._periodic.stopping.wait(pause):
                    break
            with self.store.read() as conn:
                final = sql.get(conn, outcome.sweep_id)
            if final is not None:
                outcome.counts = _counts(final)
            if outcome.counts.get("deleted") or outcome.counts.get("narrowed"):
                # What was deleted leaves no older page image in the WAL (SQLite).
                self.store.checkpoint()
            return outcome

    def _retention_step(self, actor: str) -> Mapping[str, int]:
        return self.sweep(actor, fresh_for=self.interval / 2).as_json()

    def _inferences_step(self, actor: str) -> Mapping[str, int]:
        """Model inferences whose purpose's retention ended (deleted by dsr/erasure.py), in
        transactions over windows of INFERENCE_SPAN seqs up to the latest one at the start;
        audited once when any was deleted or held."""
        as_of = clock.now()
        totals = {"deleted": 0, "skipped_restricted": 0}
        with self.store.read() as conn:
            top = inferences_sql.max_seq(conn)
        after = 0
        while after < top:
            upto = min(after + self.INFERENCE_SPAN, top)
            with self.store.write() as conn:

                def held(subject_ids: Collection[str]) -> dict[str, frozenset[str] | None]:
                    return _held(sql.restrictions(conn, sorted(subject_ids)))

                counts = self.erasure.expire_inferences(
                    conn,
                    self.purposes.all(conn),
                    as_of=as_of,
                    held=held,
                    after_seq=after,
                    upto_seq=upto,
                )
                totals = {name: n + counts[name] for name, n in totals.items()}
                if upto >= top and any(totals.values()):
                    audit.record(
                        conn,
                        AuditAction.INFERENCE_RETENTION_SWEPT,
                        actor=actor,
                        details={"as_of": clock.rfc3339(as_of), **totals},
                    )
            after = upto
        return totals

    def _retried(self, outcome: Sweep, actor: str) -> Progress | None:
        """A transaction of the sweep, run again when PostgreSQL broke a lock cycle with it
        (an erasure holding a subject whose events the window holds): it rolled back whole,
        its counts with it."""
        for attempt in range(_ATTEMPTS):
            try:
                return self._batch(outcome, actor)
            except SerializationFailure:
                if attempt == _ATTEMPTS - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))
        return None

    def _batch(self, outcome: Sweep, actor: str) -> Progress | None:
        """One transaction of the sweep; None when another process finished it."""
        with self.store.write() as conn:
            sql.lock(conn)
            # The writer is held from here (SQLite: BEGIN IMMEDIATE has returned;
            # PostgreSQL: the sweep's lock is taken) until the commit.
            entered = time.perf_counter()
            row = sql.running(conn)
            if row is None or int(row.sweep_id) != outcome.sweep_id:
                return None
            upto = min(int(row.after_seq) + self.span, int(row.until_seq))
            counts = self._expire(conn, row, upto)
            totals = {n: v + counts.get(n, 0) for n, v in _counts(row).items()}
            finished = upto >= int(row.until_seq)
            sql.advance(conn, outcome.sweep_id, upto, counts, clock.now() if finished else None)
            if finished:
                audit.record(
                    conn,
                    AuditAction.EVENTS_RETENTION_SWEPT,
                    actor=actor,
                    details={
                        "sweep_id": outcome.sweep_id,
                        "as_of": clock.rfc3339(row.as_of),
                        "deleted": totals["deleted"],
                        "narrowed": totals["narrowed"],
                        "skipped_restricted": totals["skipped_restricted"],
                    },
                )
        held_ms = (time.perf_counter() - entered) * 1000
        self._resize(held_ms)
        outcome.max_held_ms = max(outcome.max_held_ms, held_ms)
        outcome.batches += 1
        return Progress(outcome.sweep_id, upto, int(row.until_seq), totals, held_ms, finished)

    def _expire(self, conn: Connection, row: AnyRow, upto: int) -> dict[str, int]:
        """The window (cursor, upto]: its events none of whose purposes is still within its
        retention are deleted by one statement (most of them, in a store that fills and
        empties with time); the others with a purpose that ended (kept for another purpose,
        or a restricted subject's) are read, narrowed or skipped by dsr/erasure.py."""
        known = self.purposes.all(conn)
        if not known:
            return {"examined": 0}
        after = int(row.after_seq)
        running = Erasure.running(known, as_of=row.as_of)
        # Only events started by the latest cutoff (the shortest retention) are looked at.
        examined = sql.old_enough(conn, after, upto, running.steps[0][0])
        deleted = sql.delete_ended(conn, after, upto, running)
        ending = Erasure.ending(
            sql.partly_ended(conn, after, upto, running), known, as_of=row.as_of
        )
        counts = {"examined": examined, "deleted": deleted}
        if ending:

            def held(subject_ids: Collection[str]) -> dict[str, frozenset[str] | None]:
                return _held(sql.restrictions(conn, sorted(subject_ids)))

            rest = self.erasure.expire(conn, ending, known, held=held)
            counts = {n: counts.get(n, 0) + rest.get(n, 0) for n in sql.COUNTS}
        return counts

    def _resize(self, held_ms: float) -> None:
        """The next window: larger while transactions are short, smaller once one is long."""
        if held_ms > self.TARGET_MS:
            smaller = max(self.MIN_SPAN, int(self.span * self.TARGET_MS / held_ms))
            self.span = min(self.max_span, smaller)
        elif held_ms < self.TARGET_MS / 2:
            self.span = min(self.max_span, self.span * 2)


def _counts(row: AnyRow) -> dict[str, int]:
    return {name: int(row._mapping[name]) for name in sql.COUNTS}


def _held(rows: Mapping[str, tuple[bool, str]]) -> dict[str, frozenset[str] | None]:
    """Subject id -> None when the whole subject is restricted, else the purposes held."""
    held: dict[str, frozenset[str] | None] = {}
    for subject_id, (whole, purposes) in rows.items():
        if whole:
            held[subject_id] = None
            continue
        listed: Sequence[str] = json.loads(purposes) if purposes else []
        if listed:
            held[subject_id] = frozenset(listed)
    return held
