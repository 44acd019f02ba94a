"""The consent cache: every subject's folded state in memory, so a decision is a dict look-up.

Every ledger write puts its new state here before the call returns; at start the cache is
rebuilt from the ledger. Across processes it stays exact by the version rule (DESIGN.md):
`fresh()` compares the cached version with the subject row's, one primary-key read, and
`for_commit()` is the consistency rule itself, for a write that acts on subjects' consent.
A state read inside a write transaction is never remembered (it may roll back): the subjects
it concerned are loaded again once the transaction has committed (`after_commit`).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable
from itertools import groupby

from sqlalchemy import Connection

from consentry.consent import ledger
from consentry.consent.feed import ConsentFeed
from consentry.consent.models import SubjectConsent
from consentry.storage import consent as sql
from consentry.storage.engine import Store
from consentry.storage.hooks import after_commit


class ConsentCache:
    def __init__(self, store: Store, feed: ConsentFeed | None = None) -> None:
        self._states: dict[str, SubjectConsent] = {}
        self._lock = threading.Lock()
        # Read again once a write has committed (`after_commit`).
        self._store = store
        # Where the changes this process commits are published (stream mode), if anywhere.
        self._feed = feed

    def __len__(self) -> int:
        return len(self._states)

    def get(self, subject_id: str) -> SubjectConsent | None:
        """The cached state, without touching storage (may lag another process by one write)."""
        return self._states.get(subject_id)

    def put(self, state: SubjectConsent) -> None:
        """Keep `state` unless a newer version is already cached (writers may finish out of
        order); at an equal version `state` replaces the cached one. Only committed states
        come here."""
        with self._lock:
            current = self._states.get(state.subject_id)
            if current is None or current.version <= state.version:
                self._states[state.subject_id] = state

    def committed(self, state: SubjectConsent) -> None:
        """A state this process has just committed: cached (as `put`) and published."""
        self.put(state)
        if self._feed is not None:
            self._feed.publish([state])

    def refresh(self, subject_ids: Collection[str]) -> None:
        """Read these subjects again where the cache is behind their rows (a change published
        by another process); a subject no longer stored is dropped."""
        self._reload((), dict.fromkeys(subject_ids))

    def fresh(
        self,
        conn: Connection,
        subject_id: str,
        version: int | None = -1,
        *,
        remember: bool = True,
    ) -> SubjectConsent:
        """The state as of the subject row's current version, reloaded only when behind.
        `version`: the row's version when the caller has just read it (None: no such row).
        `remember=False` inside a transaction that may have changed the subject and may still
        roll back: what it reads must not outlive it."""
        if version == -1:
            version = sql.subject_version(conn, subject_id)
        cached = self._states.get(subject_id)
        if version is None:
            return cached or SubjectConsent(subject_id=subject_id)
        if cached is not None and cached.version == version:
            return cached
        state = ledger.load(conn, subject_id)
        if remember:
            self.put(state)
        return state

    def for_commit(self, conn: Connection, subject_ids: Iterable[str]) -> dict[str, SubjectConsent]:
        """The consistency rule (DESIGN.md): inside the write transaction that will act on
        them, each subject's state at exactly the version read now, under a share lock on
        PostgreSQL so that no withdrawal or mark can commit before this transaction does.
        Unknown subjects are absent from the answer."""
        ids = sorted(set(subject_ids))
        versions = sql.subject_versions(conn, ids, share=conn.dialect.name == "postgresql")
        states: dict[str, SubjectConsent] = {}
        behind: dict[str, SubjectConsent] = {}
        for subject_id in ids:
            version = versions.get(subject_id)
            if version is None:
                continue
            cached = self._states.get(subject_id)
            # Not remembered now: this transaction may have marked the subject and may still
            # roll back (the whole of it, or the savepoint of the mark).
            state = self.fresh(conn, subject_id, version, remember=False)
            if cached is None or cached.version < version:
                behind[subject_id] = state
            states[subject_id] = state
        if behind:
            work = self._work(conn)
            if conn.in_nested_transaction():
                # A savepoint may still roll back what this state was read from: read again.
                work.behind.update(dict.fromkeys(behind))
            else:
                work.behind.update(behind)
        return states

    def after_commit(
        self, conn: Connection, subject_ids: Collection[str], *, changed: bool = False
    ) -> None:
        """Load these subjects' states again once the write transaction `conn` has committed
        (the cache warms without ever holding what a rolled-back write produced). `changed`:
        this transaction changed them, so they are reloaded and replace what is cached even
        at an equal version; otherwise only those still behind the row are. All of one
        transaction's subjects are read in one read transaction."""
        work = self._work(conn)
        if changed:
            work.changed.update(subject_ids)
        else:
            work.behind.update(dict.fromkeys(subject_ids))

    def _work(self, conn: Connection) -> _Reload:
        work = after_commit(conn, ("consent.cache", self), _Reload(self))
        assert isinstance(work, _Reload)  # noqa: S101 - one kind of work under this key
        return work

    def _reload(self, changed: Collection[str], behind: dict[str, SubjectConsent | None]) -> None:
        ids = sorted(set(changed) | set(behind))
        published: list[SubjectConsent] = []
        with self._store.read() as read:
            versions = sql.subject_versions(read, ids, share=False)
            for subject_id in ids:
                version = versions.get(subject_id)
                if version is None:
                    with self._lock:
                        self._states.pop(subject_id, None)
                    continue
                read_before = behind.get(subject_id)
                if subject_id in changed:
                    state = ledger.load(read, subject_id)
                    self.put(state)
                    published.append(state)
                elif read_before is not None and read_before.version == version:
                    # Read in the transaction, now committed at that very version: no read
                    # again (new subjects of an ingest batch are all behind).
                    self.put(read_before)
                else:
                    self.fresh(read, subject_id, version)
        if published and self._feed is not None:
            self._feed.publish(published)

    def rebuild(self, conn: Connection) -> int:
        """Fold the whole ledger into a new cache; returns the number of subjects held."""
        attributes = {row.subject_id: row for row in sql.all_subject_attributes(conn)}
        states: dict[str, SubjectConsent] = {}
        for subject_id, rows in groupby(sql.all_entries(conn), key=lambda r: r.subject_id):
            entries = [ledger.entry_of(row) for row in rows]
            states[subject_id] = ledger.fold(subject_id, entries, attributes.get(subject_id))
        for subject_id, row in attributes.items():
            if subject_id not in states:
                states[subject_id] = ledger.fold(subject_id, [], row)
        with self._lock:
            self._states = states
        return len(states)


class _Reload:
    """The after-commit work of one write transaction for the cache: the subjects to read
    again, gathered however many marks and batches the transaction wrote."""

    def __init__(self, cache: ConsentCache) -> None:
        self.cache = cache
        self.changed: set[str] = set()
        # Subjects behind the row, with the state read in the transaction (None: none).
        self.behind: dict[str, SubjectConsent | None] = {}

    def __call__(self) -> None:
        self.cache._reload(self.changed, self.behind)
