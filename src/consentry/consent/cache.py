"""The consent cache: every subject's folded state in memory, so a decision is a dict look-up.

Every ledger write puts its new state here before the call returns; at start the cache is
rebuilt from the ledger. Across processes it stays exact by the version rule (DESIGN.md):
`fresh()` compares the cached version with the subject row's, one primary-key read, and
`for_commit()` is the consistency rule itself, for a write that acts on subjects' consent.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from itertools import groupby

from sqlalchemy import Connection

from consentry.consent import ledger
from consentry.consent.models import SubjectConsent
from consentry.storage import consent as sql


class ConsentCache:
    def __init__(self) -> None:
        self._states: dict[str, SubjectConsent] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._states)

    def get(self, subject_id: str) -> SubjectConsent | None:
        """The cached state, without touching storage (may lag another process by one write)."""
        return self._states.get(subject_id)

    def put(self, state: SubjectConsent) -> None:
        """Keep `state` unless a newer version is already cached (writers may finish out of
        order)."""
        with self._lock:
            current = self._states.get(state.subject_id)
            if current is None or current.version <= state.version:
                self._states[state.subject_id] = state

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
        return {s: self.fresh(conn, s, versions[s]) for s in ids if s in versions}

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
