"""The compacted topic `consentry.consents`: every ledger change this process commits is
published to it (ConsentFeed), and a stream replica folds what every process published into
its consent cache (ConsentFolder). The database stays the truth: a record only tells a replica
which subjects to read again."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import msgspec
from confluent_kafka import (
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from consentry.consent import feed
from consentry.consent.cache import ConsentCache
from consentry.consent.models import SubjectConsent
from consentry.stream import topics
from consentry.stream.cluster import Config

log = logging.getLogger(__name__)
_JSON = msgspec.json.Encoder()
# How long a publish may wait for room in the producer's queue before it is given up (logged).
_QUEUE_WAIT_SECONDS = 1.0


def _report(error: KafkaError | None, message: Message) -> None:
    if error is not None:
        # The subject id is a random id, not personal data; the value is not logged.
        log.warning("a ledger change was not published to %s: %s", message.topic(), error)


def _failed(exc: KafkaException) -> None:
    error = exc.args[0] if exc.args else None
    name = error.name() if isinstance(error, KafkaError) else type(exc).__name__
    log.warning("a ledger change was not published to %s: %s", topics.CONSENTS, name)


class KafkaConsentFeed:
    """Publishes committed ledger changes (consent.feed.ConsentFeed): key the subject id, value
    the purposes' states and the version, an erased subject's tombstone. An idempotent
    producer keeps one process's records of a subject in the order they were committed."""

    def __init__(self, cluster: Config) -> None:
        self._producer = Producer(
            cluster
            | {
                "client.id": "consentry-consents",
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
            },
            logger=log,
        )
        try:
            topics.Topics(cluster).ensure({topics.CONSENTS: topics.consents_config()})
        except KafkaException as exc:
            log.warning("the topic %s could not be made ready: %s", topics.CONSENTS, exc)

    def publish(self, states: Sequence[SubjectConsent]) -> None:
        """Called after the ledger's commit: never raises (a change not published is logged,
        by its error alone; a replica reads the database again at its next start)."""
        for state in states:
            found = feed.value(state)
            value = None if found is None else _JSON.encode(found)
            self._produce(state.subject_id.encode(), value)
        try:
            self._producer.poll(0)
        except KafkaException as exc:
            _failed(exc)

    def _produce(self, key: bytes, value: bytes | None) -> None:
        for _ in range(int(_QUEUE_WAIT_SECONDS / 0.1)):
            try:
                self._producer.produce(topics.CONSENTS, key=key, value=value, on_delivery=_report)
                return
            except BufferError:
                self._producer.poll(0.1)
            except KafkaException as exc:
                _failed(exc)
                return
        log.warning("a ledger change was not published to %s: queue full", topics.CONSENTS)

    def flush(self, timeout: float = 10.0) -> int:
        """Wait for what is queued; returns how many records are still unsent."""
        return int(self._producer.flush(timeout))

    def close(self) -> None:
        left = self.flush()
        if left:
            log.warning("%d ledger changes were not published to %s", left, topics.CONSENTS)


class ConsentFolder:
    """Reads the consents topic from its end (the cache was rebuilt from the ledger at start)
    and reads again, from the database, each subject a record names whose cached state is
    behind its row."""

    def __init__(self, cluster: Config, cache: ConsentCache) -> None:
        self._cache = cache
        self._consumer = Consumer(
            cluster
            | {
                "group.id": "consentry-consents-fold",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            },
            logger=log,
        )
        described = self._consumer.list_topics(topics.CONSENTS, timeout=30).topics
        partitions = described[topics.CONSENTS].partitions if topics.CONSENTS in described else {}
        self._consumer.assign(
            [TopicPartition(topics.CONSENTS, p, OFFSET_END) for p in sorted(partitions)]
        )

    def fold(self, limit: int = 1000) -> int:
        """Fold what has arrived (without waiting); returns how many records were read."""
        found = self._consumer.consume(num_messages=limit, timeout=0)
        subjects = {
            key.decode()
            for message in found
            if message.error() is None and (key := message.key()) is not None
        }
        if subjects:
            self._cache.refresh(subjects)
        return len(found)

    def close(self) -> None:
        self._consumer.close()
