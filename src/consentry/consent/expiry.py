"""Consent expiry acted on: each lapsed grant becomes an `expired` ledger entry dated at its
expires_at, its recipients are told (`consent_expired`) and its events are purged (after the
lifting of any restriction holding them)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection

from consentry import clock
from consentry.audit.log import SYSTEM_ACTOR
from consentry.consent import ledger, marks, policy
from consentry.consent.models import Intent, Source, State
from consentry.consent.service import ConsentService
from consentry.dsr.models import NoticeKind
from consentry.storage import consent as sql
from consentry.storage.engine import Store
from consentry.storage.errors import ConstraintViolation
from consentry.subjects.models import DEFAULT_JURISDICTION

# Grants read per page; subjects per write transaction on SQLite while it is younger than
# BATCH_SECONDS (one writer: ingest waits meanwhile). On PostgreSQL one subject per
# transaction, so that none holds several subjects' rows in an order ingest could cross.
PAGE = 500
BATCH_SECONDS = 0.05


class ExpiryPurge(Protocol):
    """The withdrawal purge, for a lapsed grant (dsr/erasure.py: the one place that destroys
    data)."""

    def purge_expired(
        self,
        conn: Connection,
        subject_id: str,
        purpose: str,
        *,
        received_by: datetime,
        entry_id: int,
        actor: str,
    ) -> tuple[int, int]:
        """In the caller's transaction, delete the subject's events received by `received_by`
        and stored only for `purpose`, narrow the others; returns (deleted, narrowed)."""
        ...


class Expiry:
    """`expire_due(now)` records every grant lapsed by `now` and not superseded, resumably:
    a grant is handled in the transaction that records its expiry, and the sweep's place in
    the ledger moves on only past grants handled, so a second run (or one after a crash)
    writes each expiry once."""

    def __init__(
        self,
        store: Store,
        consent: ConsentService,
        purge: ExpiryPurge,
        *,
        page: int = PAGE,
        batch_seconds: float = BATCH_SECONDS,
    ) -> None:
        self.store = store
        self.consent = consent
        self.purge = purge
        self.page = page
        self.batch_seconds = batch_seconds

    def expire_due(
        self, now: datetime | None = None, *, actor: str = SYSTEM_ACTOR
    ) -> dict[str, int]:
        """Per subject, in ledger order: an `expired` entry (source `expiry`, dated at the
        grant's expires_at) for each consent purpose whose latest entry is a grant lapsed by
        `now` (default: the clock's now), a version each, audited (`consent:expired`); its
        pending deliveries cancelled; a `consent_expired` notice to every system that received
        its data for them; its events stored only for them deleted, others narrowed, unless a
        restriction holds them (Art. 18): that purge waits, and the first pass after the
        lifting does it. Returns counts: `expired` (entries), `subjects`, `notices` (systems
        told), `deleted`, `narrowed` (events)."""
        now = clock.now() if now is None else now
        done = {"expired": 0, "subjects": 0, "notices": 0, "deleted": 0, "narrowed": 0}
        self._release(actor, done)
        batch = self.batch_seconds if self.store.dialect == "sqlite" else 0.0
        while True:
            with self.store.read() as conn:
                rows = sql.due_expiries(conn, sql.expiry_cursor(conn), now, self.page)
            if not rows:
                return done
            waiting = list(reversed(dict.fromkeys(row.subject_id for row in rows)))
            while waiting:
                with self.store.write() as conn:
                    started = time.monotonic()
                    self._expire(conn, waiting.pop(), now, actor, done)
                    while waiting and time.monotonic() - started < batch:
                        self._expire(conn, waiting.pop(), now, actor, done)
                    if not waiting:
                        # Every grant of the page is handled (or was superseded): past it.
                        self._move_cursor(conn, rows[-1].expires_at, int(rows[-1].entry_id))
            if len(rows) < self.page:
                return done

    def _expire(
        self, conn: Connection, subject_id: str, now: datetime, actor: str, done: dict[str, int]
    ) -> None:
        purposes = self.consent.registry.all(conn)
        # Under the subject's row lock: a grant written meanwhile supersedes the lapsed one,
        # and another process expiring the same grant finds it recorded already.
        sql.lock_subject(conn, subject_id)
        state = self.consent.cache.fresh(conn, subject_id, remember=False)
        lapsed = policy.lapsed_grants(state, purposes, now)
        if not lapsed:
            return
        appended = ledger.append(
            conn,
            subject_id,
            [Intent(key, State.EXPIRED, Source.EXPIRY, at=at) for key, at in lapsed],
            purposes,
            now=now,
            actor=actor,
            notice=None,
            jurisdiction=state.jurisdiction or DEFAULT_JURISDICTION.value,
            explicit=False,
            evidence=None,
            sealer=None,
        )
        marks.touched(conn, self.consent, subject_id)
        done["expired"] += len(appended)
        done["subjects"] += 1
        if state.erased:
            # Its data is gone and its recipients were asked to purge everything.
            return
        # Its compliance status, and `consent_updated` to the systems asking for changes.
        self.consent.appended(conn, state, appended, purposes, now, actor)
        keys = [entry.purpose for entry in appended]
        downstream = self.consent.downstream
        downstream.cancel_pending(conn, subject_id, keys, actor=actor)
        told = downstream.notify(
            conn,
            subject_id,
            NoticeKind.CONSENT_EXPIRED,
            request_id=None,
            purposes=keys,
            actor=actor,
            forward=policy.expiry_forwarded(keys, purposes),
        )
        done["notices"] += len(told)
        for entry in appended:
            if policy.purge_held(state, entry.purpose):
                # Restricted: the data may only be stored; purged after the lifting.
                sql.hold_expiry_purge(conn, entry.entry_id, now)
                continue
            # No grant of the purpose came after the lapsed one (it is the latest): whatever
            # is stored for it was stored under that grant.
            deleted, narrowed = self.purge.purge_expired(
                conn,
                subject_id,
                entry.purpose,
                received_by=now,
                entry_id=entry.entry_id,
                actor=actor,
            )
            done["deleted"] += deleted
            done["narrowed"] += narrowed

    def _release(self, actor: str, done: dict[str, int]) -> None:
        """The purges held back by a restriction since lifted: done now, each in its
        subject's transaction (events received after the expiry were stored under a later
        grant, and are kept)."""
        with self.store.read() as conn:
            held = sql.held_expiry_purges(conn)
        for entry_id, subject_id, purpose, received_by in held:
            with self.store.write() as conn:
                sql.lock_subject(conn, subject_id)
                state = self.consent.cache.fresh(conn, subject_id, remember=False)
                if not state.erased and policy.purge_held(state, purpose):
                    continue
                if not sql.release_expiry_purge(conn, entry_id) or state.erased:
                    # Released by another process, or erased: its events went with it.
                    continue
                deleted, narrowed = self.purge.purge_expired(
                    conn,
                    subject_id,
                    purpose,
                    received_by=received_by,
                    entry_id=entry_id,
                    actor=actor,
                )
                done["deleted"] += deleted
                done["narrowed"] += narrowed

    def _move_cursor(self, conn: Connection, at: datetime, entry_id: int) -> None:
        try:
            with conn.begin_nested():
                sql.set_expiry_cursor(conn, at, entry_id)
        except ConstraintViolation:
            # Another process wrote the first cursor at the same moment: its serves as well
            # (a cursor behind only means grants read again and found handled).
            pass
