"""The delivery worker: takes due outbox rows per system, checks them again against consent
and the transfer rules, sends them in signed batches, and retries with backoff until they are
delivered or dead-lettered. State lives in the database, so a restart loses nothing."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent import policy
from consentry.consent.models import Purpose, SubjectConsent
from consentry.consent.service import ConsentService
from consentry.delivery.notices import RightsNotices, backoff
from consentry.delivery.outbox import (
    PAYLOAD,
    Outbox,
    payload_aad,
    record_refusals,
    utc_text,
    visible_now,
)
from consentry.delivery.sinks import Sink, WebhookSink, signature
from consentry.errors import ConsentryError
from consentry.governance import transfers
from consentry.governance.datamap import DataMap
from consentry.governance.models import Refusal, System, SystemKind
from consentry.keys.subject_keys import SubjectKeys
from consentry.settings import Settings
from consentry.storage import delivery as sql
from consentry.storage.configuration import config_version
from consentry.storage.engine import AnyRow, Store
from consentry.storage.ingest import subject_versions

log = logging.getLogger(__name__)

BATCH = 1000
_POLL_SECONDS = 0.05
_NOTICE_EVERY = timedelta(seconds=1)
_LANES = 4
# Reasons a row is dropped at send time, beside the Refusal rules.
_NO_CONSENT = "no_consent"


class DeliveryWorker:
    """`start()` runs it in background threads (one lane per system); `run_once()` does one
    synchronous pass, for tests and commands."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        datamap: DataMap,
        outbox: Outbox,
        consent: ConsentService,
        subject_keys: SubjectKeys,
        notices: RightsNotices,
        sink: Sink | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.datamap = datamap
        self.outbox = outbox
        self.consent = consent
        self.subject_keys = subject_keys
        self.notices = notices
        self.sink: Sink = sink or WebhookSink(settings.delivery_timeout_seconds)
        self._stop = threading.Event()
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._lanes: ThreadPoolExecutor | None = None
        self._notices_at = clock.now() - _NOTICE_EVERY
        # A claim older than this belongs to a worker that died while sending.
        self._stale = timedelta(seconds=settings.delivery_timeout_seconds * 2 + 30)

    def start(self) -> None:
        """Release claims left by a stopped process, then deliver in the background."""
        self.release_stale()
        self._lanes = ThreadPoolExecutor(_LANES, thread_name_prefix="consentry-delivery")
        self._thread = threading.Thread(target=self._loop, name="consentry-delivery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.outbox.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._lanes is not None:
            self._lanes.shutdown(wait=True)
        self.sink.close()

    def run_once(self) -> int:
        """Deliver every due row once (each system until it has nothing due) and send due
        rights notices; returns how many events were delivered."""
        delivered = 0
        for system_id in self._due():
            while (n := self.deliver(system_id)) > 0:
                delivered += n
                if n < BATCH:
                    break
        self.notices.send_due(self.sink)
        return delivered

    def release_stale(self, before: datetime | None = None) -> int:
        with self.store.write() as conn:
            return sql.release_stale(conn, before or clock.now() - self._stale)

    def deliver(self, system_id: str) -> int:
        """Claim, check and send one batch of the system's due rows; the number delivered
        (0 also when the receiver failed: the rows are rescheduled)."""
        claimed = self._claim(system_id)
        if claimed is None:
            return 0
        system, rows, events, secret = claimed
        if not events:
            return 0
        body = msgspec.json.encode(
            {"type": "events", "system_id": system.system_id, "events": events}
        )
        outcome = self.sink.send(system.endpoint, body, signature(secret, body))
        now = clock.now()
        with self.store.write() as conn:
            if outcome.ok:
                sql.delete_rows(conn, [r.seq for r in rows])
                sql.add_recipients(
                    conn,
                    {
                        (r.subject_id, system.system_id, p)
                        for r, e in zip(rows, events, strict=True)
                        for p in e["purposes"]
                    },
                    utc_text(now),
                )
                return len(rows)
            self._reschedule(conn, system, rows, outcome.error or "failed", now)
        return 0

    def _claim(
        self, system_id: str
    ) -> tuple[System, list[AnyRow], list[dict[str, Any]], bytes] | None:
        now = clock.now()
        with self.store.write() as conn:
            version = config_version(conn)
            system = self.datamap.all(conn, version).get(system_id)
            if system is None or system.kind is not SystemKind.WEBHOOK:
                return None
            rows = sql.claim(conn, system_id, now, BATCH)
            if not rows:
                return None
            purposes = self.consent.registry.all(conn, version)
            states = self._states(conn, rows)
            kept, events, dropped, refused = self._check(conn, system, rows, states, purposes, now)
            sql.delete_rows(conn, dropped)
            if refused:
                record_refusals(conn, refused)
            secret = self.datamap.signing_secret(conn, system_id)
        return system, kept, events, secret

    def _states(self, conn: Connection, rows: Sequence[AnyRow]) -> dict[str, SubjectConsent]:
        """Each subject's state at its version read now, as the pipeline reads it."""
        ids = sorted({r.subject_id for r in rows})
        versions = subject_versions(conn, ids, share=self.store.dialect == "postgresql")
        return {s: self.consent.cache.fresh(conn, s, v) for s, v in versions.items()}

    def _check(
        self,
        conn: Connection,
        system: System,
        rows: Sequence[AnyRow],
        states: dict[str, SubjectConsent],
        purposes: dict[str, Purpose],
        now: datetime,
    ) -> tuple[list[AnyRow], list[dict[str, Any]], list[int], dict[tuple[str, str], int]]:
        """Rows still deliverable now: consent, restriction, erasure and the transfer rules
        are decided again (they may have changed since the event was accepted)."""
        kept: list[AnyRow] = []
        events: list[dict[str, Any]] = []
        dropped: list[int] = []
        refused: dict[tuple[str, str], int] = defaultdict(int)
        decided: dict[str, Refusal | None] = {}
        allowing: dict[tuple[str, str], list[str]] = {}
        every = list(purposes.values())
        exporter = self.outbox.exporter
        for row in rows:
            state = states.get(row.subject_id)
            reason: str | None = _NO_CONSENT if state is None else None
            if state is not None:
                if row.subject_id not in decided:
                    decided[row.subject_id] = transfers.refusal(system, state, every, exporter, now)
                found = decided[row.subject_id]
                reason = found.value if found is not None else None
            allowed: list[str] = []
            if reason is None and state is not None:
                key = (row.subject_id, row.purposes)
                if key not in allowing:
                    # Rows of one subject and purposes in a batch get the same answer.
                    allowing[key] = [
                        p
                        for p in msgspec.json.decode(row.purposes)
                        if p in purposes
                        and p in system.purposes
                        and policy.decide(purposes[p], state, now).allowed
                    ]
                allowed = allowing[key]
                if not allowed:
                    reason = _NO_CONSENT
            payload = None
            if reason is None:
                try:
                    sealer = self.subject_keys.sealer(conn, row.subject_id)
                    opened = sealer.open(row.payload, payload_aad(system.system_id, row.event_id))
                    payload = PAYLOAD.decode(opened)
                except ConsentryError:
                    # The subject's key is gone (erased): nothing of theirs is sent.
                    reason = _NO_CONSENT
            if reason is not None or payload is None:
                dropped.append(row.seq)
                refused[(system.system_id, reason or _NO_CONSENT)] += 1
                continue
            kept.append(row)
            events.append(
                {
                    "event_id": payload.event_id,
                    "event_type": payload.event_type,
                    "occurred_at": payload.occurred_at,
                    "subject_pseudonym": payload.subject_pseudonym,
                    "purposes": allowed,
                    "properties": visible_now(payload, allowed),
                }
            )
        return kept, events, dropped, refused

    def _reschedule(
        self, conn: Connection, system: System, rows: Sequence[AnyRow], error: str, now: datetime
    ) -> None:
        limit = self.settings.delivery_max_attempts
        changes = []
        dead = 0
        for row in rows:
            attempts = int(row.attempts) + 1
            status = sql.DEAD if attempts >= limit else sql.PENDING
            dead += status == sql.DEAD
            delay = backoff(self.settings.retry_base_seconds, attempts)
            changes.append(
                {
                    "seq": row.seq,
                    "status": status,
                    "attempts": attempts,
                    "next_at": now + timedelta(seconds=delay),
                    "last_error": error[:200],
                }
            )
        sql.reschedule(conn, changes)
        if dead:
            audit.record(
                conn,
                AuditAction.DELIVERY_DEAD,
                actor=audit.SYSTEM_ACTOR,
                details={"system_id": system.system_id, "events": dead, "error": error[:200]},
            )

    def _due(self) -> list[str]:
        now = clock.now()
        with self.store.read() as conn:
            systems = self.datamap.all(conn)
            if not systems:
                return []
            return [
                s
                for s in sql.due_systems(conn, now)
                if s in systems and systems[s].kind is SystemKind.WEBHOOK
            ]

    def _loop(self) -> None:
        last_release = clock.now()
        while not self._stop.is_set():
            try:
                if clock.now() - last_release > self._stale / 2:
                    self.release_stale()
                    last_release = clock.now()
                self._tick()
            except Exception as exc:  # the worker outlives any one failure
                log.error("delivery pass failed: %s", type(exc).__name__)
            self.outbox.wake.wait(_POLL_SECONDS)
            self.outbox.wake.clear()

    def _tick(self) -> None:
        for system_id in self._due():
            self._submit(system_id, self._lane)
        if clock.now() - self._notices_at >= _NOTICE_EVERY:
            self._notices_at = clock.now()
            self._submit("", self._notice_lane)

    def _submit(self, key: str, lane: Any) -> None:
        with self._lock:
            if key in self._busy or self._lanes is None:
                return
            self._busy.add(key)
        self._lanes.submit(lane, key)

    def _lane(self, system_id: str) -> None:
        try:
            while not self._stop.is_set() and self.deliver(system_id) == BATCH:
                pass
        except Exception as exc:  # retried on the next pass
            log.error("delivery to %s failed: %s", system_id, type(exc).__name__)
        finally:
            with self._lock:
                self._busy.discard(system_id)

    def _notice_lane(self, key: str) -> None:
        try:
            self.notices.send_due(self.sink)
        except Exception as exc:  # retried on the next pass
            log.error("rights notices failed: %s", type(exc).__name__)
        finally:
            with self._lock:
                self._busy.discard(key)


def resend(store: Store, system_id: str | None, *, actor: str) -> int:
    """Dead-lettered deliveries (of one system, or all) sent again from the first attempt."""
    with store.write() as conn:
        count = sql.resend(conn, system_id, clock.now())
        if count:
            audit.record(
                conn,
                AuditAction.DELIVERY_RESENT,
                actor=actor,
                details={"system_id": system_id, "events": count},
            )
    return count
