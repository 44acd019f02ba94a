"""A real Apache Kafka broker (single-node KRaft, scripts/kafka) on loopback for the tests that
ask for one (a plugin of tests/conftest.py): `kafka_broker` and `kafka_bootstrap`, one broker
for the session of each test process (started at its first use, stopped when the session
ends); `broker`, one of a test's own; `records`, what a topic holds."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "kafka"
# What reading a topic may meet: its end, or no topic (nothing was ever sent to it).
_EXPECTED = {KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART}


class Broker:
    """`scripts/kafka up DIR` and `down DIR` for one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.bootstrap = ""

    def up(self) -> str:
        """Start it (or find it running); its `host:port` once it answers clients."""
        done = subprocess.run(
            [str(SCRIPT), "up", str(self.folder)],
            check=False,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            pytest.fail(f"scripts/kafka up failed ({done.returncode}):\n{done.stderr[-3000:]}")
        last = done.stdout.strip().splitlines()[-1]
        self.bootstrap = last.removeprefix("bootstrap=")
        return self.bootstrap

    def down(self) -> None:
        subprocess.run([str(SCRIPT), "down", str(self.folder)], check=True, timeout=60)


@contextlib.contextmanager
def broker(folder: Path) -> Iterator[Broker]:
    """A broker of its own, with its data in `folder`, stopped when the block ends."""
    running = Broker(folder)
    try:
        # Inside the block: an `up` that fails or times out may have left a broker running.
        running.up()
        yield running
    finally:
        running.down()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """This test process's broker (under xdist, one per worker: each worker is its own
    session), started when a test first asks for it. A test that stops it starts it again
    before it ends (`up()`: same ports, same data)."""
    with broker(tmp_path_factory.mktemp("kafka")) as running:
        yield running


@pytest.fixture
def kafka_bootstrap(kafka_broker: Broker) -> str:
    """`127.0.0.1:PORT` of this test process's broker."""
    return kafka_broker.bootstrap


def records(
    bootstrap: str, topic: str, *, committed: bool = True, quiet: float = 2
) -> list[Message]:
    """Every record of the topic's first partition from its start (none when the topic does
    not exist), read until nothing more comes for `quiet` seconds; the test fails on any
    error of the consumer but the end of the partition and an unknown topic."""
    errors: list[KafkaError] = []
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "tests-reader",
            "enable.auto.commit": False,
            "isolation.level": "read_committed" if committed else "read_uncommitted",
            "error_cb": errors.append,
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    found: list[Message] = []
    deadline = time.monotonic() + 30
    last = time.monotonic()
    try:
        while time.monotonic() < deadline and time.monotonic() - last < quiet:
            message = consumer.poll(0.2)
            error = None if message is None else message.error()
            if error is not None:
                errors.append(error)
            elif message is not None:
                found.append(message)
                last = time.monotonic()
            failed = [e for e in errors if e.code() not in _EXPECTED]
            if failed:
                pytest.fail(f"reading {topic} from {bootstrap}: {failed}")
    finally:
        consumer.close()
    return found
