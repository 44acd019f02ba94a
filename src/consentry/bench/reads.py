"""The benchmark's query section: a consent-filtered count over a large event store with 10%
of subjects opted out of the purpose, and the export download rate."""

from __future__ import annotations

import statistics
import time
from typing import Any

from consentry import clock
from consentry.bench.data import World
from consentry.consent.service import ConsentWrite
from consentry.ingest.minimise import purpose_mask, subject_key
from consentry.reads.query import Query
from consentry.storage import ingest as ingest_sql
from consentry.subjects.models import SubjectRef

PURPOSE = "personalization"
_CHUNK = 50_000


def _store_events(world: World, count: int) -> None:
    """`count` stored page views spread over the world's subjects, as the pipeline stores
    them (loaded directly: this section measures reads, not ingest)."""
    rt = world.runtime
    purposes = rt.purposes.cached()
    stored_for = ["analytics", PURPOSE]
    bits = purpose_mask(purposes[p] for p in stored_for)
    ids = world.subject_ids
    # Received now: after the consents they were accepted under.
    received = clock.rfc3339(clock.now())
    for start in range(0, count, _CHUNK):
        rows = []
        for n in range(start, min(count, start + _CHUNK)):
            subject_id = ids[(n * 7919) % len(ids)]
            rows.append(
                (
                    f"q-{n}",
                    "page_view",
                    1,
                    f"2026-11-{1 + n % 28:02d}T{n % 24:02d}:00:00.000000Z",
                    received,
                    subject_id,
                    '["analytics","personalization"]',
                    f'{{"url":"/products/{n % 997}"}}',
                    None,
                    None,
                    bits,
                    subject_key(subject_id),
                )
            )
        with rt.store.write() as conn:
            ingest_sql.insert_events(conn, rows)


def query(world: World, events: int, runs: int) -> dict[str, Any]:
    rt = world.runtime
    opted_out = world.subject_ids[1::10]
    for subject_id in opted_out:
        rt.consent.record(
            ConsentWrite(
                ref=SubjectRef(subject_id=subject_id),
                purposes={PURPOSE: "denied"},
                source="web",
                notice=("bench", "1"),
            ),
            actor="bench",
        )
    _store_events(world, events)
    with rt.store.read() as conn:
        scope = rt.reads.scope(conn, PURPOSE, None, None, None)
    timings = []
    value = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        answer = rt.reads.query(Query(scope, "count"), key_id="bench", actor="bench")
        timings.append((time.perf_counter() - t0) * 1000)
        value = answer.rows[0]["value"]
    export = rt.exports.create(scope, "jsonl", key_id="bench", actor="bench")
    t0 = time.perf_counter()
    lines = sum(1 for _ in rt.exports.download(export, scope, actor="bench")[1])
    elapsed = time.perf_counter() - t0
    return {
        "stored_events": events,
        "opted_out_share": round(len(opted_out) / len(world.subject_ids), 3),
        "counted": value,
        "count_p50_ms": round(statistics.median(timings), 1),
        "count_max_ms": round(max(timings), 1),
        "export_rows": lines,
        "export_rows_per_s": round(lines / elapsed),
    }
