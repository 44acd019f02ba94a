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
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry.delivery.kafka import KafkaSink
from consentry.delivery.sinks import Outcome, Record
from consentry.delivery.worker import DeliveryWorker
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


@pytest.mark.parametrize(
    ("endpoint", "resolved", "error"),
    [
        ("kafka://127.0.0.1:9092/deliveries", None, "endpoint_not_allowed"),
        ("kafka://kafka.example.com:9092/deliveries", "10.0.0.7", "endpoint_not_allowed"),
        ("kafka://kafka.example.com:9092/deliveries", "fd00::7", "endpoint_not_allowed"),
        ("kafka://kafka.example.com:9092/", "192.0.2.7", "invalid endpoint URL"),
        ("https://kafka.example.com/deliveries", "192.0.2.7", "invalid endpoint URL"),
    ],
)
def test_the_sink_checks_the_address_it_connects_to(
    endpoint: str, resolved: str | None, error: str
) -> None:
    """Unless private endpoints are allowed, a name that resolves (now) to a non-public address
    is not connected to; nothing is produced."""
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[IPAddress]:
        calls.append(host)
        return [ip_address(resolved)] if resolved else []

    sink = KafkaSink(0.5, resolver=resolver)
    try:
        assert sink.send_records(endpoint, _one()) == Outcome(False, error)
    finally:
        sink.close()
