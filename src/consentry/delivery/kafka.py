"""The Kafka sink: a `kind: kafka` system's deliveries become records on the topic its endpoint
names (`kafka://host:port/topic`), produced by an idempotent producer and acknowledged by every
in-sync replica before the batch counts as delivered."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from urllib.parse import urlsplit

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from consentry.delivery.sinks import SIGNATURE_HEADER, Outcome, Record
from consentry.errors import EndpointNotAllowed
from consentry.governance import endpoints

log = logging.getLogger(__name__)

# A first send to a topic fetches its metadata (and a broker may create the topic): a delivery
# timeout shorter than this would fail every first batch.
MIN_TIMEOUT_SECONDS = 5.0
# How long the producer's own wait for its delivery reports may outlast its delivery timeout,
# so every record has a final report (delivered or expired) before the batch is judged.
_REPORT_GRACE_SECONDS = 2.0


def parse(endpoint: str) -> tuple[str, int, str]:
    """(host, port, topic) of a `kafka://host:port/topic` endpoint; ValueError otherwise (the
    data map refuses any other shape when a system is stored)."""
    parts = urlsplit(endpoint)
    topic = parts.path.removeprefix("/")
    if parts.scheme != "kafka" or not parts.hostname or parts.port is None or not topic:
        raise ValueError("not a kafka://host:port/topic endpoint")
    return parts.hostname, parts.port, topic


class _Batch:
    """The delivery reports of one batch: how many records are still unanswered, and the
    first failure."""

    def __init__(self, count: int) -> None:
        self.pending = count
        self.error: str | None = None
        self.fatal = False

    def report(self, error: KafkaError | None, _message: Message) -> None:
        self.pending -= 1
        if error is not None:
            self.fatal = self.fatal or error.fatal()
            if self.error is None:
                self.error = f"kafka: {error.name()}"


class KafkaSink:
    """One idempotent producer per broker address (acks from all in-sync replicas, so a record
    acknowledged is not lost with one broker, and one sent twice by a retry is written once).
    The address connected to is the one checked (endpoints.connect_addresses), as for
    webhooks. A batch is delivered when every record of it is acknowledged; otherwise none of
    it counts (the outbox sends it again: at least once, receivers deduplicate by event_id)."""

    def __init__(
        self,
        timeout: float,
        *,
        allow_private: bool = False,
        resolver: endpoints.Resolver = endpoints.resolve,
    ) -> None:
        self._timeout = max(timeout, MIN_TIMEOUT_SECONDS)
        self._allow_private = allow_private
        self._resolver = resolver
        self._producers: dict[str, Producer] = {}
        # A producer is used by one batch at a time (its flush waits for every record in it
        # and a failure purges its queue); systems on other clusters are sent to meanwhile.
        self._busy: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def send_records(self, endpoint: str, records: Sequence[Record]) -> Outcome:
        """Produce the records to the endpoint's topic and wait for their acknowledgement;
        never raises for a broker's fault."""
        try:
            host, port, topic = parse(endpoint)
            addresses = endpoints.connect_addresses(
                host, port, allow_private=self._allow_private, resolver=self._resolver
            )
        except EndpointNotAllowed:
            return Outcome(False, EndpointNotAllowed.code)
        except ValueError:
            return Outcome(False, "invalid endpoint URL")
        except (OSError, UnicodeError):
            return Outcome(False, "name not resolved")
        bootstrap = ",".join(f"[{a}]:{port}" if ":" in a else f"{a}:{port}" for a in addresses)
        with self._lock:
            busy = self._busy.setdefault(bootstrap, threading.Lock())
        with busy:
            producer = self._producer(bootstrap)
            batch = _Batch(len(records))
            try:
                for record in records:
                    self._produce(producer, topic, record, batch)
                producer.flush(self._timeout + _REPORT_GRACE_SECONDS)
            except KafkaException as exc:
                batch.error = batch.error or f"kafka: {exc.args[0].name()}"
            if batch.pending:
                # Records still queued are withdrawn: none is sent after the batch was judged
                # failed (one already on the wire may still land: at least once, as ever).
                producer.purge()
                producer.poll(0)
            if batch.fatal:
                # An idempotent producer that lost its state for good is replaced.
                with self._lock:
                    del self._producers[bootstrap]
        if batch.error is not None:
            return Outcome(False, batch.error)
        if batch.pending:
            return Outcome(False, "timeout")
        return Outcome(True)

    def _produce(self, producer: Producer, topic: str, record: Record, batch: _Batch) -> None:
        while True:
            try:
                producer.produce(
                    topic,
                    value=record.value,
                    key=record.key,
                    headers=[(SIGNATURE_HEADER, record.signature.encode())],
                    on_delivery=batch.report,
                )
                return
            except BufferError:
                # The local queue is full: let it drain (reports are served meanwhile).
                producer.poll(0.1)

    def _producer(self, bootstrap: str) -> Producer:
        with self._lock:
            producer = self._producers.get(bootstrap)
        if producer is None:
            millis = int(self._timeout * 1000)
            producer = Producer(
                {
                    "bootstrap.servers": bootstrap,
                    "client.id": "consentry-delivery",
                    "enable.idempotence": True,
                    "acks": "all",
                    "message.timeout.ms": millis,
                    "request.timeout.ms": min(millis, 30_000),
                    "linger.ms": 5,
                    "compression.type": "zstd",
                },
                logger=log,
            )
            with self._lock:
                self._producers[bootstrap] = producer
        return producer

    def close(self) -> None:
        """Drop every producer; what is still queued is withdrawn (its rows are sent again
        by the next worker)."""
        with self._lock:
            producers = list(self._producers.values())
            self._producers.clear()
        for producer in producers:
            producer.purge()
            producer.flush(0)
