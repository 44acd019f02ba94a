"""Exactly once (API.md, Stream mode): a replica killed with SIGKILL mid-batch, and another
started under its name; every raw record ends up exactly once in a consented topic or the
refused topic (read_committed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from fastapi.testclient import TestClient

from consentry.settings import Settings
from consentry.stream.topics import Topics
from tests.ingest.test_pipeline import grant, who
from tests.stream.conftest import raw

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parent.parent.parent
TOPICS = ("consentry.consented.analytics", "consentry.refused")
COUNT = 3000


def _replica(settings: Settings, name: str) -> subprocess.Popen[bytes]:
    """`consentry stream` in a process of its own, named `name`."""
    env = os.environ | {
        "PYTHONPATH": str(ROOT / "src"),
        "CONSENTRY_DATA_DIR": str(settings.data_dir),
        "CONSENTRY_DB": settings.db,
        "CONSENTRY_MASTER_KEY": settings.master_key,
        "CONSENTRY_ADMIN_KEY": settings.admin_key,
        "CONSENTRY_KAFKA_BROKERS": settings.kafka_brokers,
        "CONSENTRY_STREAM_ID": name,
        "CONSENTRY_STREAM_BATCH": "50",
        "CONSENTRY_DSR_POLL_SECONDS": "0",
        "CONSENTRY_RETENTION_SWEEP_SECONDS": "0",
    }
    return subprocess.Popen(
        [sys.executable, "-c", "from consentry.cli import main; main()", "stream"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class Output:
    """The committed records of the consented and refused topics from their ends when made:
    how often each raw record (by its event id; "" for those refused without one) is there."""

    def __init__(self, bootstrap: str, committed: bool = True) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "tests-output",
                "enable.auto.commit": False,
                "isolation.level": "read_committed" if committed else "read_uncommitted",
            }
        )
        start = []
        for topic in TOPICS:
            tp = TopicPartition(topic, 0)
            _low, high = self.consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            start.append(TopicPartition(topic, 0, high))
        self.consumer.assign(start)
        self.seen: Counter[str] = Counter()

    def poll(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            message = self.consumer.poll(0.05)
            if message is None or message.error() is not None:
                continue
            # A record that is not JSON is refused with no event id (and no key): counted
            # under "".
            self.seen[str(json.loads(message.value() or b"{}")["event_id"] or "")] += 1

    def close(self) -> None:
        self.consumer.close()


def _raw(prefix: str, n: int) -> bytes:
    if n % 97 == 0:
        return b"{not json"
    if n % 10 == 0:
        return raw(f"{prefix}{n}", "cy")  # no consent
    return raw(f"{prefix}{n}", "ana" if n % 2 else "ben")


def test_a_replica_killed_mid_batch_loses_and_repeats_nothing(
    gateway: TestClient, stream_settings: Settings, kafka_bootstrap: str, prefix: str
) -> None:
    grant(gateway, who("ana"), "analytics")
    grant(gateway, who("ben"), "analytics")
    name = f"kill-{uuid.uuid4().hex[:6]}"
    Topics({"bootstrap.servers": kafka_bootstrap}).ensure({topic: {} for topic in TOPICS})
    committed = Output(kafka_bootstrap)
    progress = Output(kafka_bootstrap, committed=False)
    first = _replica(stream_settings, name)
    second = None
    try:
        producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 5})
        for n in range(COUNT):
            key = f"{prefix}{n}".encode()
            producer.produce("consentry.raw", value=_raw(prefix, n), key=key)
        assert producer.flush(30) == 0
        # Killed once it is well under way (records produced, some not yet committed).
        deadline = time.monotonic() + 120
        while sum(progress.seen.values()) < COUNT // 4 and time.monotonic() < deadline:
            progress.poll(0.05)
        assert first.poll() is None, "the replica ended before it was killed"
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        assert sum(progress.seen.values()) < COUNT
        second = _replica(stream_settings, name)
        deadline = time.monotonic() + 180
        while sum(committed.seen.values()) < COUNT and time.monotonic() < deadline:
            committed.poll(0.5)
        committed.poll(2.0)  # nothing more comes
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
        committed.close()
        progress.close()
    malformed = {f"{prefix}{n}" for n in range(COUNT) if n % 97 == 0}
    expected = {f"{prefix}{n}" for n in range(COUNT)} - malformed | {""}
    assert set(committed.seen) == expected
    assert committed.seen[""] == len(malformed)
    twice = {k: v for k, v in committed.seen.items() if v != 1 and k}
    assert twice == {}
