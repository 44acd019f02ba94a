"""The benchmark's sections; each returns its figures as a flat dict."""

from __future__ import annotations

import json
import random
import shutil
import threading
import time
from datetime import timedelta
from typing import Any

import msgspec

from consentry import clock
from consentry.audit import log as audit_log
from consentry.audit import tree as audit_tree
from consentry.audit.events import AuditAction
from consentry.audit.verify import verify_log
from consentry.bench import baseline, load, server
from consentry.bench.data import ADMIN_KEY, World, batches, customers, event, make_settings
from consentry.bench.redaction import figures as redaction_figures
from consentry.consent import policy
from consentry.dsr.models import Level, RequestType, Verification
from consentry.dsr.requests import NewRequest
from consentry.runtime import Runtime
from consentry.storage import audit as audit_sql
from consentry.subjects.models import Jurisdiction, SubjectRef

# Events in a batch of the http_ingest section (issue 19 states its targets for 500).
HTTP_BATCH = 500


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ingest(world: World, n_batches: int) -> dict[str, Any]:
    """The in-process pipeline against a fair baseline: the same batches decoded and stored in
    the production events table (its indexes, one write transaction per batch) with no privacy
    work; beside it, the old index-free insert for reference (bench/baseline.py)."""
    bodies = batches(world, n_batches, 1000, "ing")
    events = len(bodies) * 1000
    raw_seconds = baseline.raw_insert(world.settings.data_dir / "raw-insert.db", bodies)
    directory = world.settings.data_dir / "baseline"
    store = baseline.open_store(directory)
    try:
        baseline_seconds = baseline.insert(store, bodies)
    finally:
        store.close()
        shutil.rmtree(directory, ignore_errors=True)
    accepted = 0
    started = time.perf_counter()
    for body in bodies:
        accepted += sum(r.code is None for r in world.runtime.pipeline.ingest(body, actor="bench"))
    pipeline = events / (time.perf_counter() - started)
    fair = events / baseline_seconds
    return {
        "raw_insert_events_per_s": round(events / raw_seconds),
        "baseline_events_per_s": round(fair),
        "pipeline_events_per_s": round(pipeline),
        "overhead_ratio": round(fair / pipeline, 2),
        "accepted_share": round(accepted / events, 3),
    }


def consent_check(world: World, samples: int, http_seconds: float) -> dict[str, Any]:
    """A check in process is the cache look-up and the policy; over HTTP the real endpoint."""
    purpose = world.runtime.purposes.cached()["analytics"]
    cache = world.runtime.consent_cache
    ids = world.subject_ids
    now = clock.now()
    timings = []
    for n in range(samples):
        subject_id = ids[n % len(ids)]
        t0 = time.perf_counter_ns()
        policy.decide(purpose, cache.get(subject_id), now)
        timings.append((time.perf_counter_ns() - t0) / 1000)
    bodies = tuple(
        json.dumps({"subject": {"subject_id": s}, "purpose": "analytics"}).encode()
        for s in ids[:100]
    )
    with server.Server(world) as port:
        outcome = server.send(
            load.Load(
                port,
                "/v1/consents/check",
                ADMIN_KEY,
                bodies,
                http_seconds,
                4,
                warmup=server.warmup(http_seconds),
            )
        )
    return {
        "inprocess_p50_us": round(_percentile(timings, 0.50), 2),
        "inprocess_p99_us": round(_percentile(timings, 0.99), 2),
        "http_checks_per_s": round(outcome.requests / outcome.seconds),
        "http_load_client_cores": round(outcome.cpu_seconds / outcome.seconds, 2),
    }


def http_ingest(world: World, seconds: float) -> dict[str, Any]:
    """The real server on loopback, concurrent clients, batches of HTTP_BATCH events."""
    # Every request carries new event ids: a repeated batch would be cheap duplicates.
    template = tuple(batches(world, 20, HTTP_BATCH, "http"))
    with server.Server(world) as port:
        outcome = server.send(
            load.Load(
                port,
                "/v1/events",
                ADMIN_KEY,
                template,
                seconds,
                4,
                b'"http-',
                server.warmup(seconds),
            )
        )
    latencies = outcome.latencies
    return {
        "events_per_s": round(outcome.requests * HTTP_BATCH / outcome.seconds),
        "batch_p50_ms": round(_percentile(latencies, 0.50), 1),
        "batch_p99_ms": round(_percentile(latencies, 0.99), 1),
        "load_client_cores": round(outcome.cpu_seconds / outcome.seconds, 2),
    }


def opt_out(world: World, subjects: int) -> dict[str, Any]:
    """Withdrawals while another thread streams events for the same subjects: no event of a
    batch started after a withdrawal returned may be accepted for that purpose."""
    targets = [s for s in world.subject_ids if s not in world.withdrawn][:subjects]
    returned: dict[str, float] = {}
    leaked = 0
    stop = threading.Event()
    lock = threading.Lock()

    def stream() -> None:
        nonlocal leaked
        n = 0
        while not stop.is_set():
            events = [
                {
                    "event_id": f"opt-{n}-{i}",
                    "event_type": "chat_message",
                    "occurred_at": "2026-11-20T10:00:00Z",
                    "subject": {"subject_id": targets[(n + i) % len(targets)]},
                    "properties": {"channel": "web", "text": "hello"},
                }
                for i in range(100)
            ]
            started = time.monotonic()
            results = world.runtime.pipeline.ingest(
                msgspec.json.encode({"events": events}), actor="bench"
            )
            with lock:
                for e, r in zip(events, results, strict=True):
                    done = returned.get(e["subject"]["subject_id"])  # type: ignore[index]
                    if done is not None and started > done and "analytics" in r.purposes:
                        leaked += 1
            n += 1

    streamer = threading.Thread(target=stream)
    streamer.start()
    latencies = []
    try:
        for subject_id in targets:
            t0 = time.monotonic()
            world.runtime.consent.withdraw(
                SubjectRef(subject_id=subject_id), ["analytics"], "web", gpc=False, actor="bench"
            )
            now = time.monotonic()
            with lock:
                returned[subject_id] = now
            latencies.append((now - t0) * 1000)
            time.sleep(0.005)
    finally:
        stop.set()
        streamer.join()
    return {
        "withdrawals": len(latencies),
        "leaked_events": leaked,
        "withdraw_p50_ms": round(_percentile(latencies, 0.50), 2),
        "withdraw_p99_ms": round(_percentile(latencies, 0.99), 2),
    }


def redaction(seconds: float) -> dict[str, Any]:
    """Messages per second and recall/precision over the labelled corpus in tests/, overall
    and per kind; Presidio's beside them when it is installed."""
    return redaction_figures(seconds)


def audit(entries: int, verify_size: int, samples: int) -> dict[str, Any]:
    """The audit log on its own SQLite store: appends (100 entries a transaction, as a busy
    gateway commits them; and one a transaction), `audit verify` over `verify_size` entries,
    and inclusion proofs at that size."""
    settings = make_settings()
    runtime = Runtime(settings)
    try:
        store = runtime.store

        def append(count: int, per: int) -> float:
            started = time.perf_counter()
            for start in range(0, count, per):
                with store.write() as conn:
                    audit_log.record_many(
                        conn,
                        [
                            audit_log.Draft(
                                AuditAction.EVENTS_INGESTED,
                                "key:bench",
                                details={"accepted": n, "rejected": 0},
                            )
                            for n in range(start, min(count, start + per))
                        ],
                    )
            return time.perf_counter() - started

        batched = append(entries, 100)
        single = append(entries // 50, 1)
        with store.read() as conn:
            built = audit_sql.log_size(conn)
        append(max(0, verify_size - built), 5_000)
        head = runtime.heads.sign_now()
        started = time.perf_counter()
        report = verify_log(store, runtime.signing_keys)
        verify_seconds = time.perf_counter() - started
        rnd = random.Random(7)
        timings = []
        for _ in range(samples):
            index = rnd.randrange(head.size)
            t0 = time.perf_counter()
            with store.read() as conn:
                audit_tree.inclusion_proof(conn, index, head.size)
            timings.append((time.perf_counter() - t0) * 1000)
    finally:
        runtime.close()
        shutil.rmtree(settings.data_dir, ignore_errors=True)
    return {
        "append_per_s": round(entries / batched),
        "append_single_per_s": round((entries // 50) / single),
        "verify_entries": report.entries,
        "verify_ok": report.ok,
        "verify_entries_per_s": round(report.entries / verify_seconds),
        "inclusion_proof_p50_ms": round(_percentile(timings, 0.50), 3),
        "inclusion_proof_p99_ms": round(_percentile(timings, 0.99), 3),
    }


def _fill(world: World, subject_id: str, count: int, prefix: str) -> None:
    """Store `count` events of one subject, a thousand a batch."""
    for start in range(0, count, 1000):
        events = [event(n, subject_id, prefix) for n in range(start, min(count, start + 1000))]
        world.runtime.pipeline.ingest(msgspec.json.encode({"events": events}), actor="bench")


def _run_until_done(world: World) -> None:
    """Runner passes until no request advances and no withdrawal is left to purge (a pass
    purges at most 500)."""
    while True:
        done = world.runtime.runner.run_pending()
        if not done["advanced"] and not done["withdrawals"]["withdrawals"]:
            return


def _erase(world: World, subject_id: str) -> None:
    new = NewRequest(
        type=RequestType.ERASURE,
        ref=SubjectRef(subject_id=subject_id),
        jurisdiction=Jurisdiction.EU,
        verification=Verification("bench", Level.HIGH),
    )
    world.runtime.requests.create(new, actor="bench")


def erasure(world: World, big: int, subjects: int, per_subject: int, access: int) -> dict[str, Any]:
    """Erasure of one subject with `big` events: accepted to checks answering subject_erased
    (`effective_ms`) and to all local data gone (`local_completion_ms`); `subjects` subjects
    of `per_subject` events erased back to back; the access report of a subject with `access`
    events read whole."""
    rt = world.runtime
    # Customers of their own: earlier sections' events are spread over the world's subjects,
    # and some of those subjects withdrew.
    (target, reader), _ = customers(rt, "erasure-own", 2, withdraw=False)
    _fill(world, target, big, "big")
    purpose = rt.purposes.cached()["analytics"]
    # The withdrawals of earlier sections are purged first, however recent (nothing else
    # writes meanwhile): the figures are the erasures' own.
    _run_until_done(world)
    while rt.erasure.purge_withdrawals(actor="bench", settle=timedelta(0))["withdrawals"]:
        pass
    started = time.perf_counter()
    _erase(world, target)
    with rt.store.read() as conn:
        state = rt.consent.cache.fresh(conn, target)
    effective = (time.perf_counter() - started) * 1000
    erased = policy.decide(purpose, state, clock.now()).reason.value == "subject_erased"
    _run_until_done(world)
    local = (time.perf_counter() - started) * 1000
    _fill(world, reader, access, "acc")
    started = time.perf_counter()
    size = sum(
        len(chunk)
        for chunk in rt.results.reports.access(reader, rt.purposes.cached(), request_id="bench")
    )
    access_rate = access / (time.perf_counter() - started)
    victims, _ = customers(rt, "erase", subjects, withdraw=False)
    for n, subject_id in enumerate(victims):
        _fill(world, subject_id, per_subject, f"m{n}")
    started = time.perf_counter()
    for subject_id in victims:
        _erase(world, subject_id)
    _run_until_done(world)
    rate = len(victims) / (time.perf_counter() - started)
    return {
        "effective_ms": round(effective, 1),
        "checks_answer_subject_erased": erased,
        "local_completion_ms": round(local, 1),
        "erasures_per_s": round(rate, 1),
        "access_events_per_s": round(access_rate),
        "access_report_bytes": size,
    }
