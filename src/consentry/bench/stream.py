"""The benchmark's stream section: one stream replica (`consentry stream`'s engine) on a real
Apache Kafka broker that the section starts on loopback (scripts/kafka), over the bench's store.
Its events a second against a plain transactional copy of the same records (consume, produce,
commit the offsets in one Kafka transaction, no privacy work), and the delay from a raw
record's produce to the commit of the Kafka transaction that settles it."""

from __future__ import annotations

import dataclasses
import gc
import logging
import multiprocessing
import random
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
from confluent_kafka import Consumer, Message, Producer

from consentry.bench.data import CONSENT_PURPOSES, World, event
from consentry.governance.datamap import parse
from consentry.runtime import Runtime
from consentry.stream import records, topics
from consentry.stream.replica import Replica, transactional_config

# The repository's scripts/kafka (a checkout: the bench runs from one, as `make bench` does).
SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "kafka"
COPY_TOPIC = "bench.copy"
# The replica's batch: CONSENTRY_STREAM_BATCH's default, and its wait.
BATCH = 500
BATCH_MS = 50
# Records settled before the clock starts (the group joined, the caches warm).
WARMUP = 2_000
# The delay is measured at this share of the replica's own throughput.
LOAD_SHARE = 0.5
_STEP_SECONDS = 120.0
# The bench's own clients: librdkafka's errors only (a new broker's "coordinator load in
# progress" while its internal topics are made is retried, not a finding).
log = logging.getLogger(__name__)
log.setLevel(logging.ERROR)


def unavailable() -> str | None:
    """Why the section cannot run here (no Java, no jars, no scripts/kafka), or None."""
    if not SCRIPT.is_file():
        return f"{SCRIPT} not found: run the bench from a checkout"
    if shutil.which("java") is None:
        return "java not found: the Kafka broker needs Java 17 or later"
    found = subprocess.run(
        [str(SCRIPT), "home"], check=False, capture_output=True, text=True, timeout=30
    )
    home = Path(found.stdout.strip())
    if found.returncode != 0 or not (home / ".fetched").is_file():
        return "the Kafka jars are not fetched: run `make kafka`"
    return None


@contextmanager
def broker() -> Iterator[str]:
    """A broker of its own in a temporary folder on loopback; its bootstrap address."""
    folder = Path(tempfile.mkdtemp(prefix="consentry-bench-kafka-"))
    try:
        done = subprocess.run(
            [str(SCRIPT), "up", str(folder)],
            check=False,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            raise RuntimeError(f"scripts/kafka up failed: {done.stderr.strip()[-500:]}")
        yield done.stdout.strip().splitlines()[-1].removeprefix("bootstrap=")
    finally:
        subprocess.run([str(SCRIPT), "down", str(folder)], check=False, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def _values(world: World, count: int, prefix: str) -> list[bytes]:
    """`count` raw records of the bench's event mix, over its customers (1 in 5 withdrew
    analytics), each event with an id of its own."""
    # Drawn at random, as bench/data.batches does: a stride would tie a subject's withdrawal
    # to the kind of event (every fifth subject, every fifth event).
    rng = random.Random(7)
    return [
        msgspec.json.encode(event(n, rng.choice(world.subject_ids), prefix)) for n in range(count)
    ]


def _produce(bootstrap: str, values: Sequence[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5}, logger=log)
    for n, value in enumerate(values):
        while True:
            try:
                producer.produce(topics.RAW, value=value, key=str(n % 997).encode())
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(60):
        raise RuntimeError("raw records were left unsent")


def _paced(bootstrap: str, values: list[bytes], per_second: float) -> None:
    """Produce `values` at `per_second`, in slices every 10 ms (a process of its own, so that
    the replica's interpreter does not pace it)."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5}, logger=log)
    started = time.monotonic()
    sent = 0
    while sent < len(values):
        due = min(len(values), int((time.monotonic() - started) * per_second) + 1)
        for value in values[sent:due]:
            producer.produce(topics.RAW, value=value, key=str(sent % 997).encode())
            sent += 1
        producer.poll(0)
        time.sleep(0.01)
    producer.flush(60)


class _Timed(Replica):
    """A replica that notes, at each Kafka commit, how long ago each settled raw record was
    produced (its CreateTime, set by the producer's client)."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.delays_ms: list[float] = []
        # Each batch's Kafka transaction (produce, offsets, commit), which runs while the
        # database transaction holds the batch's subjects.
        self.kafka_ms: list[float] = []

    def commit(self, out: Sequence[records.Out], batch: Sequence[Message]) -> None:
        started = time.perf_counter()
        super().commit(out, batch)
        self.kafka_ms.append((time.perf_counter() - started) * 1000)
        now_ms = time.time() * 1000
        self.delays_ms.extend(now_ms - m.timestamp()[1] for m in batch)


def _timed_run(step: Callable[[], int], total: int) -> tuple[int, float]:
    """Step until `total` records are settled; the records settled after the first WARMUP and
    the seconds they took."""
    done = 0
    deadline = time.monotonic() + _STEP_SECONDS
    started = 0.0
    counted_from = 0
    while done < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {total} records were settled")
        done += step()
        if not started and done >= WARMUP:
            started, counted_from = time.perf_counter(), done
    return done - counted_from, time.perf_counter() - started


class _Copy:
    """The baseline: consume a batch, produce each record unchanged to COPY_TOPIC and commit
    the offsets, in one Kafka transaction, with the replica's consumer and producer settings."""

    def __init__(self, bootstrap: str) -> None:
        self.producer = Producer(
            transactional_config(
                {"bootstrap.servers": bootstrap}, f"bench-copy-{uuid.uuid4().hex}"
            ),
            logger=log,
        )
        self.producer.init_transactions(30)
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "bench-copy",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
            },
            logger=log,
        )
        self.consumer.subscribe([topics.RAW])

    def step(self) -> int:
        batch = [
            m
            for m in self.consumer.consume(num_messages=BATCH, timeout=BATCH_MS / 1000)
            if m.error() is None
        ]
        if not batch:
            return 0
        self.producer.begin_transaction()
        for message in batch:
            self.producer.produce(COPY_TOPIC, value=message.value(), key=message.key())
        self.producer.send_offsets_to_transaction(
            self.consumer.position(self.consumer.assignment()),
            self.consumer.consumer_group_metadata(),
            30,
        )
        self.producer.commit_transaction(30)
        return len(batch)

    def close(self) -> None:
        self.consumer.close()
        self.producer.flush(5)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _copy_rate(bootstrap: str, total: int) -> float:
    copy = _Copy(bootstrap)
    try:
        copied, seconds = _timed_run(copy.step, total)
    finally:
        copy.close()
    return copied / seconds


def _replica_figures(
    world: World, bootstrap: str, total: int, seconds: float
) -> tuple[float, list[float], list[float], int]:
    """The replica's events a second over the `total` records waiting and its batches' Kafka
    transactions (milliseconds each); then the delays of records paced at LOAD_SHARE of that
    rate, and how many of them it settled."""
    settings = dataclasses.replace(
        world.settings, kafka_brokers=bootstrap, stream_batch=BATCH, stream_batch_ms=BATCH_MS
    )
    runtime = Runtime(settings)
    try:
        _consumers(runtime, bootstrap)
        replica = _Timed(runtime)
        try:
            settled, replica_seconds = _timed_run(replica.step, total)
            rate = settled / replica_seconds
            kafka_ms = list(replica.kafka_ms)
            paced = _values(world, int(rate * LOAD_SHARE * seconds), f"sl-{uuid.uuid4().hex[:6]}")
            replica.delays_ms.clear()
            context = multiprocessing.get_context("spawn")
            producer = context.Process(
                target=_paced, args=(bootstrap, paced, rate * LOAD_SHARE), daemon=True
            )
            producer.start()
            done = 0
            deadline = time.monotonic() + seconds + _STEP_SECONDS
            while done < len(paced) and time.monotonic() < deadline:
                done += replica.step()
            producer.join(30)
            if producer.exitcode != 0 or done < len(paced):
                raise RuntimeError(
                    f"{done} of {len(paced)} paced records settled "
                    f"(their producer's exit code: {producer.exitcode})"
                )
            return rate, kafka_ms, replica.delays_ms, done
        finally:
            replica.close()
    finally:
        with runtime.store.write() as conn:
            for purpose in CONSENT_PURPOSES:
                runtime.datamap.delete(conn, f"bench_reader_{purpose}", actor="bench")
        runtime.close()


def _consumers(runtime: Runtime, bootstrap: str) -> None:
    """A registered consumer of each purpose's consented topic (without one nothing is
    produced there), taken away again when the section ends."""
    with runtime.store.write() as conn:
        known = runtime.purposes.all(conn)
        for purpose in CONSENT_PURPOSES:
            body = {
                "name": f"Bench reader of {purpose}",
                "kind": "kafka",
                "endpoint": f"kafka://{bootstrap}/{topics.consented(purpose)}",
                "purposes": [purpose],
                "data_categories": ["system.operations", "user"],
                "region": "EU",
                "transfer_mechanism": "none",
                "dpa_signed": True,
            }
            system = parse(f"bench_reader_{purpose}", body, known)
            runtime.datamap.put(conn, system, actor="bench")


def stream(world: World, events: int, seconds: float) -> dict[str, Any]:
    """Throughput: WARMUP + `events` raw records produced first, then settled by the
    transactional copy and by one replica (batches of BATCH), each timed after the warm-up.
    Delay: records produced at LOAD_SHARE of the replica's throughput for `seconds` while it
    runs; for each, from its produce to the commit of the Kafka transaction that settles it."""
    reason = unavailable()
    if reason is not None:
        return {"skipped": reason}
    with broker() as bootstrap:
        total = WARMUP + events
        _produce(bootstrap, _values(world, total, f"st-{uuid.uuid4().hex[:6]}"))
        baseline = _copy_rate(bootstrap, total)
        rate, kafka_ms, delays, settled = _replica_figures(world, bootstrap, total, seconds)
        # Every client gone before its broker (else librdkafka reports the broker's absence).
        gc.collect()
    return {
        "baseline_events_per_s": round(baseline),
        "events_per_s": round(rate),
        "overhead_ratio": round(baseline / rate, 2),
        "batch": BATCH,
        "kafka_commit_p50_ms": round(_percentile(kafka_ms, 0.50), 1),
        "e2e_events_per_s": round(rate * LOAD_SHARE),
        "e2e_p50_ms": round(_percentile(delays, 0.50), 1),
        "e2e_p99_ms": round(_percentile(delays, 0.99), 1),
        "e2e_settled": settled,
    }
