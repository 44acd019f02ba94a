"""The opt-out rule across the stream (API.md, Stream mode; DESIGN.md, the consistency rule):
a subject withdraws on the gateway while stream replicas consume its events; once the
withdrawal has returned, no record for that subject and purpose is committed to a consented
topic (read by a read_committed consumer).

Committed when: each replica's Kafka commits are timed as they return (the broker has decided
the transaction then; its records become visible to readers a moment later, once its markers
are written, so the topic's last stable offset cannot time a commit exactly). A record past the
topic's high watermark when the withdrawal returned was surely produced, so committed, later."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence

import pytest
from confluent_kafka import Consumer, IsolationLevel, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, OffsetSpec
from fastapi.testclient import TestClient

from consentry.settings import Settings
from consentry.stream.records import Out
from consentry.stream.replica import Replica
from tests.conftest import auth
from tests.ingest.test_pipeline import grant, who
from tests.stream.conftest import Running, raw

pytestmark = pytest.mark.kafka

TOPIC = "consentry.consented.analytics"


class Tail:
    """The consented topic's committed records from the end it had when made."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "tests-tail",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        tp = TopicPartition(TOPIC, 0)
        _low, high = self.consumer.get_watermark_offsets(tp, timeout=10, cached=False)
        self.consumer.assign([TopicPartition(TOPIC, 0, high)])
        self.found: list[tuple[int, str]] = []

    def poll(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            message = self.consumer.poll(0.05)
            if message is not None and message.error() is None:
                self.found.append(_entry(message))

    def drain(self, quiet: float = 3.0) -> None:
        """Until nothing more comes for `quiet` seconds."""
        last = time.monotonic()
        while time.monotonic() - last < quiet:
            message = self.consumer.poll(0.2)
            if message is not None and message.error() is None:
                self.found.append(_entry(message))
                last = time.monotonic()

    def of(self, prefix: str) -> list[int]:
        return [offset for offset, event_id in self.found if event_id.startswith(prefix)]


def _entry(message: Message) -> tuple[int, str]:
    return int(message.offset() or 0), str(json.loads(message.value() or b"{}")["event_id"])


def _high_watermark(admin: AdminClient) -> int:
    tp = TopicPartition(TOPIC, 0)
    found = admin.list_offsets(
        {tp: OffsetSpec.latest()}, isolation_level=IsolationLevel.READ_UNCOMMITTED
    )
    return int(found[tp].result(30).offset)


def _time_commits(replica: Replica, commits: list[tuple[float, str]]) -> None:
    """Each consented record of the replica's batches, with the moment its Kafka transaction's
    commit returned (monotonic)."""
    commit = replica.commit

    def timed(out: Sequence[Out], batch: Sequence[Message]) -> None:
        commit(out, batch)
        at = time.monotonic()
        commits.extend((at, json.loads(r.value)["event_id"]) for r in out if r.topic == TOPIC)

    replica.commit = timed  # type: ignore[method-assign]


def _feed(bootstrap: str, prefix: str, names: list[str], stop: threading.Event) -> None:
    """Events of every subject of `names`, each keyed at random (so that every replica gets
    some of each subject's events), until `stop` is set."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2})
    n = 0
    while not stop.is_set():
        for name in names:
            producer.produce(
                "consentry.raw", value=raw(f"{prefix}{name}-{n}", name), key=os.urandom(8)
            )
        producer.poll(0)
        n += 1
        time.sleep(0.002)
    producer.flush(30)


def _two_partitions(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    partitions = admin.list_topics("consentry.raw", timeout=30).topics["consentry.raw"].partitions
    if len(partitions) < 2:
        admin.create_partitions([NewPartitions("consentry.raw", 2)])["consentry.raw"].result(30)


@pytest.mark.parametrize("count", [1, 2])
def test_no_consented_record_after_a_withdrawal_returns(
    gateway: TestClient,
    stream_settings: Settings,
    replicas: list[Running],
    kafka_bootstrap: str,
    prefix: str,
    count: int,
) -> None:
    names = [f"wanda{n}" for n in range(3)]
    for name in [*names, "steady"]:
        grant(gateway, who(name), "analytics")
    _two_partitions(kafka_bootstrap)
    for _ in range(count):
        replicas.append(Running(stream_settings))
    tail = Tail(kafka_bootstrap)
    commits: list[tuple[float, str]] = []
    for running in replicas:
        _time_commits(running.replica, commits)
        running.start()
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    stop = threading.Event()
    feeder = threading.Thread(
        target=_feed, args=(kafka_bootstrap, prefix, [*names, "steady"], stop), daemon=True
    )
    feeder.start()
    # Per subject: when its withdrawal returned, and the topic's high watermark then.
    returned: dict[str, tuple[float, int]] = {}
    try:
        deadline = time.monotonic() + 60
        while any(r.replica.settled == 0 for r in replicas) and time.monotonic() < deadline:
            tail.poll(0.1)
        for name in names:
            # Its events flow for a while, then it withdraws mid-stream.
            deadline = time.monotonic() + 60
            while len(tail.of(f"{prefix}{name}-")) < 20 and time.monotonic() < deadline:
                tail.poll(0.1)
            resp = gateway.post(
                "/v1/consents/withdraw",
                headers=auth(),
                json={"subject": who(name), "purposes": ["analytics"], "source": "web"},
            )
            assert resp.status_code == 200, resp.text
            returned[name] = (time.monotonic(), _high_watermark(admin))
        tail.poll(1.0)
    finally:
        stop.set()
        feeder.join(30)
    tail.drain()
    tail.consumer.close()

    for name in names:
        at, high = returned[name]
        offsets = tail.of(f"{prefix}{name}-")
        assert len(offsets) >= 20, name
        past = [o for o in offsets if o >= high]
        assert past == [], f"{name}: produced after the withdrawal returned: {past}"
        late = [e for t, e in commits if t > at and e.startswith(f"{prefix}{name}-")]
        assert late == [], f"{name}: committed after the withdrawal returned: {late}"
        # Every record the read_committed reader saw was timed (none escaped the count).
        assert len(offsets) == sum(1 for _, e in commits if e.startswith(f"{prefix}{name}-"))
    # The stream went on for everybody else meanwhile, on every replica.
    assert len(tail.of(f"{prefix}steady-")) > 20
    assert all(r.replica.settled > 0 for r in replicas)
