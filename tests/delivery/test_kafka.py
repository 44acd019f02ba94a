"""Deliveries to `kind: kafka` systems (delivery/kafka.py) on a real broker, both back-ends:
records on the system's topic keyed by the subject's pseudonym, each the signed webhook body of
one event; the same routing, minimisation and transfer rules as webhooks; a broker that is down
means retries, not loss; the sink connects only to an address it checked."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from ipaddress import ip_address
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
from confluent_kafka import KafkaError
from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry.delivery import kafka
from consentry.delivery.kafka import KafkaSink
from consentry.delivery.sinks import Outcome, Record
from consentry.delivery.worker import DeliveryWorker
from consentry.governance import endpoints
from consentry.governance.endpoints import IPAddress
from consentry.storage.schema import outbox
from tests.conftest import auth
from tests.delivery.test_delivery import add, page_view, runtime_of, system, worker
from tests.ingest.test_pipeline import grant, send, who
from tests.kafka import Broker, records

pytestmark = pytest.mark.kafka


def _topic() -> str:
    return f"deliveries-{uuid.uuid4().hex[:8]}"


def _kafka(bootstrap: str, topic: str, **extra: Any) -> dict[str, Any]:
    return system(f"kafka://{bootstrap}/{topic}", kind="kafka") | extra


def _deliver(w: DeliveryWorker, count: int, seconds: float = 60) -> int:
    """Run the worker until `count` events are delivered (or the time is up)."""
    delivered = 0
    deadline = time.monotonic() + seconds
    while delivered < count and time.monotonic() < deadline:
        delivered += w.run_once()
        time.sleep(0.05)
    return delivered


def _delivery(gateway: TestClient, system_id: str) -> dict[str, Any]:
    got = gateway.get(f"/v1/systems/{system_id}", headers=auth())
    assert got.status_code == 200, got.text
    return dict(got.json()["delivery"])


def test_a_kafka_system_gets_its_deliveries_as_records(
    gateway: TestClient, kafka_bootstrap: str
) -> None:
    grant(gateway, who("ana"), "analytics")
    grant(gateway, who("ben"), "analytics")
    topic = _topic()
    secret = add(gateway, "stream", _kafka(kafka_bootstrap, topic))
    sent = send(gateway, [page_view("e1"), page_view("e2", "ben"), page_view("e3")])
    assert [s["status"] for s in sent] == ["accepted"] * 3
    w = worker(gateway)
    try:
        assert _deliver(w, 3) == 3
    finally:
        w.stop()
    assert _delivery(gateway, "stream")["pending"] == 0

    found = records(kafka_bootstrap, topic)
    assert len(found) == 3
    bodies = [json.loads(m.value() or b"") for m in found]
    # One record an event, in outbox order, each the webhook body of that one event.
    assert [b["events"][0]["event_id"] for b in bodies] == ["e1", "e2", "e3"]
    for message, body in zip(found, bodies, strict=True):
        assert body["type"] == "events"
        assert body["system_id"] == "stream"
        [event] = body["events"]
        assert message.key() == event["subject_pseudonym"].encode()
        assert event["purposes"] == ["analytics"]
        # Minimised as for a webhook: the system declares system.operations and user.contact.
        assert set(event["properties"]) == {"url", "email"}
        headers = dict(message.headers() or [])
        expected = hmac.new(secret.encode(), message.value() or b"", hashlib.sha256).hexdigest()
        assert headers["X-Consentry-Signature"] == expected.encode()
        assert b"@example.com" not in (message.value() or b"")
    # A subject's events share a key (one partition, in order); two subjects do not.
    assert found[0].key() == found[2].key() != found[1].key()


def test_a_transfer_blocked_kafka_system_gets_nothing(
    gateway: TestClient, kafka_bootstrap: str
) -> None:
    grant(gateway, who("ana"), "analytics")
    allowed, blocked = _topic(), _topic()
    add(gateway, "eu-stream", _kafka(kafka_bootstrap, allowed))
    add(gateway, "us-stream", _kafka(kafka_bootstrap, blocked, region="US"))
    assert send(gateway, [page_view("e1")])[0]["status"] == "accepted"
    w = worker(gateway)
    try:
        assert _deliver(w, 1) == 1
        assert w.run_once() == 0
    finally:
        w.stop()
    assert [m.key() for m in records(kafka_bootstrap, allowed)]
    assert records(kafka_bootstrap, blocked, quiet=1) == []
    assert _delivery(gateway, "us-stream") == {
        "pending": 0,
        "dead": 0,
        "refused": {"transfer_blocked": 1},
    }


def test_a_broker_down_means_retries_not_loss(gateway: TestClient, kafka_broker: Broker) -> None:
    grant(gateway, who("ana"), "analytics")
    topic = _topic()
    add(gateway, "stream", _kafka(kafka_broker.bootstrap, topic))
    rt = runtime_of(gateway)
    w = worker(gateway)
    kafka_broker.down()
    try:
        assert send(gateway, [page_view("e1")])[0]["status"] == "accepted"
        assert w.run_once() == 0
        with rt.store.read() as conn:
            [(attempts, error)] = conn.execute(
                select(outbox.c.attempts, outbox.c.last_error).where(outbox.c.system_id == "stream")
            ).all()
        assert attempts == 1
        assert error.startswith("kafka: ")
        assert _delivery(gateway, "stream")["pending"] == 1
    finally:
        kafka_broker.up()
    try:
        assert _deliver(w, 1) == 1
    finally:
        w.stop()
    found = records(kafka_broker.bootstrap, topic)
    assert [json.loads(m.value() or b"")["events"][0]["event_id"] for m in found] == ["e1"]
    assert _delivery(gateway, "stream")["pending"] == 0


def _one() -> list[Record]:
    return [Record(b"key", b'{"type": "events"}', "0" * 64)]


class _Producer:
    """A stand-in for confluent_kafka.Producer: its configuration, what was asked of it, the
    brokers its metadata advertises, and the report each record gets when flushed."""

    def __init__(self, made: _Made, config: dict[str, Any]) -> None:
        self.config = config
        self.brokers = made.brokers
        self.error = made.error
        self.calls: list[Any] = []
        self._reports: list[Any] = []

    def list_topics(self, topic: str, timeout: float) -> Any:
        self.calls.append(("list_topics", topic))
        brokers = {i: SimpleNamespace(host=h, port=p) for i, (h, p) in enumerate(self.brokers)}
        return SimpleNamespace(brokers=brokers)

    def produce(self, topic: str, *, on_delivery: Any, **_: Any) -> None:
        self.calls.append(("produce", topic))
        self._reports.append(on_delivery)

    def flush(self, timeout: float) -> int:
        self.calls.append(("flush", timeout))
        for report in self._reports:
            report(self.error, None)
        self._reports.clear()
        return 0

    def purge(self) -> None:
        self.calls.append("purge")

    def poll(self, timeout: float) -> int:
        return 0


class _Made(list[_Producer]):
    """Every producer the sink made, in order; `brokers` and `error` apply to the next ones."""

    def __init__(self) -> None:
        super().__init__()
        self.brokers: list[tuple[str, int]] = [("10.0.0.9", 9092)]
        self.error: KafkaError | None = None


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> _Made:
    made = _Made()

    def producer(config: dict[str, Any], **_: Any) -> _Producer:
        made.append(_Producer(made, config))
        return made[-1]

    monkeypatch.setattr(kafka, "Producer", producer)
    return made


_CLOSED = ["purge", ("flush", 0)]


@pytest.mark.parametrize(
    ("endpoint", "resolved", "allow_private", "error"),
    [
        ("kafka://127.0.0.1:9092/deliveries", None, False, "endpoint_not_allowed"),
        ("kafka://kafka.example.com:9092/deliveries", "10.0.0.7", False, "endpoint_not_allowed"),
        ("kafka://kafka.example.com:9092/deliveries", "fd00::7", False, "endpoint_not_allowed"),
        ("kafkas://kafka.example.com:9093/deliveries", "10.0.0.7", False, "endpoint_not_allowed"),
        # Plaintext to a public address, private endpoints allowed or not: TLS or nothing.
        ("kafka://kafka.example.com:9092/deliveries", "8.8.8.8", False, "endpoint_not_allowed"),
        ("kafka://kafka.example.com:9092/deliveries", "8.8.8.8", True, "endpoint_not_allowed"),
        ("kafka://8.8.8.8:9092/deliveries", None, True, "endpoint_not_allowed"),
        ("kafka://kafka.example.com:9092/", "192.0.2.7", False, "invalid endpoint URL"),
        ("https://kafka.example.com/deliveries", "192.0.2.7", False, "invalid endpoint URL"),
    ],
)
def test_the_sink_checks_the_address_it_connects_to(
    made: _Made, endpoint: str, resolved: str | None, allow_private: bool, error: str
) -> None:
    """Unless private endpoints are allowed, a name that resolves (now) to a non-public address
    is not connected to, and plaintext goes to no public address; no producer is made."""
    calls: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[IPAddress]:
        calls.append((host, port))
        return [ip_address(resolved)] if resolved else []

    sink = KafkaSink(0.5, allow_private=allow_private, resolver=resolver)
    try:
        assert sink.send_records(endpoint, _one()) == Outcome(False, error)
    finally:
        sink.close()
    # A name is resolved by the sink (an address written out is not); a URL of another shape
    # is not looked at.
    parts = urlsplit(endpoint)
    named = parts.hostname == "kafka.example.com" and error != "invalid endpoint URL"
    assert calls == ([("kafka.example.com", parts.port)] if named else [])
    assert made == []


def test_plaintext_bootstraps_on_the_checked_addresses(made: _Made) -> None:
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[IPAddress]:
        calls.append(host)
        return [ip_address("10.0.0.8"), ip_address("fd00::7"), ip_address("10.0.0.7")]

    sink = KafkaSink(0.5, allow_private=True, resolver=resolver)
    try:
        endpoint = "kafka://kafka.example.com:9092/deliveries"
        assert sink.send_records(endpoint, _one()) == Outcome(True)
    finally:
        sink.close()
    [producer] = made
    assert calls == ["kafka.example.com"]
    assert producer.config["bootstrap.servers"] == "10.0.0.7:9092,10.0.0.8:9092,[fd00::7]:9092"
    assert "security.protocol" not in producer.config
    # The advertised brokers were asked for, and checked, before anything was produced.
    assert producer.calls[:2] == [("list_topics", "deliveries"), ("produce", "deliveries")]


def test_tls_verifies_the_brokers_names_and_checks_the_advertised_ones(made: _Made) -> None:
    resolved: dict[str, str] = {
        "kafka.example.com": "8.8.8.8",
        "b1.example.com": "8.8.4.4",
        "internal.example.com": "10.0.0.7",
    }
    calls: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[IPAddress]:
        calls.append((host, port))
        return [ip_address(resolved[host])]

    made.brokers = [("b1.example.com", 9093)]
    sink = KafkaSink(0.5, resolver=resolver)
    endpoint = "kafkas://kafka.example.com:9093/deliveries"
    try:
        assert sink.send_records(endpoint, _one()) == Outcome(True)
        [first] = made
        assert first.config["bootstrap.servers"] == "kafka.example.com:9093"
        assert first.config["security.protocol"] == "ssl"
        assert first.config["ssl.endpoint.identification.algorithm"] == "https"
        assert calls == [("kafka.example.com", 9093), ("b1.example.com", 9093)]

        # The cluster now names a broker on a private address: nothing is produced, and the
        # producer that learnt it is closed.
        first.brokers = [("b1.example.com", 9093), ("internal.example.com", 9093)]
        assert sink.send_records(endpoint, _one()) == Outcome(False, "endpoint_not_allowed")
        assert first.calls[-3:] == [("list_topics", "deliveries"), *_CLOSED]
        assert sink._producers == {}
    finally:
        sink.close()


def test_one_producer_an_endpoint_however_its_name_rotates(made: _Made) -> None:
    answers = [["10.0.0.1", "10.0.0.2"], ["10.0.0.2", "10.0.0.1"], ["10.0.0.3"], ["10.0.0.1"]]
    asked = 0

    def resolver(host: str, port: int) -> list[IPAddress]:
        nonlocal asked
        asked += 1
        return [ip_address(a) for a in answers[asked - 1]]

    sink = KafkaSink(0.5, allow_private=True, resolver=resolver)
    endpoint = "kafka://kafka.example.com:9092/deliveries"
    try:
        for _ in answers:
            assert sink.send_records(endpoint, _one()) == Outcome(True)
            assert len(sink._producers) == 1
            assert len(sink._busy) == 1
        # The same addresses in another order keep the producer; other addresses replace it,
        # the old one closed.
        assert [p.config["bootstrap.servers"] for p in made] == [
            "10.0.0.1:9092,10.0.0.2:9092",
            "10.0.0.3:9092",
            "10.0.0.1:9092",
        ]
        for old in made[:-1]:
            assert old.calls[-2:] == _CLOSED
        assert "purge" not in made[-1].calls
    finally:
        sink.close()
    assert made[-1].calls[-2:] == _CLOSED
    assert sink._busy == {}


def test_a_fatal_error_replaces_the_producer_after_purging_it(made: _Made) -> None:
    made.error = KafkaError(KafkaError._FATAL, "fenced", fatal=True)
    sink = KafkaSink(0.5, allow_private=True)
    endpoint = "kafka://10.0.0.7:9092/deliveries"
    try:
        assert sink.send_records(endpoint, _one()) == Outcome(False, "kafka: _FATAL")
        [first] = made
        assert first.calls[-2:] == _CLOSED
        assert sink._producers == {}
        made.error = None
        assert sink.send_records(endpoint, _one()) == Outcome(True)
        assert len(made) == 2
    finally:
        sink.close()


def test_a_cluster_advertising_a_refused_address_gets_nothing(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test broker advertises its loopback address. With the bootstrap let through, and
    private addresses refused otherwise, its metadata stops the batch: nothing is produced
    and the producer is closed."""
    checked: list[tuple[str, int]] = []
    connect = endpoints.connect_addresses

    def only_the_bootstrap(host: str, port: int, **options: Any) -> list[str]:
        checked.append((host, port))
        return connect(host, port, **(options | {"allow_private": len(checked) == 1}))

    monkeypatch.setattr(endpoints, "connect_addresses", only_the_bootstrap)
    topic = _topic()
    sink = KafkaSink(5)
    try:
        outcome = sink.send_records(f"kafka://{kafka_bootstrap}/{topic}", _one())
    finally:
        sink.close()
    assert outcome == Outcome(False, "endpoint_not_allowed")
    host, port = kafka_bootstrap.split(":")
    assert checked == [(host, int(port)), (host, int(port))]
    assert sink._producers == {}
    assert records(kafka_bootstrap, topic, quiet=1) == []
