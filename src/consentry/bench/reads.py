"""The benchmark's query section: a consent-filtered count over a large event store with 10%
of subjects opted out of the purpose, the export download rate with every event's sealed
values opened, and a group_by over a sealed field."""

from __future__ import annotations

import statistics
import time
from typing import Any

from consentry import clock
from consentry.bench.data import World
from consentry.consent.service import ConsentWrite
from consentry.ingest import minimise
from consentry.ingest.minimise import purpose_mask, subject_key
from consentry.ingest.sealing import event_aad
from consentry.keys.envelope import nonces
from consentry.reads.query import Query
from consentry.storage import ingest as ingest_sql
from consentry.subjects.models import SubjectRef

PURPOSE = "personalization"
EVENT_TYPE = "browse"
# A page view whose page (browsing history) and redacted message are sealed under the
# subject's key, as the pipeline stores them.
SCHEMA: dict[str, Any] = {
    "purposes": ["analytics", PURPOSE],
    "fields": {
        "url": {"type": "string", "category": "system.operations", "treatment": "keep"},
        "page": {
            "type": "string",
            "category": "user.behavior.browsing_history",
            "treatment": "keep",
        },
        "message": {"type": "string", "category": "user.content", "treatment": "redact"},
    },
}
PAGES = 20
MESSAGE = "Where is my order? Call me on <PHONE> or write to <EMAIL>, reference {n}."
_CHUNK = 50_000
GROUP_RUNS = 3


def _store_events(world: World, count: int) -> None:
    """`count` stored page views spread over the world's subjects, as the pipeline stores
    them: url in clear, page and message sealed (loaded directly: this section measures
    reads, not ingest)."""
    rt = world.runtime
    with rt.store.write() as conn:
        rt.schemas.put(conn, EVENT_TYPE, SCHEMA, rt.purposes.all(conn), actor="bench")
        purposes = rt.purposes.all(conn)
        ids = world.subject_ids
        sealers = {s: rt.subject_keys.sealer(conn, s) for s in ids}
    stored_for = ["analytics", PURPOSE]
    bits = purpose_mask(purposes[p] for p in stored_for)
    # Received now: after the consents they were accepted under.
    received = clock.rfc3339(clock.now())
    for start in range(0, count, _CHUNK):
        rows = []
        end = min(count, start + _CHUNK)
        for n, nonce in zip(range(start, end), nonces(end - start), strict=True):
            subject_id = ids[(n * 7919) % len(ids)]
            event_id = f"q-{n}"
            personal = {"message": MESSAGE.format(n=n), "page": f"/pages/{n // 1000 % PAGES}"}
            sealed = sealers[subject_id].seal(
                minimise.encode_bytes(personal), event_aad(event_id), nonce
            )
            rows.append(
                (
                    event_id,
                    EVENT_TYPE,
                    1,
                    f"2026-11-{1 + n % 28:02d}T{n % 24:02d}:00:00.000000Z",
                    received,
                    subject_id,
                    '["analytics","personalization"]',
                    f'{{"url":"/products/{n % 997}"}}',
                    sealed,
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
        browse = rt.reads.scope(conn, PURPOSE, EVENT_TYPE, None, None)
    timings = []
    value = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        answer = rt.reads.query(Query(scope, "count"), key_id="bench", actor="bench")
        timings.append((time.perf_counter() - t0) * 1000)
        value = answer.rows[0]["value"]
    group_timings = []
    groups = 0
    for _ in range(GROUP_RUNS):
        t0 = time.perf_counter()
        answer = rt.reads.query(Query(browse, "count", ("page",)), key_id="bench", actor="bench")
        group_timings.append((time.perf_counter() - t0) * 1000)
        groups = len(answer.rows)
    export = rt.exports.create(scope, "jsonl", key_id="bench", actor="bench")
    t0 = time.perf_counter()
    lines = 0
    opened = 0
    for chunk in rt.exports.download(export, scope, actor="bench")[1]:
        lines += chunk.count(b"\n")
        opened += chunk.count(b'"page":')
    elapsed = time.perf_counter() - t0
    return {
        "stored_events": events,
        "opted_out_share": round(len(opted_out) / len(world.subject_ids), 3),
        "counted": value,
        "count_p50_ms": round(statistics.median(timings), 1),
        "count_max_ms": round(max(timings), 1),
        "group_sealed_groups": groups,
        "group_sealed_p50_ms": round(statistics.median(group_timings), 1),
        "export_rows": lines,
        "export_rows_opened": opened,
        "export_rows_per_s": round(lines / elapsed),
    }
