"""scripts/kafka and the broker it starts (tests/kafka.py): `up` prints the bootstrap line once
the broker answers and `down` stops it; the broker is a real Kafka (transactions hidden from a
read_committed consumer once aborted, compacted topics compacted)."""

from __future__ import annotations

import importlib.machinery
import os
import re
import socket
import subprocess
import time
import types
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tests.kafka import SCRIPT, Broker, broker, records

pytestmark = pytest.mark.kafka


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _values(bootstrap: str, topic: str, *, committed: bool = True, quiet: float = 2) -> list[bytes]:
    return [m.value() or b"" for m in records(bootstrap, topic, committed=committed, quiet=quiet)]


def test_up_prints_the_bootstrap_line_and_down_stops_the_broker(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    started = subprocess.run(
        [str(SCRIPT), "up"], env=env, capture_output=True, text=True, timeout=180, check=True
    )
    last = started.stdout.strip().splitlines()[-1]
    found = re.fullmatch(r"bootstrap=127\.0\.0\.1:(\d+)", last)
    assert found, started.stdout
    port = int(found.group(1))
    (folder,) = tmp_path.glob("consentry-kafka-*/")
    pid = int((folder / "broker.pid").read_text())
    try:
        assert _answers(port)
        config = (folder / "server.properties").read_text()
        listeners = re.findall(r"//([^:,\s]+):\d+", config)
        assert listeners
        assert set(listeners) == {"127.0.0.1"}
        # A second `up` finds it running and says the same.
        again = subprocess.run(
            [str(SCRIPT), "up", str(folder)], capture_output=True, text=True, timeout=60, check=True
        )
        assert again.stdout.strip().splitlines()[-1] == last
    finally:
        subprocess.run([str(SCRIPT), "down"], env=env, check=True, timeout=60)
    assert not _answers(port)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not folder.exists()


def test_aborted_records_are_invisible_to_read_committed(kafka_bootstrap: str) -> None:
    topic = f"txn-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": f"test-{topic}"})
    producer.init_transactions(60)
    producer.begin_transaction()
    producer.produce(topic, key=b"a", value=b"aborted")
    producer.flush(30)
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, key=b"a", value=b"committed")
    producer.commit_transaction(30)

    assert _values(kafka_bootstrap, topic) == [b"committed"]
    # The aborted record is in the log all the same: only the isolation level hides it.
    assert _values(kafka_bootstrap, topic, committed=False) == [b"aborted", b"committed"]


def test_a_compacted_topic_keeps_the_last_value_of_each_key(kafka_bootstrap: str) -> None:
    topic = f"compact-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    created = admin.create_topics(
        [
            NewTopic(
                topic,
                num_partitions=1,
                replication_factor=1,
                config={
                    "cleanup.policy": "compact",
                    "segment.ms": "100",
                    "min.cleanable.dirty.ratio": "0.001",
                    "min.compaction.lag.ms": "0",
                    "delete.retention.ms": "100",
                },
            )
        ]
    )
    created[topic].result(30)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    for key, value in [("ana", "1"), ("ben", "1"), ("ana", "2"), ("ben", "2"), ("ana", "3")]:
        producer.produce(topic, key=key.encode(), value=value.encode())
        producer.flush(30)
    before = _values(kafka_bootstrap, topic)
    assert before == [b"1", b"1", b"2", b"2", b"3"]

    # The active segment is never compacted: later records roll it (segment.ms is 100 ms)
    # until the cleaner has compacted the first five.
    deadline = time.monotonic() + 90
    after: list[bytes] = before
    while time.monotonic() < deadline:
        producer.produce(topic, key=b"filler", value=b"x")
        producer.flush(30)
        time.sleep(0.5)
        after = _values(kafka_bootstrap, topic, quiet=0.5)
        if [v for v in after if v != b"x"] == [b"2", b"3"]:
            break
    assert [v for v in after if v != b"x"] == [b"2", b"3"]


def test_a_broker_that_fails_to_start_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`up` timing out may leave the Java process running: `broker()` stops it all the same."""
    stopped: list[Path] = []

    def times_out(self: Broker) -> str:
        raise subprocess.TimeoutExpired("scripts/kafka up", 180)

    monkeypatch.setattr(Broker, "up", times_out)
    monkeypatch.setattr(Broker, "down", lambda self: stopped.append(self.folder))
    with pytest.raises(subprocess.TimeoutExpired), broker(tmp_path):
        pass
    assert stopped == [tmp_path]


@pytest.mark.parametrize("config", ["OTHER", "THIS"])
def test_down_stops_only_this_folders_broker(tmp_path: Path, config: str) -> None:
    """A pid file naming a process that is not this folder's broker (a broker gone, its id
    given to another process) stops nothing."""
    folder = tmp_path / "broker"
    folder.mkdir()
    # A stand-in with a broker's class name on its command line, of another folder's
    # server.properties, or of this one's but not a kafka.Kafka.
    args = (
        ["kafka.Kafka", str(tmp_path / "other" / "server.properties")]
        if config == "OTHER"
        else ["kafka.Other", str(folder / "server.properties")]
    )
    other = subprocess.Popen(["python3", "-c", "import time; time.sleep(60)", *args])
    try:
        (folder / "broker.pid").write_text(f"{other.pid}\n")
        subprocess.run([str(SCRIPT), "down", str(folder)], check=True, timeout=60)
        assert other.poll() is None
        assert not (folder / "broker.pid").exists()
    finally:
        other.kill()
        other.wait()


def test_records_fails_on_a_consumer_error() -> None:
    """Reading from a port where no broker listens is an error, not an empty topic."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(pytest.fail.Exception, match=r"_TRANSPORT|_ALL_BROKERS_DOWN"):
        records(f"127.0.0.1:{port}", "nothing", quiet=1)


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """StorageTool reads `-t -...` as an option and refuses to format: an id that would start
    with "-" (bytes from 0xf8) is drawn again."""
    loader = importlib.machinery.SourceFileLoader("kafka_script", str(SCRIPT))
    script = types.ModuleType(loader.name)
    script.__file__ = str(SCRIPT)
    loader.exec_module(script)
    draws = iter([b"\xf8" * 16, b"\x01" * 16])
    monkeypatch.setattr(script.os, "urandom", lambda n: next(draws))
    cluster = script._cluster_id()
    assert cluster == "AQEBAQEBAQEBAQEBAQEBAQ"
