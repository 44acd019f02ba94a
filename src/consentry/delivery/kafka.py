"""The Kafka sink: a `kind: kafka` system's deliveries become records on the topic its endpoint
names (`kafkas://host:port/topic` over TLS, `kafka://` in clear to a private cluster only),
produced by an idempotent producer and acknowledged by every in-sync replica before the batch
counts as delivered."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


class _Refused(Exception):
    """A broker of the cluster may not be connected to (its Outcome's reason)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class _Held:
    """A producer and the bootstrap it was built with."""

    producer: Producer
    bootstrap: str
    tls: bool


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
    """One idempotent producer per endpoint (host, port), acks from all in-sync replicas (a
    record acknowledged is not lost with one broker, one sent twice by a retry is written once).

    Where it connects is checked as for webhooks (endpoints.connect_addresses), and again for
    every broker the cluster advertises before anything is produced: a cluster whose metadata
    names a refused address gets nothing and its producer is closed. `kafkas://` is TLS with the
    broker's name verified against its certificate (bootstrapped by name: the certificate, not
    the address, vouches for it); `kafka://` is plaintext, only to non-public addresses
    (endpoints.plaintext_allowed), bootstrapped on the addresses checked, and a producer is
    replaced (its queue purged) when they change. A batch is delivered when every record of it
    is acknowledged; otherwise none of it counts (the outbox sends it again: at least once,
    receivers deduplicate by event_id)."""

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
        self._producers: dict[tuple[str, int], _Held] = {}
        # A producer is used by one batch at a time (its flush waits for every record in it
        # and a failure purges its queue); systems on other clusters are sent to meanwhile.
        # One lock per endpoint, as many as the data map has Kafka endpoints.
        self._busy: dict[tuple[str, int], threading.Lock] = {}
        self._lock = threading.Lock()

    def send_records(self, endpoint: str, records: Sequence[Record]) -> Outcome:
        """Produce the records to the endpoint's topic and wait for their acknowledgement;
        never raises for a broker's fault."""
        try:
            target = endpoints.kafka_endpoint(endpoint)
        except ValueError:
            return Outcome(False, "invalid endpoint URL")
        try:
            addresses = self._checked(target.host, target.port, tls=target.tls)
        except _Refused as exc:
            return Outcome(False, exc.reason)
        if target.tls:
            bootstrap = _address(target.host, target.port)
        else:
            bootstrap = ",".join(_address(a, target.port) for a in sorted(set(addresses)))
        key = (target.host, target.port)
        with self._lock:
            busy = self._busy.setdefault(key, threading.Lock())
        with busy:
            producer = self._producer(key, bootstrap, target.tls)
            try:
                self._check_brokers(producer, target)
            except _Refused as exc:
                self._drop(key)
                return Outcome(False, exc.reason)
            except KafkaException as exc:
                return Outcome(False, f"kafka: {exc.args[0].name()}")
            return self._send(key, producer, target.topic, records)

    def _send(
        self, key: tuple[str, int], producer: Producer, topic: str, records: Sequence[Record]
    ) -> Outcome:
        """Produce the batch and judge it by its delivery reports (the endpoint's lock held)."""
        batch = _Batch(len(records))
        try:
            for record in records:
                self._produce(producer, topic, record, batch)
            producer.flush(self._timeout + _REPORT_GRACE_SECONDS)
        except KafkaException as exc:
            batch.error = batch.error or f"kafka: {exc.args[0].name()}"
        if batch.fatal:
            # An idempotent producer that lost its state for good is replaced.
            self._drop(key)
        elif batch.pending:
            # Records still queued are withdrawn: none is sent after the batch was judged
            # failed (one already on the wire may still land: at least once, as ever).
            producer.purge()
            producer.poll(0)
        if batch.error is not None:
            return Outcome(False, batch.error)
        if batch.pending:
            return Outcome(False, "timeout")
        return Outcome(True)

    def _checked(self, host: str, port: int, *, tls: bool) -> list[str]:
        """The addresses `host` resolves to now, each one allowed (and, in plaintext, none
        public); _Refused with the reason otherwise."""
        try:
            addresses = endpoints.connect_addresses(
                host, port, allow_private=self._allow_private, resolver=self._resolver
            )
        except EndpointNotAllowed:
            raise _Refused(EndpointNotAllowed.code) from None
        except (OSError, UnicodeError):
            raise _Refused("name not resolved") from None
        if not tls and not endpoints.plaintext_allowed(addresses):
            raise _Refused(EndpointNotAllowed.code)
        return addresses

    def _check_brokers(self, producer: Producer, target: endpoints.KafkaEndpoint) -> None:
        """Every broker the cluster advertises (its metadata, fetched from the bootstrap
        address) passes the bootstrap's check: the producer sends records to those."""
        metadata = producer.list_topics(target.topic, timeout=self._timeout)
        for broker in metadata.brokers.values():
            self._checked(broker.host, broker.port, tls=target.tls)

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

    def _producer(self, key: tuple[str, int], bootstrap: str, tls: bool) -> Producer:
        """The endpoint's producer; a new one (the old one closed) when the addresses checked
        now, or the scheme, differ from those it was built with."""
        with self._lock:
            held = self._producers.get(key)
            if held is not None and (held.bootstrap, held.tls) == (bootstrap, tls):
                return held.producer
            self._producers.pop(key, None)
        if held is not None:
            _close(held.producer)
        producer = Producer(self._config(bootstrap, tls), logger=log)
        with self._lock:
            self._producers[key] = _Held(producer, bootstrap, tls)
        return producer

    def _config(self, bootstrap: str, tls: bool) -> dict[str, Any]:
        millis = int(self._timeout * 1000)
        config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "client.id": "consentry-delivery",
            "enable.idempotence": True,
            "acks": "all",
            "message.timeout.ms": millis,
            "request.timeout.ms": min(millis, 30_000),
            "linger.ms": 5,
            "compression.type": "zstd",
        }
        if tls:
            # The system's CA store; each broker's certificate must name the host connected to.
            config["security.protocol"] = "ssl"
            config["ssl.endpoint.identification.algorithm"] = "https"
        return config

    def _drop(self, key: tuple[str, int]) -> None:
        with self._lock:
            held = self._producers.pop(key, None)
        if held is not None:
            _close(held.producer)

    def close(self) -> None:
        """Drop every producer; what is still queued is withdrawn (its rows are sent again
        by the next worker)."""
        with self._lock:
            producers = [held.producer for held in self._producers.values()]
            self._producers.clear()
            self._busy.clear()
        for producer in producers:
            _close(producer)


def _close(producer: Producer) -> None:
    """Withdraw what is queued and let the producer go (its reports are served, none waited
    for)."""
    producer.purge()
    producer.flush(0)


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
