"""The delivery worker: takes due outbox rows per system, checks them again against consent
and the transfer rules, sends them in signed batches (a webhook's POST, or records on a Kafka
system's topic), and retries with backoff until they are delivered or dead-lettered. State
lives in the database, so a restart loses nothing."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent.models import Purpose, SubjectConsent
from consentry.consent.service import ConsentService
from consentry.delivery.kafka import KafkaSink
from consentry.delivery.notices import RightsNotices, backoff
from consentry.delivery.outbox import (
    Delivered,
    Outbox,
    record_refusals,
)
from consentry.delivery.propagation import Gates
from consentry.delivery.sendcheck import Answers, check
from consentry.delivery.sinks import Record, RecordSink, Sink, WebhookSink, signature
from consentry.governance import routing
from consentry.governance.datamap import DataMap
from consentry.governance.models import System, SystemKind
from consentry.keys.subject_keys import SubjectKeys
from consentry.operations import counters, moment
from consentry.settings import Settings
from consentry.storage import delivery as sql
from consentry.storage import hooks
from consentry.storage.configuration import config_version
from consentry.storage.engine import AnyRow, Store

log = logging.getLogger(__name__)

BATCH = 1000
_POLL_SECONDS = 0.05
_NOTICE_EVERY = timedelta(seconds=1)
_LANES = 4
# Recipients remembered as recorded, and consent answers remembered, at most (then forgotten:
# recorded again, a no-op, or decided again).
_RECORDED_MAX = 500_000
# How often, at most, a recipient's last delivery is written: lineage's `last_delivery_at` is
# exact to this (a subject's events, a few a minute, cost one write, not one each).
LAST_EVERY = timedelta(minutes=1)


class _Body(msgspec.Struct):
    """A delivery body: `{"type": "events", "system_id": ..., "events": [...]}`."""

    type: str
    system_id: str
    events: list[Delivered]


_BODY = msgspec.json.Encoder()


class _Counted:
    """A transaction's deliveries by (system, outcome), counted once it has committed: a
    claim or a reschedule that rolls back counts nothing."""

    def __init__(self) -> None:
        self.events: Counter[tuple[str, str]] = Counter()

    def __call__(self) -> None:
        for (system_id, outcome), n in self.events.items():
            counters.count_deliveries(system_id, outcome, n)


def _count(conn: Connection, system_id: str, outcome: str, n: int) -> None:
    if n:
        hooks.after_commit(conn, _Counted, _Counted()).events[(system_id, outcome)] += n


# How long a restricted subject's row waits before it is looked at again.
HOLD = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class _Claimed:
    """A claimed batch after its check: the rows to send with their events, how many rows
    the claim took (dropped ones included), and the (subject, system, purpose) recipients the
    events are for."""

    system: System
    rows: list[AnyRow]
    events: list[Delivered]
    secret: bytes
    taken: int
    reached: set[tuple[str, str, str]]


@dataclass(frozen=True, slots=True)
class _Sent:
    """A batch the receiver acknowledged: the rows to delete, and the (subject, system,
    purpose) recipients it reached, when."""

    seqs: list[int]
    reached: set[tuple[str, str, str]]
    at: datetime


class _Touched:
    """Recipients whose last delivery was written, and when: remembered once committed."""

    def __init__(self, into: dict[tuple[str, str, str], datetime]) -> None:
        self.into = into
        self.done: dict[tuple[str, str, str], datetime] = {}

    def __call__(self) -> None:
        if len(self.into) + len(self.done) > _RECORDED_MAX:
            self.into.clear()
        self.into.update(self.done)


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
        records: RecordSink | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.datamap = datamap
        self.outbox = outbox
        self.consent = consent
        self.subject_keys = subject_keys
        self.notices = notices
        self.sink: Sink = sink or WebhookSink(
            settings.delivery_timeout_seconds, allow_private=settings.allow_private_endpoints
        )
        self.records: RecordSink = records or KafkaSink(
            settings.delivery_timeout_seconds, allow_private=settings.allow_private_endpoints
        )
        self._stop = threading.Event()
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._lanes: ThreadPoolExecutor | None = None
        self._notices_at = clock.now() - _NOTICE_EVERY
        # (subject, system, purpose) recipients this worker has recorded (committed).
        self._recorded: set[tuple[str, str, str]] = set()
        # Their last delivery as this worker last wrote it (committed).
        self._touched: dict[tuple[str, str, str], datetime] = {}
        # Consent answers per (system, subject, purposes), kept across batches (sendcheck).
        self._answers: Answers = {}
        # A claim older than this belongs to a worker that died while sending.
        self._stale = timedelta(seconds=settings.delivery_timeout_seconds * 2 + 30)
        # A consent update's gates, decided again when it is sent.
        self.gates = Gates(
            lambda conn, subject_id: consent.cache.fresh(conn, subject_id, remember=False),
            consent.registry.all,
            outbox.exporter,
        )

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
        self.records.close()

    def run_once(self) -> int:
        """Deliver every due row once (each system until it has nothing due) and send due
        rights notices; returns how many events were delivered."""
        delivered = sum(self.drain(system_id) for system_id in self._due())
        self.notices.send_due(self.sink, keys=self.subject_keys, gates=self.gates)
        return delivered

    def release_stale(self, before: datetime | None = None) -> int:
        with self.store.write() as conn:
            return sql.release_stale(conn, before or clock.now() - self._stale)

    def deliver(self, system_id: str) -> int:
        """Claim, check and send one batch of the system's due rows; the number delivered
        (0 also when the receiver failed: the rows are rescheduled)."""
        return self.drain(system_id, batches=1)

    def drain(self, system_id: str, *, batches: int | None = None) -> int:
        """Send the system's due rows batch after batch, in outbox order, until a claim comes
        back short, a send fails, the worker stops or `batches` were sent; the number
        delivered.

        A batch the receiver acknowledged is deleted (and its recipients recorded) in the
        transaction that claims the next one, one commit a batch: until that commit its rows
        stay claimed, so a crash in between sends them again after a restart (at least once,
        never lost). The last acknowledgement is written before returning."""
        delivered = 0
        sent: _Sent | None = None
        rounds = 0
        try:
            while True:
                claimed = self._claim(system_id, sent)
                sent = None
                if claimed is None:
                    break
                rounds += 1
                if claimed.events:
                    sent = self._send(claimed)
                    if sent is None:
                        break
                    delivered += len(sent.seqs)
                if claimed.taken < BATCH or self._stop.is_set() or rounds == batches:
                    break
        finally:
            if sent is not None:
                with self.store.write() as conn:
                    sql.delete_rows(conn, self._acknowledge(conn, sent))
        return delivered

    def _send(self, claimed: _Claimed) -> _Sent | None:
        """POST the batch (or produce its records); on a 2xx (every record acknowledged) what
        its acknowledgement must write, otherwise the rows are rescheduled (or dead-lettered)
        and None."""
        system = claimed.system
        if system.kind is SystemKind.KAFKA:
            outcome = self.records.send_records(system.endpoint, _records(claimed))
        else:
            body = _BODY.encode(_Body("events", system.system_id, claimed.events))
            outcome = self.sink.send(system.endpoint, body, signature(claimed.secret, body))
        now = clock.now()
        if outcome.ok:
            counters.count_deliveries(system.system_id, "delivered", len(claimed.rows))
            return _Sent([r.seq for r in claimed.rows], claimed.reached, now)
        with self.store.write() as conn:
            self._reschedule(conn, system, claimed.rows, outcome.error or "failed", now)
        return None

    def _claim(self, system_id: str, sent: _Sent | None) -> _Claimed | None:
        """In one transaction: the acknowledgement of the batch sent before (if any), then the
        next batch claimed and checked; rows no longer deliverable are deleted and counted."""
        now = clock.now()
        with self.store.write() as conn:
            gone: list[int] = []
            if sent is not None:
                gone = self._acknowledge(conn, sent)
            version = config_version(conn)
            system = self.datamap.all(conn, version).get(system_id)
            if system is None:
                sql.delete_rows(conn, gone)
                return None
            rows = sql.claim(conn, system_id, now, BATCH)
            if not rows:
                sql.delete_rows(conn, gone)
                return None
            if not routing.queued(system):
                # Queued before the system became a consumer of a consented topic: the stream
                # produces what it may read now, under its gates; nothing goes through here.
                sql.delete_rows(conn, gone + [r.seq for r in rows])
                return None
            purposes = self.consent.registry.all(conn, version)
            states = self._states(conn, rows)
            if len(self._answers) > _RECORDED_MAX:
                self._answers.clear()
            checked = check(
                conn,
                system,
                rows,
                states,
                purposes,
                now,
                self.outbox.exporter,
                self.subject_keys,
                self._answers,
            )
            kept, events, refused = checked.kept, checked.events, checked.refused
            kept, events, stopped = _verified(conn, system_id, kept, events, states, purposes, now)
            _count(conn, system_id, "refused", len(checked.dropped) + len(stopped))
            # One statement for the acknowledged rows and the dropped ones.
            sql.delete_rows(conn, gone + checked.dropped + stopped)
            if checked.held:
                held = set(checked.held)
                sql.reschedule(
                    conn,
                    [
                        {
                            "seq": row.seq,
                            "status": sql.PENDING,
                            "attempts": row.attempts,
                            "next_at": now + HOLD,
                            "last_error": "restricted",
                        }
                        for row in rows
                        if row.seq in held
                    ],
                )
            # Recorded as recipients before the send starts: a withdrawal or an erasure that
            # commits while the batch is on the wire must still reach this system with its
            # notice (a failed send costs at most a notice it did not need).
            triples = {
                (r.subject_id, system_id, p)
                for r, e in zip(kept, events, strict=True)
                for p in e.purposes
            }
            new = triples - self._recorded
            sql.add_recipients(conn, new, clock.rfc3339(now))
            if refused:
                record_refusals(conn, refused)
            secret = self.datamap.signing_secret(conn, system_id)
        # Committed: these need no insert again (recipients are never deleted).
        if len(self._recorded) + len(new) > _RECORDED_MAX:
            self._recorded.clear()
        self._recorded |= new
        return _Claimed(system, kept, events, secret, len(rows), triples)

    def _acknowledge(self, conn: Connection, sent: _Sent) -> list[int]:
        """Write when the acknowledged batch reached its recipients (each at most once every
        LAST_EVERY); the rows to delete."""
        since = sent.at - LAST_EVERY
        due = [t for t in sent.reached if (self._touched.get(t) or since) <= since]
        if due:
            sql.touch_recipients(conn, due, clock.rfc3339(sent.at))
            touched = hooks.after_commit(conn, _Touched, _Touched(self._touched))
            touched.done.update(dict.fromkeys(due, sent.at))
        return sent.seqs

    def _states(self, conn: Connection, rows: Sequence[AnyRow]) -> dict[str, SubjectConsent]:
        """Each subject's state at its version read now, as the pipeline reads it."""
        return self.consent.cache.for_commit(conn, (r.subject_id for r in rows))

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
        _count(conn, system.system_id, "failed", len(rows) - dead)
        _count(conn, system.system_id, "dead", dead)
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
            return [s for s in sql.due_systems(conn, now) if s in systems]

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
            self.drain(system_id)
        except Exception as exc:  # retried on the next pass
            log.error("delivery to %s failed: %s", system_id, type(exc).__name__)
        finally:
            with self._lock:
                self._busy.discard(system_id)

    def _notice_lane(self, key: str) -> None:
        try:
            self.notices.send_due(self.sink, keys=self.subject_keys, gates=self.gates)
        except Exception as exc:  # retried on the next pass
            log.error("rights notices failed: %s", type(exc).__name__)
        finally:
            with self._lock:
                self._busy.discard(key)


def _records(claimed: _Claimed) -> list[Record]:
    """A Kafka system's batch as records: one an event, keyed by its subject pseudonym (so a
    subject's events stay in order on one partition), its value the webhook body of that one
    event, signed as a webhook body is."""
    system_id = claimed.system.system_id
    out = []
    for event in claimed.events:
        value = _BODY.encode(_Body("events", system_id, [event]))
        out.append(
            Record(event.subject_pseudonym.encode(), value, signature(claimed.secret, value))
        )
    return out


def _verified(
    conn: Connection,
    system_id: str,
    kept: list[AnyRow],
    events: list[Delivered],
    states: dict[str, SubjectConsent],
    purposes: dict[str, Purpose],
    now: datetime,
) -> tuple[list[AnyRow], list[Delivered], list[int]]:
    """The batch as it may be sent, after the moment-of-use check (operations/moment.py)
    against the states read in this transaction, and the rows it stopped (counted, audited)."""
    uses = [(r.subject_id, tuple(e.purposes)) for r, e in zip(kept, events, strict=True)]
    found = moment.unconsented(uses, states, purposes, now)
    if not found:
        return kept, events, []
    stopped = [r.seq for r, use in zip(kept, uses, strict=True) if use in found]
    moment.record(
        conn,
        f"delivery:{system_id}",
        events=len(stopped),
        subjects=len({s for s, _ in found}),
        actor=audit.SYSTEM_ACTOR,
        now=now,
    )
    pairs = [(r, e) for r, e, use in zip(kept, events, uses, strict=True) if use not in found]
    return [r for r, _ in pairs], [e for _, e in pairs], stopped


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
