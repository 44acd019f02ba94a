"""The benchmark's retention section: a sweep over a store of which half the events are past
their retention, while ingest goes on, beside a plain one-statement delete of the same rows."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import timedelta
from typing import Any

from consentry import clock
from consentry.bench.data import World, batches
from consentry.ingest.minimise import purpose_mask, subject_key
from consentry.storage import ingest as ingest_sql

STORED_FOR = ["analytics", "personalization"]
_CHUNK = 50_000
# Stands for an event's sealed values (the sweep deletes them unopened): the size is what
# matters to the store.
_SEALED = bytes(range(96))


def _rows(world: World, start: int, end: int, old: str, new: str, bits: int) -> list[Any]:
    """Events `start`..`end`: even ones dated `old` (past every retention), odd ones `new`."""
    ids = world.subject_ids
    rows = []
    for n in range(start, end):
        subject_id = ids[(n * 7919) % len(ids)]
        rows.append(
            (
                f"ret-{n}",
                "page_view",
                1,
                old if n % 2 == 0 else new,
                new,
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


def _store(world: World, count: int, old: str, new: str) -> None:
    rt = world.runtime
    with rt.store.read() as conn:
        purposes = rt.purposes.all(conn)
    bits = purpose_mask(purposes[p] for p in STORED_FOR)
    for start in range(0, count, _CHUNK):
        rows = _rows(world, start, min(count, start + _CHUNK), old, new, bits)
        with rt.store.write() as conn:
            ingest_sql.insert_events(conn, rows)


def _baseline(world: World, count: int, old: str, new: str) -> tuple[float, float]:
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
        rows = _rows(world, start, min(count, start + _CHUNK), old, new, 0)
        raw.execute("BEGIN")
        raw.executemany(
            "INSERT INTO raw (event_id, occurred_at, subject, properties, sealed) "
            "VALUES (?, ?, ?, ?, ?)",
            [(r[0], r[3], r[5], r[7], r[8]) for r in rows],
        )
        raw.execute("COMMIT")
    started = time.perf_counter()
    raw.execute("BEGIN IMMEDIATE")
    raw.execute("DELETE FROM raw WHERE occurred_at < ?", (new,))
    raw.execute("COMMIT")
    held = time.perf_counter() - started
    raw.close()
    return count / held, held * 1000


def retention(world: World, count: int) -> dict[str, Any]:
    """`count` stored events, half past every retention, swept while a thread ingests
    batches of 1,000: the sweep's rate over the whole store and its longest write
    transaction, beside a plain delete's."""
    rt = world.runtime
    now = clock.now()
    old = clock.rfc3339(now - timedelta(days=4000))
    new = clock.rfc3339(now - timedelta(days=1))
    baseline_rate, baseline_held = _baseline(world, count, old, new)
    _store(world, count, old, new)
    bodies = batches(world, 20, 1000, "ret-ingest")
    stop = threading.Event()
    ingested = [0, 0]

    def ingest() -> None:
        n = 0
        while not stop.is_set():
            body = bodies[n % len(bodies)].replace(b'"ret-ingest-', f'"ri{n}-'.encode())
            rt.pipeline.ingest(body, actor="bench")
            ingested[0] += 1000
            n += 1

    thread = threading.Thread(target=ingest, name="bench-ingest")
    thread.start()
    try:
        started = time.perf_counter()
        outcome = rt.retention.sweep("bench")
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        thread.join()
    return {
        "stored_events": count,
        "baseline_events_per_s": round(baseline_rate),
        "baseline_lock_ms": round(baseline_held, 1),
        "swept_events_per_s": round(count / elapsed),
        "max_lock_ms": round(outcome.max_held_ms, 1),
        "deleted": outcome.counts.get("deleted", 0),
        "transactions": outcome.batches,
        "ingest_during_sweep_events_per_s": round(ingested[0] / elapsed),
    }
