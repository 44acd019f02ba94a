"""Fixtures of the stream tests: a gateway and stream replicas on one PostgreSQL database and
the test process's Kafka broker (tests/kafka.py); raw records produced and output read."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition
from fastapi.testclient import TestClient
from sqlalchemy import Connection, select

from consentry.app import create_app
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage.schema import stream_marks
from consentry.stream.replica import Replica
from tests.conftest import ADMIN_KEY, MASTER_KEY, fresh_pg_database
from tests.delivery.test_delivery import add, system
from tests.ingest.test_pipeline import with_page_views


@pytest.fixture
def stream_settings(pg_url: str, tmp_path: Path, kafka_bootstrap: str) -> Settings:
    """A fresh PostgreSQL database, the broker, small batches."""
    return Settings(
        data_dir=tmp_path / "data",
        db=fresh_pg_database(pg_url),
        admin_key=ADMIN_KEY,
        master_key=MASTER_KEY,
        kafka_brokers=kafka_bootstrap,
        stream_batch=100,
        stream_batch_ms=20,
        delivery_worker=False,
        dsr_poll_seconds=0,
        retention_sweep_seconds=0,
        # The consumers' endpoints name the broker on loopback in plaintext.
        allow_private_endpoints=True,
    )


# Each consented topic the tests read has a registered consumer (API.md: only registered
# `kind: kafka` systems consume them; without one nothing is produced there).
CONSUMED = ("analytics", "personalization")


def consumer(purpose: str, bootstrap: str, **extra: Any) -> dict[str, Any]:
    """A `kind: kafka` system consuming the consented topic of `purpose`."""
    endpoint = f"kafka://{bootstrap}/consentry.consented.{purpose}"
    return (
        system(endpoint, kind="kafka", name=f"Warehouse reading {purpose}", purposes=[purpose])
        | extra
    )


def marks_of(conn: Connection, subject_id: str) -> dict[str, datetime]:
    """topic -> when the subject's latest record went to it (its stream mark)."""
    stmt = select(stream_marks.c.topic, stream_marks.c.last_at).where(
        stream_marks.c.subject_id == subject_id
    )
    return {row.topic: row.last_at for row in conn.execute(stmt)}


@pytest.fixture
def gateway(stream_settings: Settings, kafka_bootstrap: str) -> Iterator[TestClient]:
    """The HTTP gateway, with the notice, the page_view schema and a consumer of each topic
    of CONSUMED (`reader-<purpose>`)."""
    with TestClient(create_app(stream_settings)) as client:
        with_page_views(client)
        for purpose in CONSUMED:
            add(client, f"reader-{purpose}", consumer(purpose, kafka_bootstrap))
        yield client


@pytest.fixture
def prefix() -> str:
    """This test's event ids start with it (the broker's topics outlive a test)."""
    return f"t{uuid.uuid4().hex[:10]}-"


class Running:
    """A replica in a thread of this process, with a runtime of its own (another process's
    cache), stopped and closed at the end of the test."""

    def __init__(self, settings: Settings) -> None:
        self.runtime = Runtime(settings)
        self.stop = threading.Event()
        self.replica = Replica(self.runtime, self.stop)
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self.replica.run, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(30)
        self.replica.close()
        self.runtime.close()


@pytest.fixture
def replicas(stream_settings: Settings) -> Iterator[list[Running]]:
    """Append `Running(settings)` to it; each is closed when the test ends."""
    made: list[Running] = []
    yield made
    for running in made:
        running.close()


def produce(bootstrap: str, values: list[bytes], *, key: bytes = b"any") -> None:
    """Raw records on consentry.raw, all with `key`."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for value in values:
        producer.produce("consentry.raw", value=value, key=key)
    assert producer.flush(30) == 0


def raw(event_id: str, name: str, **properties: Any) -> bytes:
    return json.dumps(
        {
            "event_id": event_id,
            "event_type": "page_view",
            "occurred_at": "2026-11-20T10:00:00Z",
            "subject": {"identities": [{"type": "email", "value": f"{name}@example.com"}]},
            "properties": {"url": "/home"} | properties,
        }
    ).encode()


def read(
    bootstrap: str, topic: str, *, committed: bool = True, quiet: float = 1.5
) -> list[Message]:
    """Every record of the topic's partition 0 (read_committed unless told), until nothing
    more comes for `quiet` seconds."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"tests-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed" if committed else "read_uncommitted",
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    found: list[Message] = []
    deadline = time.monotonic() + 60
    last = time.monotonic()
    try:
        while time.monotonic() < deadline and time.monotonic() - last < quiet:
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            found.append(message)
            last = time.monotonic()
    finally:
        consumer.close()
    return found


def values(messages: list[Message], prefix: str) -> list[dict[str, Any]]:
    """The JSON values of the records whose event_id starts with `prefix`, in offset order."""
    out = []
    for message in messages:
        value = json.loads(message.value() or b"null")
        if value and str(value.get("event_id") or "").startswith(prefix):
            out.append(value)
    return out
