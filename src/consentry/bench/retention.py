"""The benchmark's retention section: a sweep over a store of which half the events are past
their retention, while ingest goes on, beside a plain one-statement delete of the same rows."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from datetime import datetime, timedelta
from multiprocessing.connection import Connection as Pipe
from multiprocessing.synchronize import Event as StopEvent
from typing import Any

from consentry import clock
from consentry.bench.data import World, batches
from consentry.ingest.minimise import purpose_mask, subject_key
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage import ingest as ingest_sql

STORED_FOR = ["analytics", "personalization"]
_CHUNK = 50_000
# The live traffic beside the sweep: a batch of 100 events every 20 ms (5,000 events/s).
INGEST_BATCH = 100
INGEST_PAUSE = 0.02
# Batches the ingest process sends before the sweep starts (its first ones fill caches).
_WARM_BATCHES = 10
# How far before its place in time an expired event is dated: past every retention.
_PAST = timedelta(days=4000)
# Stands for an event's sealed values (the sweep deletes them unopened): the size is what
# matters to the store.
_SEALED = bytes(range(96))


def _rows(world: World, start: int, end: int, count: int, now: datetime, bits: int) -> list[Any]:
    """Events `start`..`end` of `count`, stored as a store fills: in time order, one a
    minute, the older half dated past every retention, the newer half a day old or less."""
    ids = world.subject_ids
    rows = []
    for n in range(start, end):
        subject_id = ids[(n * 7919) % len(ids)]
        back = timedelta(minutes=count - n) + (_PAST if n < count // 2 else timedelta(0))
        at = clock.rfc3339(now - back)
        rows.append(
            (
                f"ret-{n}",
                "page_view",
                1,
                at,
                at,
                subject_id,
                '["analytics","personalization"]',
                f'{{"url":"/products/{n % 997}","offer":"spring"}}',
                _SEALED,
                '{"offer":["personalization"]}',
                bits,
                subject_key(subject_id),
            )
        )
    return rows


def _store(world: World, count: int, now: datetime) -> None:
    rt = world.runtime
    with rt.store.read() as conn:
        purposes = rt.purposes.all(conn)
    bits = purpose_mask(purposes[p] for p in STORED_FOR)
    for start in range(0, count, _CHUNK):
        rows = _rows(world, start, min(count, start + _CHUNK), count, now, bits)
        with rt.store.write() as conn:
            ingest_sql.insert_events(conn, rows)


def _baseline(world: World, count: int, now: datetime) -> tuple[float, float]:
    """The same rows in a plain SQLite table (WAL, an index on the time), deleted by one
    statement: its rate, and how long that one transaction holds the writer."""
    raw = sqlite3.connect(world.settings.data_dir / "retention-baseline.db", isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=NORMAL")
    raw.execute(
        "CREATE TABLE raw (seq INTEGER PRIMARY KEY, event_id TEXT UNIQUE, occurred_at TEXT, "
        "subject TEXT, properties TEXT, sealed BLOB)"
    )
    raw.execute("CREATE INDEX raw_at ON raw (occurred_at)")
    for start in range(0, count, _CHUNK):
        rows = _rows(world, start, min(count, start + _CHUNK), count, now, 0)
        raw.execute("BEGIN")
        raw.executemany(
            "INSERT INTO raw (event_id, occurred_at, subject, properties, sealed) "
            "VALUES (?, ?, ?, ?, ?)",
            [(r[0], r[3], r[5], r[7], r[8]) for r in rows],
        )
        raw.execute("COMMIT")
    started = time.perf_counter()
    raw.execute("BEGIN IMMEDIATE")
    raw.execute("DELETE FROM raw WHERE occurred_at < ?", (clock.rfc3339(now - _PAST / 2),))
    raw.execute("COMMIT")
    held = time.perf_counter() - started
    raw.close()
    return count / held, held * 1000


def _ingest(
    settings: Settings, bodies: list[bytes], ready: StopEvent, stop: StopEvent, out: Pipe
) -> None:
    """The live traffic, in a process of its own as a server worker is (the sweep runs in
    the CLI's or a worker's process): paced batches until `stop`, `ready` once warm (its
    caches filled); sends back the time in ms of each batch after that."""
    rt = Runtime(settings)
    timings: list[float] = []
    try:
        n = 0
        while not stop.wait(INGEST_PAUSE):
            body = bodies[n % len(bodies)].replace(b'"ret-ingest-', f'"ri{n}-'.encode())
            started = time.perf_counter()
            rt.pipeline.ingest(body, actor="bench")
            if ready.is_set():
                timings.append((time.perf_counter() - started) * 1000)
            n += 1
            if n == _WARM_BATCHES:
                ready.set()
    finally:
        rt.close()
        out.send(timings)
        out.close()


def retention(world: World, count: int) -> dict[str, Any]:
    """`count` stored events, the older half past every retention, swept while another
    process ingests a batch of 100 every 20 ms: the sweep's rate over the whole store and
    its longest write transaction, beside a plain delete's; the sweep's rate per second of
    its own thread's CPU too, since the machine's other work shows in the wall-clock rate."""
    rt = world.runtime
    now = clock.now()
    baseline_rate, baseline_held = _baseline(world, count, now)
    _store(world, count, now)
    # The sweep starts from a copied WAL, as after any quiet moment.
    rt.store.checkpoint()
    bodies = batches(world, 20, INGEST_BATCH, "ret-ingest")
    # Spawned, not forked: this process's threads (the store's checkpointer) stay here.
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    receiving, sending = context.Pipe(duplex=False)
    ingester = context.Process(
        target=_ingest, args=(world.settings, bodies, ready, stop, sending), name="bench-ingest"
    )
    ingester.start()
    sending.close()
    timings: list[float] = []
    try:
        ready.wait(60)
        started = time.perf_counter()
        cpu = time.thread_time()
        outcome = rt.retention.sweep("bench")
        cpu = time.thread_time() - cpu
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        if receiving.poll(60):
            timings = receiving.recv()
        ingester.join(60)
    timings.sort()
    return {
        "stored_events": count,
        "baseline_events_per_s": round(baseline_rate),
        "baseline_lock_ms": round(baseline_held, 1),
        "swept_events_per_s": round(count / elapsed),
        "swept_events_per_cpu_s": round(count / cpu),
        "max_lock_ms": round(outcome.max_held_ms, 1),
        "deleted": outcome.counts.get("deleted", 0),
        "transactions": outcome.batches,
        "ingest_events_during_sweep": len(timings) * INGEST_BATCH,
        "ingest_batch_p99_ms": round(timings[int(0.99 * len(timings))], 1) if timings else 0,
    }
