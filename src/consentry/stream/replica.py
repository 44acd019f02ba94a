"""`consentry stream`: one replica of the stream mode. It consumes `consentry.raw` in batches,
runs each through the ingest pipeline (the same code as `POST /v1/events`) and, in one Kafka
transaction per batch, produces the consented and refused records and commits the consumed
offsets (exactly once). The Kafka transaction commits inside the pipeline's write transaction,
while that transaction still holds the versions of the batch's subjects (`FOR SHARE` on
PostgreSQL): a withdrawal waits for it, so once a withdrawal has returned no record decided
before it can still be committed (DESIGN.md, the consistency rule)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from sqlalchemy import Connection

from consentry import clock
from consentry.delivery.consumers import Admitted
from consentry.errors import ConsentryError, StorageUnavailable
from consentry.governance import consented
from consentry.ingest.decode import BODY_REFUSALS
from consentry.ingest.pipeline import EventResult
from consentry.ingest.ports import AcceptedEvent
from consentry.runtime import Runtime
from consentry.storage import hooks
from consentry.storage import stream as marks
from consentry.stream import records, topics
from consentry.stream.cluster import Config, client_config
from consentry.stream.consents import ConsentFolder

log = logging.getLogger(__name__)

ACTOR = "stream"
GROUP = "consentry-stream"
# A killed replica's open transaction is aborted by the broker after this (unless a replica of
# the same CONSENTRY_STREAM_ID starts first and aborts it at once).
TRANSACTION_TIMEOUT_MS = 10_000
SESSION_TIMEOUT_MS = 10_000
_BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)
_TIMEOUT = 30.0
_COMMIT_ATTEMPTS = 3
# All of a batch's Kafka work inside the database transaction (producing, the offsets, the
# commit and its retries) ends within this, well under TRANSACTION_TIMEOUT_MS; then the Kafka
# transaction is aborted (within _ABORT_SECONDS) and the batch read again.
KAFKA_DEADLINE_SECONDS = 5.0
_ABORT_SECONDS = 2.0
_DEADLINE = timedelta(seconds=KAFKA_DEADLINE_SECONDS)
# The first wait before a request is tried again (it doubles up to librdkafka's
# retry.backoff.max.ms, 1 s). A batch's offsets are added to its transaction while the broker
# is often still writing the markers of the one before, and it answers CONCURRENT_TRANSACTIONS
# until done (a few milliseconds); at librdkafka's default of 100 ms that wait was a good part
# of a batch (the Java client retries this one after 20 ms for the same reason).
RETRY_BACKOFF_MS = 10


# What a committed Kafka transaction's database transaction wrote for its records.
_Written = tuple[Admitted, list[tuple[str, str]], datetime, dict[str, datetime]]


class StreamFailed(Exception):
    """The replica cannot go on (its producer was fenced or failed for good)."""


class _Transaction:
    """One batch's Kafka transaction, run from the pipeline's write transaction (its
    `committing` hook): the batch's records produced and its offsets committed, once."""

    def __init__(self, replica: Replica, batch: Sequence[Message], screened: records.Screened):
        self.replica = replica
        self.batch = batch
        self.screened = screened
        self.committed = False
        # What the committed Kafka transaction's database transaction wrote for its records
        # (the consumers' answer, the marks, when): written again if that transaction fails
        # and the pipeline retries the batch's write.
        self._written: _Written | None = None

    def __call__(self, results: list[EventResult], accepted: Sequence[AcceptedEvent]) -> None:
        runtime = self.replica.runtime
        conn = runtime.store.writing()
        if conn is None:
            raise RuntimeError("the committing hook runs inside the batch's write transaction")
        if self.committed:
            # The database write is being retried after its transaction failed: the records
            # and offsets are committed already (never Kafka a record twice), so nothing is
            # produced again; but the records are on their topics, so their marks and their
            # consumers as recipients are written again, as they were decided then.
            if self._written is not None:
                admitted, pairs, at, gone_by = self._written
                runtime.consumers.again(conn, admitted, now=at)
                self._count(conn, admitted)
                marks.mark(conn, pairs, at, gone_by)
            return
        now = clock.now()
        # Only for a registered consumer that passes the delivery gates, decided once per
        # subject and purpose a batch; its consumers become the subject's recipients.
        stored_for = Counter(p for r in results if r.code is None for p in r.purposes)
        admitted = runtime.consumers.admit(conn, stored_for, accepted, now=now)
        self.replica.configuration(admitted.version)
        self._count(conn, admitted)
        out = records.outcome(
            self.screened.events,
            results,
            admitted.events,
            self.replica.pseudonyms,
            admitted.pairs,
            admitted.declares,
        )
        # Once per subject and topic a batch: what erasures and withdrawal purges wait for.
        pairs = sorted({(r.subject_id, r.topic) for r in out if r.subject_id})
        # The topics' configuration applied first: each mark says when its records are gone
        # under the retention this replica applied to their topic, from a time taken after it
        # (the producer's deadline starts later still: lifetime's margin).
        self.replica.ready(conn, out, now)
        at = clock.now()
        gone_by = {t: at + self.replica.lifetime(t) for t in {t for _, t in pairs}}
        marks.mark(conn, pairs, at, gone_by)
        # Kept before the commit: the transaction may fail after it (read only once committed).
        self._written = (admitted, pairs, at, gone_by)
        self.commit(out)

    def _count(self, conn: Connection, admitted: Admitted) -> None:
        if admitted.withheld:
            kept = sum(admitted.withheld.values())
            hooks.after_commit(conn, self, lambda: self.replica.count_withheld(kept))

    def commit(self, out: list[records.Out]) -> None:
        out = [
            records.refused(records.event_id_of(m), code) for m, _, code in self.screened.refused
        ] + out
        self.replica.commit(out, self.batch)
        self.committed = True


class Replica:
    """One stream replica over a runtime; `run()` until `stop` is set, `step()` one batch."""

    def __init__(self, runtime: Runtime, stop: threading.Event | None = None) -> None:
        settings = runtime.settings
        if not settings.kafka_brokers:
            raise StreamFailed("CONSENTRY_KAFKA_BROKERS is not set")
        self.runtime = runtime
        self.stop = stop or threading.Event()
        self.pseudonyms = runtime.outbox.pseudonyms
        self._batch = settings.stream_batch
        self._wait = settings.stream_batch_ms / 1000
        cluster = client_config(settings)
        self.topics = topics.Topics(cluster)
        self.topics.ensure(
            {topics.RAW: topics.raw_config(settings.kafka_raw_retention_hours), topics.REFUSED: {}}
        )
        # Every purpose's consented topic now, so that no batch waits for one to be made.
        wanted = {
            topics.consented(p): self._consented_config(topics.consented(p))
            for p in runtime.purposes.cached()
        }
        # Topics whose retention this replica made longer, their marks not yet moved by a
        # committed transaction.
        self._unextended: set[str] = set(self._longer(self.topics.ensure(wanted)))
        if self._unextended:
            with runtime.store.write() as conn:
                self._extend(conn, sorted(self._unextended), clock.now())
            self._unextended.clear()
        # The configuration version the topics' configuration was applied under.
        self._version: int | None = None
        name = settings.stream_id or uuid.uuid4().hex
        self.producer = Producer(
            transactional_config(cluster, f"consentry-stream-{name}"), logger=log
        )
        # Aborts what a predecessor of the same transactional id left open.
        self.producer.init_transactions(_TIMEOUT)
        group = cluster | {
            "group.id": GROUP,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            # A replica that died leaves the group within this (not the default 45 s).
            "session.timeout.ms": SESSION_TIMEOUT_MS,
        }
        if settings.stream_id:
            # Static membership: a replica started again under its name takes its partitions
            # back without a rebalance.
            group["group.instance.id"] = f"consentry-stream-{settings.stream_id}"
        self.consumer = Consumer(group, logger=log)
        self.consumer.subscribe([topics.RAW])
        self.folder = ConsentFolder(cluster, runtime.consent_cache)
        # Raw records settled so far, and events stored but kept off their consented topics
        # (no consumer, or a consumer a delivery gate refuses): figures for operators and tests.
        self.settled = 0
        self.withheld = 0

    def configuration(self, version: int | None) -> None:
        """The configuration version a batch is decided under: when it moved, each consented
        topic's configuration is applied again before its next records (a purpose's retention
        made shorter reaches the broker)."""
        if version is None or version == self._version:
            return
        if self._version is not None:
            self.topics.forget(topics.CONSENTED_PREFIX)
        self._version = version

    def ready(self, conn: Connection, out: Sequence[records.Out], now: datetime) -> None:
        """The consented topics of `out` exist with their configuration; where a retention
        was made longer, the marks of records still on the topic are moved to it, in the
        caller's write transaction (and in the next ones until one of them commits)."""
        wanted = {
            r.topic: self._consented_config(r.topic)
            for r in out
            if r.topic.startswith(topics.CONSENTED_PREFIX)
        }
        if wanted:
            self._unextended.update(self._longer(self.topics.ensure(wanted)))
        if self._unextended:
            # Until a transaction that moves them commits: the broker keeps the longer
            # retention whether this one commits or not.
            names = sorted(self._unextended)
            self._extend(conn, names, now)
            hooks.after_commit(
                conn, (self, "extended"), lambda: self._unextended.difference_update(names)
            )

    def lifetime(self, topic: str) -> timedelta:
        """How long after a batch's mark its records may be on `topic`, under the
        configuration this replica applied to it."""
        config = self.topics.applied(topic) or self._consented_config(topic)
        return consented.lifetime(config, _DEADLINE)

    def _longer(self, before: dict[str, dict[str, str]]) -> list[str]:
        """Of the topics whose earlier configuration is `before`, those whose records now stay
        longer (an earlier value not known counts as shorter)."""
        longer = []
        for name, old in before.items():
            if not name.startswith(topics.CONSENTED_PREFIX):
                continue
            try:
                shorter = consented.lifetime(old, _DEADLINE) < self.lifetime(name)
            except (KeyError, ValueError):
                shorter = True
            if shorter:
                longer.append(name)
        return longer

    def _extend(self, conn: Connection, names: Sequence[str], now: datetime) -> None:
        for name in names:
            moved = marks.extend(conn, name, self.lifetime(name), now)
            if moved:
                log.info("%s keeps its records longer: %d marks moved", name, moved)

    def count_withheld(self, events: int) -> None:
        """Events of a committed batch stored but kept off their consented topics."""
        self.withheld += events

    def run(self) -> None:
        """Batches until `stop` is set; a batch that fails is read again after a pause."""
        failures = 0
        while not self.stop.is_set():
            try:
                self.step()
                failures = 0
            except StreamFailed:
                raise
            except Exception as exc:
                pause = _BACKOFF_SECONDS[min(failures, len(_BACKOFF_SECONDS) - 1)]
                failures += 1
                log.warning("a stream batch failed (%s); read again in %.1f s", exc, pause)
                self.stop.wait(pause)

    def step(self) -> int:
        """One batch: what arrived within CONSENTRY_STREAM_BATCH_MS, at most
        CONSENTRY_STREAM_BATCH records; returns how many raw records it settled."""
        self.folder.fold()
        found = self.consumer.consume(num_messages=self._batch, timeout=self._wait)
        batch = [m for m in found if m.error() is None]
        for message in found:
            if message.error() is not None:
                log.warning("consuming %s: %s", topics.RAW, message.error())
        if not batch:
            return 0
        settled: list[Message] = []
        try:
            self._settle(batch, settled)
        except BaseException:
            # Only what is not committed yet: a record settled on its own is not read again.
            done = {id(m) for m in settled}
            self._rewind([m for m in batch if id(m) not in done])
            self.settled += len(settled)
            raise
        self.settled += len(batch)
        return len(batch)

    def _settle(self, batch: Sequence[Message], settled: list[Message]) -> None:
        """Settle `batch` in one Kafka transaction, or (a refusal of the whole body) one
        record at a time; each record settled on its own is appended to `settled`."""
        screened = records.screen(batch)
        transaction = _Transaction(self, batch, screened)
        if not screened.events:
            transaction.commit([])
            return
        try:
            self.runtime.pipeline.ingest(screened.body(), actor=ACTOR, committing=transaction)
        except StorageUnavailable:
            if transaction.committed:
                log.error("a stream batch was committed to Kafka but not stored")
                return
            raise
        except ConsentryError as exc:
            if transaction.committed:
                log.error("a stream batch was committed to Kafka but not stored (%s)", exc.code)
                return
            if exc.code not in BODY_REFUSALS:
                # The system's failure (a key that does not open, storage...), not the
                # records': the batch is read again, never refused for good.
                raise
            if len(batch) == 1:
                # A refusal of the whole batch (a rule of the batch, not of one event) for a
                # batch of one record: that record is refused with its code.
                _Transaction(
                    self, batch, records.Screened([], [(batch[0], None, exc.code)])
                ).commit([])
                return
            # Decided again one record at a time, so the refusal names its record alone.
            for message in batch:
                self._settle([message], settled)
                settled.append(message)
        except Exception:
            if transaction.committed:
                log.exception("a stream batch was committed to Kafka but not stored")
                return
            raise

    def commit(self, out: Sequence[records.Out], batch: Sequence[Message]) -> None:
        """Produce `out` and commit the offsets after `batch` in one Kafka transaction."""
        wanted = {
            r.topic: self._consented_config(r.topic)
            for r in out
            if r.topic.startswith(topics.CONSENTED_PREFIX)
        }
        if wanted:
            self.topics.ensure(wanted)
        producer = self.producer
        deadline = time.monotonic() + KAFKA_DEADLINE_SECONDS
        producer.begin_transaction()
        try:
            for record in out:
                self._produce(record, deadline)
            producer.send_offsets_to_transaction(
                _offsets(batch), self.consumer.consumer_group_metadata(), _left(deadline)
            )
            self._commit_transaction(deadline)
        except KafkaException as exc:
            error = exc.args[0]
            if error.fatal():
                raise StreamFailed(f"the stream producer failed for good: {error}") from exc
            producer.abort_transaction(_ABORT_SECONDS)
            raise

    def _commit_transaction(self, deadline: float) -> None:
        """Commit, again while the broker says trying again may succeed (librdkafka's rule:
        a retriable commit error is retried, one that requires it is aborted), all before
        `deadline`."""
        for attempt in range(_COMMIT_ATTEMPTS):
            try:
                self.producer.commit_transaction(_left(deadline))
                return
            except KafkaException as exc:
                error = exc.args[0]
                last = attempt == _COMMIT_ATTEMPTS - 1 or time.monotonic() >= deadline
                if not error.retriable() or last:
                    raise

    def _produce(self, record: records.Out, deadline: float) -> None:
        while True:
            try:
                self.producer.produce(record.topic, value=record.value, key=record.key)
                return
            except BufferError:
                if time.monotonic() >= deadline:
                    raise KafkaException(
                        KafkaError(KafkaError._TIMED_OUT, "the producer's queue stayed full")
                    ) from None
                self.producer.poll(0.05)

    def _consented_config(self, topic: str) -> dict[str, str]:
        purpose = topic.removeprefix(topics.CONSENTED_PREFIX)
        known = self.runtime.purposes.cached() or {}
        return consented.config(self.runtime.settings.kafka_retention_hours, known.get(purpose))

    def _rewind(self, batch: Sequence[Message]) -> None:
        """The batch's partitions back to its first records, to be read again."""
        first: dict[tuple[str, int], int] = {}
        for m in batch:
            key = (str(m.topic()), int(m.partition() or 0))
            first[key] = min(first.get(key, int(m.offset() or 0)), int(m.offset() or 0))
        for (topic, partition), offset in first.items():
            try:
                self.consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:
                # No longer assigned: its new owner reads from the committed offset.
                log.info("not rewound %s[%d]: %s", topic, partition, exc)

    def close(self) -> None:
        self.consumer.close()
        self.folder.close()
        self.producer.flush(5)


def transactional_config(cluster: Config, name: str) -> Config:
    """A replica's transactional producer on `cluster` (`name` its client and transactional
    id)."""
    return cluster | {
        "client.id": name,
        "transactional.id": name,
        "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "retry.backoff.ms": RETRY_BACKOFF_MS,
    }


def _left(deadline: float) -> float:
    """The seconds left before `deadline` (a Kafka call given none fails at once)."""
    return max(deadline - time.monotonic(), 0.001)


def _offsets(batch: Sequence[Message]) -> list[TopicPartition]:
    """The offsets to commit after `batch`: its last record's next, per partition."""
    last: dict[tuple[str, int], int] = {}
    for m in batch:
        key = (str(m.topic()), int(m.partition() or 0))
        last[key] = max(last.get(key, -1), int(m.offset() or 0))
    return [TopicPartition(t, p, o + 1) for (t, p), o in sorted(last.items())]


def run(runtime: Runtime, stop: threading.Event) -> None:
    """`consentry stream`: a replica until `stop` is set."""
    replica = Replica(runtime, stop)
    log.info("stream replica consuming %s", topics.RAW)
    try:
        replica.run()
    finally:
        replica.close()
