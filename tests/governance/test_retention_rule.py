"""The sweep's delete statement and the rule it spells (dsr/erasure.Erasure.ending) decide
alike, on both back-ends: stores of events with random purposes, start times on and around
every cutoff, occurred_at and receipt in either order, subjects restricted whole or for
some purposes, and events stored without purpose bits."""

from __future__ import annotations

import json
import multiprocessing
import random
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from consentry import clock
from consentry.consent.models import LegalBasis, Purpose
from consentry.ingest.minimise import purpose_mask, subject_key
from consentry.runtime import Runtime
from consentry.storage import ingest as ingest_sql
from consentry.storage.engine import Store
from consentry.storage.schema import events, subjects
from tests.consent.helpers import install_clock

KEYS = ("alpha", "beta", "gamma", "delta")
# Subject -> (restricted whole, purposes held pending an objection).
SUBJECTS = {
    "sub-0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a": (False, None),
    "sub-1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b": (False, None),
    "sub-2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c": (True, None),
    "sub-3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d": (False, ["beta"]),
}


def _expected(
    start: datetime, stored: list[str], days: dict[str, int], now: datetime, subject: str
) -> list[str] | None:
    """What the sweep leaves of an event: its purposes kept, None when deleted."""
    ended = [p for p in stored if start <= now - timedelta(days=days[p])]
    whole, held = SUBJECTS[subject]
    if whole:
        ended = []
    elif held:
        ended = [p for p in ended if p not in held]
    kept = [p for p in stored if p not in ended]
    return kept or None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_delete_statement_decides_as_the_rule(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    fake = install_clock(monkeypatch)
    now = fake()
    rnd = random.Random(seed)  # noqa: S311 - test data, not secrets
    days = {key: rnd.choice([1, 7, 30, 30, 90, 365]) for key in KEYS}
    with runtime.store.write() as conn:
        for key in KEYS:
            purpose = Purpose(key, key.title(), LegalBasis.CONSENT, days[key])
            runtime.purposes.put(conn, purpose, actor="test")
        for subject_id, (whole, held) in SUBJECTS.items():
            conn.execute(
                insert(subjects).values(
                    subject_id=subject_id,
                    created_at=now,
                    restricted=whole,
                    restricted_purposes=json.dumps(held) if held else None,
                )
            )
    with runtime.store.read() as conn:
        known = runtime.purposes.all(conn)
    cutoffs = [now - timedelta(days=d) for d in days.values()]
    rows = []
    expected = {}
    for n in range(300):
        # On a cutoff, a microsecond either side of one, or anywhere in the last 400 days.
        base = rnd.choice(cutoffs)
        start = rnd.choice(
            [
                base,
                base - timedelta(microseconds=1),
                base + timedelta(microseconds=1),
                now - timedelta(minutes=rnd.randrange(400 * 24 * 60)),
            ]
        )
        later = start + timedelta(minutes=rnd.randrange(0, 3000))
        occurred, received = (start, later) if rnd.random() < 0.5 else (later, start)
        stored = rnd.sample(KEYS, rnd.randint(1, len(KEYS)))
        subject_id = rnd.choice(list(SUBJECTS))
        # Events stored before purpose bits were kept have none: read from their list.
        bits = 0 if n % 37 == 0 else purpose_mask(known[p] for p in stored)
        event_id = f"ev-{n}"
        rows.append(
            (
                event_id,
                "page_view",
                1,
                clock.rfc3339(occurred),
                clock.rfc3339(received),
                subject_id,
                json.dumps(stored),
                "{}",
                None,
                None,
                bits,
                subject_key(subject_id),
            )
        )
        expected[event_id] = _expected(start, stored, days, now, subject_id)
    with runtime.store.write() as conn:
        ingest_sql.insert_events(conn, rows)
    sweeper = runtime.retention
    sweeper.span = sweeper.max_span = 64
    done = sweeper.sweep()

    with runtime.store.read() as conn:
        left = {
            r.event_id: (json.loads(r.purposes), r.purpose_bits)
            for r in conn.execute(
                select(events.c.event_id, events.c.purposes, events.c.purpose_bits)
            )
        }
    assert {e: kept for e, (kept, _) in left.items()} == {
        e: kept for e, kept in expected.items() if kept is not None
    }
    for kept, bits in left.values():
        # A narrowed event's bits follow its list (those stored without stay so).
        assert bits in {0, purpose_mask(known[p] for p in kept)}
    deleted = sum(1 for kept in expected.values() if kept is None)
    assert done.counts["deleted"] == deleted
    narrowed = sum(
        1
        for e, kept in expected.items()
        if kept is not None and len(kept) < len(json.loads(rows[int(e[3:])][6]))
    )
    assert done.counts["narrowed"] == narrowed
    # Enough of each kind that the comparison means something.
    assert deleted > 30
    assert narrowed > 30


def _write_meanwhile(url: str, ready: Any, stop: Any, out: Any) -> None:
    """Another process's writer (a server worker's ingest): a short write every millisecond
    until `stop`; sends back when each committed."""
    store = Store(url)
    times: list[float] = []
    try:
        while not stop.is_set():
            with store.write() as conn:
                conn.exec_driver_sql("SELECT 1")
            times.append(time.time())
            ready.set()
            time.sleep(0.001)
    finally:
        store.close()
        out.send(times)


def test_another_processs_writer_gets_in_between_the_sweeps_transactions(
    sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer waiting in another process takes the writer between two of the sweep's
    transactions, not only once the whole sweep is over: the sweep leaves it free a moment
    after each (it would take it back at once otherwise, the other polling every ms)."""
    fake = install_clock(monkeypatch)
    now = fake()
    runtime = sqlite_runtime
    with runtime.store.write() as conn:
        purpose = Purpose("alpha", "Alpha", LegalBasis.CONSENT, 1)
        runtime.purposes.put(conn, purpose, actor="test")
        known = runtime.purposes.all(conn)
        at = clock.rfc3339(now - timedelta(days=2))
        subject_id = next(iter(SUBJECTS))
        bits = purpose_mask([known["alpha"]])
        rows = [
            (f"ev-{n}", "t", 1, at, at, subject_id, '["alpha"]', "{}", None, None, bits, 1)
            for n in range(6000)
        ]
        ingest_sql.insert_events(conn, rows)
    sweeper = runtime.retention
    sweeper.span = sweeper.max_span = 40
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    receiving, sending = context.Pipe(duplex=False)
    other = context.Process(target=_write_meanwhile, args=(runtime.store.url, ready, stop, sending))
    other.start()
    sending.close()
    try:
        assert ready.wait(60)
        started = time.time()
        done = sweeper.sweep()
        ended = time.time()
    finally:
        stop.set()
        writes = receiving.recv() if receiving.poll(60) else []
        other.join(60)
    assert done.counts["deleted"] == 6000
    # Windows of 40 (fewer when a transaction took long: the sweep sizes them by time).
    assert done.batches >= 150
    during = [w for w in writes if started < w < ended]
    assert len(during) > done.batches // 3


def test_with_no_writer_waiting_the_sweep_does_not_pause(
    sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer is left free between two transactions only while another writer waits
    for it: with nobody waiting, the sweep's transactions follow each other at once."""
    fake = install_clock(monkeypatch)
    now = fake()
    runtime = sqlite_runtime
    with runtime.store.write() as conn:
        runtime.purposes.put(conn, Purpose("alpha", "Alpha", LegalBasis.CONSENT, 1), actor="test")
        bits = purpose_mask([runtime.purposes.all(conn)["alpha"]])
        at = clock.rfc3339(now - timedelta(days=2))
        subject_id = next(iter(SUBJECTS))
        rows = [
            (f"ev-{n}", "t", 1, at, at, subject_id, '["alpha"]', "{}", None, None, bits, 1)
            for n in range(400)
        ]
        ingest_sql.insert_events(conn, rows)
    sweeper = runtime.retention
    sweeper.span = sweeper.max_span = 40
    pauses: list[float] = []

    class Recording(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            pauses.append(timeout or 0.0)
            return super().wait(timeout)

    monkeypatch.setattr(sweeper._periodic, "stopping", Recording())
    done = sweeper.sweep()
    assert done.counts["deleted"] == 400
    assert done.batches >= 10
    assert pauses
    assert set(pauses) == {0.0}
